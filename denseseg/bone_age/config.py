"""The parameter model of bone-age regression; ``params.yaml`` (section ``boneage``) holds every value."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class BoneAgeParams(BaseModel):
    """The network, its age classes and the ensemble (paper 3.2: hidden 32 per bone, 64 over bones, 4-month buckets).

    Attributes:
        bucket_months: width of one age class in months.
        max_months: ages from 0 to this are classified; older targets fall into the last class.
        max_points: landmark slots per bone (a bone with fewer is zero-padded and masked).
        bone_hidden: widths of the Linear-BatchNorm-ReLU blocks of the per-bone MLP (one entry per block).
        head_hidden: width of the first fully connected layer over the concatenated bones.
        members: ensemble size (members differ by their seed only).
        monitor: validation metric that picks each member's best epoch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket_months: int = Field(ge=1)
    max_months: float = Field(gt=0)
    max_points: int = Field(ge=1)
    bone_hidden: list[int] = Field(min_length=1)
    head_hidden: int = Field(ge=1)
    members: int = Field(ge=1)
    monitor: Literal["val_mae_months", "val_loss"]
