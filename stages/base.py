"""The contract every stage follows, so that the Prefect layer can run any of them.

A stage is planned into shards, each shard is processed by a plain function
(thread-safe, no shared mutable state) and the results are combined by
``finish``, which writes the outputs atomically and returns a report. The same
stage runs serially (``run_serial``, used by tests and benchmarks) or mapped over
a Prefect task runner (``pipelines``).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from denseseg.io.tables import REJECTS, empty_frame


class StageParams(BaseModel):
    """Base of every stage's params section: unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StageError(RuntimeError):
    """A stage cannot run: bad params, missing or malformed inputs. The message is one line."""


@dataclass
class StageReport:
    """What a stage tells the user: metrics, rejected items and extra tables."""

    metrics: dict[str, Any] = field(default_factory=dict)
    rejects: pd.DataFrame = field(default_factory=lambda: empty_frame(REJECTS))
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


P = TypeVar("P", bound=StageParams)


class Stage(ABC, Generic[P]):
    """Base class: subclasses set ``name`` and ``Params`` and implement the hooks."""

    name: ClassVar[str]
    Params: ClassVar[type[StageParams]]

    def __init__(self, params: P, config: ProjectConfig, root: Path = Path(".")):
        self.params = params
        self.config = config
        self.root = Path(root)
        self.log = logging.getLogger(f"denseseg.stages.{self.name}")
        self.variant: str | None = None  # set for foreach stages such as uvmaps@jsrt

    @property
    def seed(self) -> int:
        return self.config.seed

    def path(self, relative: str | Path) -> Path:
        """A project path (as written in params.yaml) resolved against the project root."""
        return self.root / relative

    def prepare(self) -> None:
        """Read inputs and plan the work before ``shards()``; fail early with StageError."""

    def shards(self) -> Sequence[Any]:
        """The independent units of work; one by default."""
        return [None]

    @abstractmethod
    def process(self, shard: Any) -> Any:
        """Do the work of one shard. Must be safe to call from several threads at once."""

    @abstractmethod
    def finish(self, results: list[Any]) -> StageReport:
        """Combine shard results, write the outputs atomically, return the report."""

    def run_serial(self, progress: Callable[[int, int], None] | None = None) -> StageReport:
        """Run every shard in this thread, in order (tests, benchmarks, debugging)."""
        self.prepare()
        shards = list(self.shards())
        results = []
        for done, shard in enumerate(shards, 1):
            results.append(self.process(shard))
            if progress:
                progress(done, len(shards))
        return self.finish(results)


class ProjectConfig(BaseModel):
    """The top of params.yaml shared by all stages: the seed and the artefact paths."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int
    paths: dict[str, str]
    runner: RunnerParams


class RunnerParams(BaseModel):
    """How the Prefect layer maps shards: threads by default, a Dask cluster on demand."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = "threads"  # threads | dask | serial
    max_workers: int = 2
    dask_address: str | None = None  # an existing scheduler; None starts a local cluster
    retries: int = 1


ProjectConfig.model_rebuild()
