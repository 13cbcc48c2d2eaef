"""Shared values of the bone-age tests: small params and synthetic wrists whose size grows with age."""

from __future__ import annotations

import numpy as np
import pytest

from denseseg.bone_age.config import BoneAgeParams
from denseseg.bone_age.training import AgeSamples
from denseseg.training.config import TrainingConfig

HEIGHT, WIDTH = 192, 112


def params(**changes) -> BoneAgeParams:
    values = dict(
        bucket_months=4,
        max_months=240,
        max_points=80,
        bone_hidden=[32, 32, 32],
        head_hidden=64,
        members=2,
        monitor="val_mae_months",
    )
    return BoneAgeParams(**{**values, **changes})


def training(**changes) -> TrainingConfig:
    values = dict(
        epochs=4,
        batch_size=16,
        lr=3e-3,
        lr_schedule="constant",
        lr_decay=1,
        optimizer="adam",
        weight_decay=0.0,
        grad_clip_norm=None,
        shuffle=True,
        validate_every=1,
        device="cpu",
        threads=1,
        num_workers=0,
    )
    return TrainingConfig(**{**values, **changes})


@pytest.fixture(scope="session")
def wrist_template() -> np.ndarray:
    """(710, 2) landmarks of one synthetic wrist at 192 x 112 (the phantom's atlas shapes)."""
    from denseseg.shape.synthetic import wrist_cases

    return next(wrist_cases(1, seed=0, height=HEIGHT, width=WIDTH))[2]


def growing_wrists(template: np.ndarray, n: int, seed: int, noise_px: float = 0.3) -> AgeSamples:
    """Wrists scaled about their centre by 0.5 + 0.5 * age / 200 months, shifted and jittered: age is learnable."""
    rng = np.random.default_rng(seed)
    months = rng.uniform(0, 200, n)
    scale = 0.5 + 0.5 * months / 200
    centre = template.mean(0)
    landmarks = centre + (template[None] - centre) * scale[:, None, None]
    landmarks = landmarks + rng.normal(0, noise_px, landmarks.shape) + rng.uniform(-5, 5, (n, 1, 2))
    return AgeSamples([f"case{seed}-{i:03d}" for i in range(n)], landmarks, months)
