"""Helpers for tests of the phantom stage: a tiny configuration (a few small images, seconds to build)."""

from __future__ import annotations

from pathlib import Path

from stages.base import ProjectConfig, RunnerParams
from stages.phantom import PhantomStage

TINY = dict(
    n_patients=6,
    height_min=120,
    height_max=160,
    p_right=0.5,
    p_other=0.2,
    p_cast=0.3,
    p_metal=0.3,
    n_seed_annotations=4,
    shard_size=5,
)
PATHS = {
    "release_root": "data/raw/grazpedwri-dx",
    "seed_annotations": "data/raw/seed-annotations",
    "phantom_release": "data/raw/grazpedwri-dx",
    "phantom_seeds": "data/raw/seed-annotations",
    "truth": "data/truth",
}


def make_stage(root: Path, seed: int = 7, paths: dict | None = None, **overrides) -> PhantomStage:
    params = PhantomStage.Params(**{**TINY, **overrides})
    config = ProjectConfig(seed=seed, paths={**PATHS, **(paths or {})}, runner=RunnerParams(kind="serial"))
    return PhantomStage(params, config, Path(root))
