"""The one training loop, recorded augmentation, device handling and checkpoints with exact resume."""

from denseseg.training.augment import AffineAugment, AffineDraw
from denseseg.training.checkpoint import CheckpointError, load_best, load_checkpoint, save_checkpoint
from denseseg.training.config import AugmentParams, TrainingConfig
from denseseg.training.device import autocast, resolve_device, to_device
from denseseg.training.loop import (
    Callback,
    StepFn,
    Trainer,
    TrainingError,
    TrainingResult,
    ValidateFn,
    collate_items,
    lr_factor,
)

__all__ = [
    "AffineAugment",
    "AffineDraw",
    "AugmentParams",
    "Callback",
    "CheckpointError",
    "StepFn",
    "Trainer",
    "TrainingConfig",
    "TrainingError",
    "TrainingResult",
    "ValidateFn",
    "autocast",
    "collate_items",
    "load_best",
    "load_checkpoint",
    "lr_factor",
    "resolve_device",
    "save_checkpoint",
    "to_device",
]
