"""Helpers for tests of the phantom stage: a tiny configuration (a few small images, seconds to build)."""

from __future__ import annotations

from pathlib import Path

import yaml

from denseseg.phantom.metadata import PlanSettings
from denseseg.phantom.scene import RenderSettings
from stages.base import ProjectConfig, RunnerParams
from stages.phantom import PhantomStage

# params.yaml's phantom section: the one source of the settings' values (tests change only what they test)
PHANTOM = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())["phantom"]


def plan_settings(**changes) -> PlanSettings:
    """params.yaml's release plan with ``changes``."""
    return PlanSettings(**{**{k: PHANTOM[k] for k in PlanSettings.model_fields}, **changes})


def render_settings(**changes) -> RenderSettings:
    """params.yaml's render settings with ``changes``."""
    return RenderSettings(**{**{k: PHANTOM[k] for k in RenderSettings.model_fields}, **changes})


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
    params = PhantomStage.Params(**{**PHANTOM, **TINY, **overrides})
    config = ProjectConfig(seed=seed, paths={**PATHS, **(paths or {})}, runner=RunnerParams(kind="serial"))
    return PhantomStage(params, config, Path(root))
