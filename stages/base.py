"""The contract every stage follows, so that the Prefect layer can run any of them.

A stage is planned into shards, each shard is processed by a plain function
(thread-safe, no shared mutable state) and the results are combined by
``finish``, which writes the outputs atomically and returns a report. The same
stage runs serially (``run_serial``, used by tests and benchmarks) or mapped over
a Prefect task runner (``pipelines``).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import pandas as pd
from pydantic import BaseModel, ConfigDict

from denseseg.io.atomic import write_json_atomic
from denseseg.io.metrics import split_metrics
from denseseg.io.tables import REJECTS, empty_frame

# progress_hook(done, total, message): how a long single-shard stage tells its runner how far it is
ProgressHook = Callable[[int, int, str], None]


class StageParams(BaseModel):
    """Base of every stage's params section: unknown keys are an error, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StageError(RuntimeError):
    """A stage cannot run: bad params, missing or malformed inputs. The message is one line."""


@contextmanager
def stage_errors(prefix: str = "", errors: tuple[type[Exception], ...] = (ValueError, FileNotFoundError)):
    """Turn the library's ``errors`` raised inside the block into a one-line ``StageError`` (``prefix`` + message).

    The library names the file and the row in its messages; the stage adds where
    in the pipeline it happened, without a stack trace.
    """
    try:
        yield
    except errors as err:
        raise StageError(f"{prefix}{err}".replace("\n", " ")) from None


@dataclass
class StageReport:
    """What a stage tells the user: metrics, rejected items and extra tables."""

    metrics: dict[str, Any] = field(default_factory=dict)
    rejects: pd.DataFrame = field(default_factory=lambda: empty_frame(REJECTS))
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


P = TypeVar("P", bound=StageParams)
R = TypeVar("R")  # what ``process`` returns for one shard: a small frozen dataclass of the stage (or None)


class Stage(ABC, Generic[P, R]):
    """Base class: subclasses set ``name`` and ``Params`` and implement the hooks.

    ``Stage[Params, Result]``: ``process`` returns one ``Result`` per shard and
    ``finish`` receives them in shard order, so a result is read by field name,
    never by position.
    """

    name: ClassVar[str]
    Params: ClassVar[type[StageParams]]
    # Set by the runner (pipelines/flow.py: a Prefect progress artifact); None logs every tenth.
    progress_hook: ProgressHook | None = None

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
    def process(self, shard: Any) -> R:
        """Do the work of one shard. Must be safe to call from several threads at once."""

    @abstractmethod
    def finish(self, results: list[R]) -> StageReport:
        """Combine shard results, write the outputs atomically, return the report."""

    def report_progress(self, done: int, total: int, message: str = "") -> None:
        """Tell whoever runs the stage how far a long shard is (e.g. epochs of a training).

        With a ``progress_hook`` (the Prefect layer sets one) every call goes to
        it; without one, a line is logged at INFO when ``done`` reaches a new
        tenth of ``total`` and at the end, so that a terminal is not flooded. A
        ``done`` lower than the previous one starts a new count (the next phase).
        """
        if self.progress_hook is not None:
            self.progress_hook(done, total, message)
            return
        tenth = 10 if total <= 0 else min(10, 10 * done // total)
        with _PROGRESS_LOCK:
            last_done, last_tenth = getattr(self, "_progress_state", (-1, -1))
            if done < last_done:
                last_tenth = -1
            due = tenth > last_tenth
            self._progress_state = (done, max(tenth, last_tenth))
        if due:
            suffix = f": {message}" if message else ""
            self.log.info("%s: %d/%d (%d%%)%s", self.name, done, total, 100 * done // max(total, 1), suffix)

    def write_metrics(self, metrics: dict[str, Any], name: str | None = None) -> Path | None:
        """Write ``paths.metrics/<name>.json`` (numbers only) and, beside it, ``<name>-info.json`` (the rest).

        ``dvc metrics show`` and ``dvc metrics diff`` read the first; words such
        as a refiner's description go to the info file, written only when there
        are any (a stale one is removed). See ``split_metrics`` for the rules.
        Returns the path of the metrics file; None, with a warning, when the
        project has no ``paths.metrics`` (a stage run outside dvc.yaml, e.g. a benchmark).
        """
        if "metrics" not in self.config.paths:
            self.log.warning("%s: no paths.metrics in params.yaml; metrics not written", self.name)
            return None
        numbers, info = split_metrics(metrics)
        folder = self.path(self.config.paths["metrics"])
        stem = name or self.name
        path = folder / f"{stem}.json"
        write_json_atomic(path, numbers)
        info_path = folder / f"{stem}-info.json"
        if info:
            write_json_atomic(info_path, info)
        else:
            info_path.unlink(missing_ok=True)
        return path

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


_PROGRESS_LOCK = threading.Lock()


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
