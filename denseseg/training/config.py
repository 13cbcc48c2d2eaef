"""Parameter models of the training loop and its augmentation.

Every field is required: ``params.yaml`` is the one source of these values, the
stage validates its section into these models, and tests pass values explicitly.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrainingConfig(BaseModel):
    """How one network is trained: length, optimiser, schedule, batching and device.

    ``lr_schedule="cosine"`` anneals the learning rate per epoch from ``lr`` towards
    ``lr / lr_decay`` (the paper: Adam, a factor of 100 over 100 epochs); see
    ``denseseg.training.loop.lr_factor`` for the closed form.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    lr_schedule: Literal["constant", "cosine"]
    lr_decay: float = Field(ge=1)
    optimizer: Literal["adam", "adamw"]
    weight_decay: float = Field(ge=0)
    grad_clip_norm: Annotated[float, Field(gt=0)] | None
    shuffle: bool
    validate_every: int = Field(ge=1)
    device: Literal["auto", "cpu", "cuda"]
    threads: int = Field(ge=1)
    num_workers: int = Field(ge=0)


class AugmentParams(BaseModel):
    """Ranges of the random affine map applied to each training item.

    The rotation angle is drawn from U(-rotation_deg, rotation_deg), the shift along
    each axis from U(-translation, translation) times that axis' size, the isotropic
    scale from U(scale_min, scale_max) (the paper: 10 degrees, 0.1, 0.85..1.15), and the
    image's intensities are multiplied by 1 + U(-intensity_gain, intensity_gain)
    (0: off; label propagation uses it, the paper's models do not).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool
    rotation_deg: float = Field(ge=0)
    translation: float = Field(ge=0)
    scale_min: float = Field(gt=0)
    scale_max: float = Field(gt=0)
    intensity_gain: float = Field(ge=0, lt=1)

    @model_validator(mode="after")
    def _scale_range(self) -> AugmentParams:
        if self.scale_min > self.scale_max:
            raise ValueError(f"scale_min ({self.scale_min}) is larger than scale_max ({self.scale_max})")
        return self


def deep_update(base: dict, update: dict) -> dict:
    """A copy of ``base`` with ``update`` merged in, recursively (update wins): how a run's keys refine a section."""
    out = dict(base)
    for key, value in update.items():
        out[key] = deep_update(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
