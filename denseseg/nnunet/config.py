"""The nnU-Net baseline's parameters (validated from params.yaml; no defaults here)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PlanEdits(BaseModel):
    """Edits of nnU-Net's 2-D plan before preprocessing (null: nnU-Net's planned value).

    ``base_features`` / ``max_features``: the width of the first stage and the cap
    (features double per stage, as nnU-Net plans them); ``max_stages``: keep at
    most this many encoder stages (the deepest are dropped); ``batch_size``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_features: int | None = Field(ge=1)
    max_features: int | None = Field(ge=1)
    max_stages: int | None = Field(ge=2)
    batch_size: int | None = Field(ge=1)


class Schedule(BaseModel):
    """How long nnU-Net trains (nnU-Net's defaults: 1000 epochs of 250 iterations, 50 validation iterations)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(ge=1)
    iterations_per_epoch: int = Field(ge=1)
    val_iterations_per_epoch: int = Field(ge=1)
    save_every: int = Field(ge=1)  # checkpoint_latest.pth every this many epochs (where a killed run resumes)


class Optimizer(BaseModel):
    """nnU-Net's optimiser: ``sgd`` is its own (SGD, Nesterov momentum 0.99); ``adamw`` that of its
    ``nnUNetTrainerAdam`` variants (AdamW, amsgrad). Both decay the rate polynomially over the epochs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Literal["sgd", "adamw"]
    initial_lr: float | None = Field(gt=0)  # null: nnU-Net's 1e-2


class NnUNetParams(BaseModel):
    """Everything one nnU-Net run needs besides its folders and its data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    configuration: Literal["2d"]  # the paper's nnU-Net on 2-D radiographs
    fold: Literal["all"]  # train on the whole training split (the paper: no overlapping structures across folds)
    plan: PlanEdits
    schedule: Schedule
    optimizer: Optimizer
    processes: int = Field(ge=1)  # nnU-Net's worker processes for fingerprinting and preprocessing
    augmentation_processes: int = Field(ge=0)  # nnUNet_n_proc_DA; 0: augmentation in the main process (seeded)
    device: str  # auto | cpu | cuda
    threads: int = Field(ge=1)  # torch CPU threads
    rotation_deg: float | None = Field(ge=0, le=180)  # augmentation's rotation range +-; null: nnU-Net's rule
    tile_step_size: float = Field(gt=0, le=1)  # sliding-window step as a fraction of the patch (nnU-Net: 0.5)
    threshold: float = Field(gt=0, lt=1)  # a region's probability above this is the structure
