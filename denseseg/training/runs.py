"""A training run as ``params.yaml`` names it: which method, on which uv cache, with which values.

A run (``train.runs.<name>`` or ``train.tuned_runs.<name>``) names a method and
its data. Its values are the method's section, the shared ``training`` and
``augment`` settings, each deep-updated by the run's own keys, so that every
value is written once; a tuned run first takes the values its tune study picked
(``paths.tuned/<study>.json``). ``resolve_run`` validates all of it into the
library's parameter objects; ``run_fingerprint`` names what a checkpoint was
made with, so that a checkpoint of another run (or other code) never resumes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from denseseg.io.checksums import source_digest
from denseseg.methods.registry import method_class
from denseseg.training.augment import AugmentParams
from denseseg.training.config import TrainingConfig, deep_update

CODE = ("nets", "losses", "methods", "training")  # the packages whose code is part of a run's fingerprint


class RunError(ValueError):
    """A run cannot be resolved: unknown run or method, invalid values, a missing or foreign tuned file."""


class RunParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    dataset: str  # the uvmaps variant it trains on
    evaluate_on: str  # the uvmaps variant holding the reference landmarks of its test split
    overrides: dict[str, Any] = Field(default_factory=dict)  # deep update of train.methods.<method>
    training: dict[str, Any] = Field(default_factory=dict)  # deep update of train.training
    augment: dict[str, Any] = Field(default_factory=dict)  # deep update of train.augment
    # a tune study whose picked values (paths.tuned/<study>.json) deep-update the method's params
    # before ``overrides``; None (the default runs): the values of train.methods.<method>
    tuned: str | None = None


@dataclass(frozen=True)
class ResolvedRun:
    """A run's validated values: the method's params object, the training config and the augmentation."""

    name: str
    run: RunParams
    method_params: Any  # the method class's ``Params``
    training: TrainingConfig
    augment: AugmentParams
    tuned_trial: int | None  # the tune trial whose values it took, None for a plain run


def read_tuned(path: Path, study: str, method: str) -> tuple[dict, int]:
    """(overrides, trial) of a tune study's picked-values file, checked to belong to ``method``."""
    if not path.exists():
        raise RunError(f"tuned: {path} not found; run the stage tune@{study} first")
    try:
        picked = json.loads(path.read_text())
        tuned_method, overrides = picked["method"], picked["overrides"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise RunError(f"{path} is not a picked-values file ({err})") from None
    if picked.get("trial") is None:
        raise RunError(f"{path} picks nothing: {picked.get('note', 'no completed trial')}")
    if tuned_method != method:
        raise RunError(f"{path} was tuned for {tuned_method!r}, the run trains {method!r}")
    return overrides, picked["trial"]


def resolve_run(
    name: str,
    runs: dict[str, RunParams],
    tuned_runs: dict[str, RunParams],
    methods: dict[str, dict],
    training: dict,
    augment: dict,
    tuned_dir: Path,
) -> ResolvedRun:
    """The run ``name`` of ``runs`` or ``tuned_runs`` with every value validated (``RunError`` otherwise)."""
    every = {**runs, **tuned_runs}
    if name not in every:
        raise RunError(f"no run {name!r} in train.runs or train.tuned_runs ({', '.join(every)})")
    run = every[name]
    if name in tuned_runs and run.tuned is None:
        raise RunError(f"train.tuned_runs.{name}: a tuned run names its study (tuned: <study>)")
    if run.method not in methods:
        raise RunError(f"train.runs.{name}.method: {run.method!r} has no section train.methods")
    base, trial = methods[run.method], None
    if run.tuned is not None:
        overrides, trial = read_tuned(Path(tuned_dir) / f"{run.tuned}.json", run.tuned, run.method)
        base = deep_update(base, overrides)
    try:
        return ResolvedRun(
            name,
            run,
            method_class(run.method).Params(**deep_update(base, run.overrides)),
            TrainingConfig(**deep_update(training, run.training)),
            AugmentParams(**deep_update(augment, run.augment)),
            trial,
        )
    except (KeyError, ValueError) as err:
        raise RunError(str(err).replace("\n", " ")) from None


def code_digest() -> str:
    """Digest of the library code that shapes a training run."""
    import denseseg

    root = Path(denseseg.__file__).parent
    return source_digest(*(root / package for package in CODE))


def run_fingerprint(resolved: ResolvedRun, seed: int, cache_index: Path) -> str:
    """Changes with every value of the run, the seed, the training data and the code: a checkpoint made
    under another fingerprint never resumes."""
    blob = json.dumps(
        {
            "seed": seed,
            "method": resolved.run.method,
            "params": resolved.method_params.model_dump(mode="json"),
            "training": resolved.training.model_dump(mode="json"),
            "augment": resolved.augment.model_dump(mode="json"),
            "data": hashlib.sha256(Path(cache_index).read_bytes()).hexdigest(),
            "code": code_digest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
