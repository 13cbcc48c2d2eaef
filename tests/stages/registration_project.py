"""A small synthetic project for the contours/register/split/release stage tests."""

from __future__ import annotations

import shutil
from pathlib import Path

from denseseg.shape.registration_synthetic import synthetic_image, write_synthetic_inputs

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def make_project(root: Path, n_images: int = 6, bad: bool = True) -> Path:
    """params.yaml + masks, manifest and truth for ``n_images`` half-resolution images.

    With ``bad``: image 'img-90' lacks its pisiform (empty mask) and 'img-91' has a
    one-pixel-wide line as its lunate.
    """
    shutil.copy(PARAMS, root / "params.yaml")
    images = {f"img-{i:02d}": synthetic_image(i, scale=0.5) for i in range(n_images)}
    if bad:
        empty = synthetic_image(90, scale=0.5)
        empty.masks[list(empty.truth).index("pisiform")] = False
        line = synthetic_image(91, scale=0.5)
        k = list(line.truth).index("lunate")
        line.masks[k] = False
        line.masks[k, 100, 50:70] = True
        images["img-90"], images["img-91"] = empty, line
    patients = {stem: f"p{i // 2}" for i, stem in enumerate(sorted(images))}  # two images per patient
    (root / "data/interim/masks").mkdir(parents=True)
    (root / "data/interim/ingest").mkdir(parents=True)
    (root / "data/truth").mkdir(parents=True)
    write_synthetic_inputs(
        images,
        root / "data/interim/masks",
        root / "data/interim/ingest/manifest.parquet",
        root / "data/truth/contours.parquet",
        patients=patients,
        shard_size=3,
    )
    return root


def n_landmarks() -> int:
    from denseseg.anatomy import WRIST

    return WRIST.n_landmarks


__all__ = ["make_project", "n_landmarks"]
