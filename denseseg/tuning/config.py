"""The tuning section's models: the studies, the budget, the search spaces and objectives per method."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from denseseg.tuning.trial import TUNABLE_METRICS


class StudyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    dataset: str  # the uvmaps variant whose train split trains and whose val split scores every trial


class PruneParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dice_below: float = Field(ge=0, le=1)  # validation Dice after the first epoch below this: pruned


class TuningParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_trials: int = Field(ge=1)  # the study's total budget (a rerun with a larger one continues the study)
    workers: int = Field(ge=1)  # shards = parallel workers sharing the journal; 1 is reproducible
    n_startup_trials: int = Field(ge=0)  # TPE's random trials before it models the history
    training: dict[str, Any]  # deep update of train.training for every trial
    prune: PruneParams
    spaces: dict[str, dict[str, list[float]]]  # method -> {dotted path: [low, high]}
    objectives: dict[str, dict[str, Literal["minimize", "maximize"]]]  # method -> {val metric: direction}
    studies: dict[str, StudyParams]

    def study_objectives(self, study: str) -> dict[str, str]:
        """The study's method's objectives (metric -> direction), checked. Raises ValueError naming the key."""
        if study not in self.studies:
            raise ValueError(f"tune: no study {study!r} in tune.studies ({', '.join(self.studies)})")
        method = self.studies[study].method
        if method not in TUNABLE_METRICS:
            raise ValueError(
                f"tune.studies.{study}.method: {method!r} is not tunable; methods: {', '.join(TUNABLE_METRICS)}"
            )
        for section in ("spaces", "objectives"):
            if method not in getattr(self, section):
                raise ValueError(f"tune.{section}: no entry for method {method!r} (study {study})")
        objectives = dict(self.objectives[method])
        unknown = sorted(set(objectives) - set(TUNABLE_METRICS[method]))
        if len(objectives) < 2 or unknown:
            raise ValueError(
                f"tune.objectives.{method}: need two or more of {', '.join(TUNABLE_METRICS[method])}"
                + (f"; unknown {unknown}" if unknown else "")
            )
        return objectives
