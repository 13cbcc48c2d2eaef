"""Run one stage as a Prefect flow: one task run per shard, progress and table artifacts.

The stage itself knows nothing of Prefect; this module only schedules its
``process`` over shards and publishes what ``finish`` reports.

One flow, ``stage_flow``, is defined here with the parameters that say what ran
(``stage``, ``overrides``, ``root``), so that the UI shows them for every run;
``run_stage`` names it after the stage (one flow per stage in the UI) and gives
it the task runner of params.yaml. Each flow run is tagged with the pid and the
host of the process that runs it: a run whose process was killed (``kill -9``
cannot be caught, so the run stays "Running") is marked Crashed at the next
start of the same stage on that host (``mark_crashed_runs``).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, tags, task, unmapped
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from tqdm import tqdm

from pipelines.task_runners import build_task_runner
from stages.base import Stage, StageError, StageReport
from stages.config import build_stage

MAX_TABLE_ROWS = 500  # the UI is for reading, the Parquet files hold everything
# Errors worth a retry: the file system or network hiccuped. A StageError (bad params or input) never is.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, ConnectionError)
PID_TAG, HOST_TAG = "pid:", "host:"
log = logging.getLogger("denseseg.pipelines")


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def flow_name(stage_name: str) -> str:
    """The flow of a stage in the UI: ``uvmaps@jsrt`` -> ``uvmaps-jsrt``."""
    return stage_name.replace("@", "-")


def _table_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    def clean(value):
        if isinstance(value, float) and math.isnan(value):
            return None
        return value.item() if hasattr(value, "item") else value

    return [{k: clean(v) for k, v in row.items()} for row in frame.head(MAX_TABLE_ROWS).to_dict("records")]


def _flatten(metrics: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif not isinstance(value, list):
            flat[name] = value
    return flat


def publish(stage_name: str, report: StageReport) -> None:
    """Metrics, rejects and extra tables as artifacts of the flow run."""
    key = artifact_key(stage_name)
    metrics = _flatten(report.metrics)
    if metrics:
        create_table_artifact(
            key=f"{key}-metrics",
            table=[{"metric": k, "value": v} for k, v in metrics.items()],
            description=f"{stage_name}: metrics",
        )
    create_table_artifact(
        key=f"{key}-rejects",
        table=_table_rows(report.rejects) or [{"filestem": None, "stage": stage_name, "reason": "no rejects"}],
        description=f"{stage_name}: {len(report.rejects)} rejected item(s) (first {MAX_TABLE_ROWS} shown)",
    )
    for name, frame in report.tables.items():
        create_table_artifact(
            key=f"{key}-{artifact_key(name)}", table=_table_rows(frame), description=f"{stage_name}: {name}"
        )


# ---- shards ---------------------------------------------------------------------------------


def describe_shard(shard: Any) -> str:
    """A few words that tell shards apart in the UI: a file name, an index range, a first item."""
    if shard is None:
        return ""
    if isinstance(shard, Path):
        return shard.name
    if isinstance(shard, (str, int, float)):
        return str(shard)
    if isinstance(shard, tuple) and len(shard) == 2 and all(isinstance(v, int) for v in shard):
        return f"items {shard[0]}-{shard[1]}"
    if isinstance(shard, Sequence) and len(shard):
        first = getattr(shard[0], "filestem", None) or getattr(shard[0], "name", None)
        if isinstance(first, str):
            return f"{first} +{len(shard) - 1}" if len(shard) > 1 else first
        return f"{len(shard)} items"
    text = repr(shard)
    return text if len(text) <= 40 else text[:37] + "..."


def shard_label(stage_name: str, index: int, total: int, shard: Any) -> str:
    """The task run name of one shard: ``ingest shard 3/12 (0007_... +63)``."""
    words = describe_shard(shard)
    return f"{stage_name} shard {index + 1}/{total}" + (f" ({words})" if words else "")


def retry_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: retry a shard on a transient error only, never on a StageError."""
    try:
        state.result()
    except StageError:
        return False
    except TRANSIENT_ERRORS:
        return True
    except Exception:
        return False
    return False


@task(
    name="process-shard",
    task_run_name="{label}",
    cache_policy=NO_CACHE,  # the default policy would pickle the whole stage per shard for a key nothing reads
    persist_result=False,
    retry_condition_fn=retry_transient,
)
def process_shard(stage: Stage, shard: Any, label: str) -> Any:
    return stage.process(shard)


# ---- progress of a long shard -----------------------------------------------------------------


class ProgressArtifact:
    """``Stage.progress_hook`` for the UI: one progress artifact per stage run and a log line per tenth.

    Created on the first report (a stage that never reports has none); the
    artifact is updated when the share done grows by a whole percent, so that a
    hook called every batch does not flood the API.
    """

    def __init__(self, stage_name: str):
        self.stage_name = stage_name
        self._lock = threading.Lock()
        self._artifact_id = None
        self._percent = -1.0
        self._tenth = -1
        self._done = -1

    def __getstate__(self) -> dict:  # a Dask worker gets a fresh lock
        state = dict(self.__dict__)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def __call__(self, done: int, total: int, message: str = "") -> None:
        percent = 100.0 if total <= 0 else min(100.0, 100.0 * done / total)
        description = f"{self.stage_name}: {message or 'progress'}"
        with self._lock:
            if done < self._done:  # a new phase counts from zero again
                self._percent, self._tenth = -1.0, -1
            self._done = done
            update = percent >= self._percent + 1.0 or (percent >= 100.0 and self._percent < 100.0)
            tenth = int(percent // 10)
            log = tenth > self._tenth
            if update:
                self._percent = percent
                if self._artifact_id is None:
                    self._artifact_id = create_progress_artifact(
                        progress=percent, key=f"{artifact_key(self.stage_name)}-progress", description=description
                    )
                else:
                    update_progress_artifact(self._artifact_id, progress=percent, description=description)
            if log:
                self._tenth = tenth
        if log:
            suffix = f": {message}" if message else ""
            get_run_logger().info("%s: %d/%d (%.0f%%)%s", self.stage_name, done, total, percent, suffix)


# ---- crashed runs ---------------------------------------------------------------------------------


def process_tags() -> list[str]:
    """Tags that identify the process running a flow: its pid and its host."""
    return [f"{PID_TAG}{os.getpid()}", f"{HOST_TAG}{socket.gethostname()}"]


def _tag_value(run_tags: Sequence[str], prefix: str) -> str | None:
    return next((t[len(prefix) :] for t in run_tags if t.startswith(prefix)), None)


def process_alive(pid: int, since: datetime | None = None) -> bool:
    """Whether the process ``pid`` of an earlier run is still there (not a later process with the same pid).

    Our own pid cannot be an earlier run's (this is called before our flow run
    starts), and a process started after ``since`` (the run's start) is another
    process that got the pid again, which is common in containers.
    """
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    if since is not None:
        try:
            import psutil

            return psutil.Process(pid).create_time() <= since.timestamp() + 1.0
        except ImportError:
            return True
        except Exception:  # gone meanwhile, or unreadable
            return False
    return True


def mark_crashed_runs(name: str, host: str | None = None) -> list[str]:
    """Mark the flow runs of flow ``name`` that are "Running" without a live process as Crashed.

    Only runs tagged with this host are judged (a pid means nothing on another
    machine); the task runs they left "Running" are marked too. Returns the ids
    of the runs marked.
    """
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    host = host or socket.gethostname()
    marked = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[name])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING])),
                tags=FlowRunFilterTags(all_=[f"{HOST_TAG}{host}"]),
            ),
        )
        for run in runs:
            pid = _tag_value(run.tags, PID_TAG)
            if pid is None or not pid.isdigit() or process_alive(int(pid), run.start_time):
                continue
            reason = (
                f"process {pid} on {host} is gone (killed, e.g. kill -9, or the machine stopped); "
                f"marked at the next start of {name} by process {os.getpid()}"
            )
            client.set_flow_run_state(run.id, Crashed(message=reason), force=True)
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                task_run_filter=TaskRunFilter(
                    state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType.RUNNING]))
                ),
            )
            for task_run in tasks:
                client.set_task_run_state(task_run.id, Crashed(message=reason), force=True)
            marked.append(str(run.id))
    return marked


# ---- the flow ---------------------------------------------------------------------------------


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    sets = " ".join(f"--set {o}" for o in params.get("overrides") or [])
    return f"{params.get('stage')} {sets}".strip()


@flow(name="stage", flow_run_name=_run_name, log_prints=True, persist_result=False)
def stage_flow(stage: str, overrides: list[str], root: str = ".", quiet: bool = False) -> StageReport:
    """One DVC stage: ``stage`` as in dvc.yaml, ``overrides`` as given to ``--set``, ``root`` the project folder."""
    logger = get_run_logger()
    obj = build_stage(stage, Path(root), overrides)
    runner = obj.config.runner
    obj.progress_hook = ProgressArtifact(stage)
    obj.prepare()
    shards = list(obj.shards())
    logger.info("%s: %d shard(s) on the %s runner", stage, len(shards), runner.kind)
    progress_id = create_progress_artifact(progress=0.0, description=f"{stage}: shards done (%)")
    task_fn = process_shard.with_options(retries=runner.retries, retry_delay_seconds=1)
    labels = [shard_label(stage, i, len(shards), s) for i, s in enumerate(shards)]
    futures = task_fn.map(unmapped(obj), shards, labels) if shards else []
    order = {id(f): i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(futures)
    with tqdm(total=len(futures), desc=stage, unit="shard", disable=quiet) as bar:
        for done, future in enumerate(as_completed(futures), 1):
            results[order[id(future)]] = future.result()
            bar.update(1)
            update_progress_artifact(progress_id, progress=100.0 * done / len(futures))
    report = obj.finish(results)
    publish(stage, report)
    if len(report.rejects):
        logger.warning("%s: %d item(s) rejected; see the rejects table", stage, len(report.rejects))
    create_markdown_artifact(
        key=f"{artifact_key(stage)}-summary",
        markdown=f"# {stage}\n\n" + "\n".join(f"- **{k}**: {v}" for k, v in _flatten(report.metrics).items()),
    )
    return report


def run_stage(stage_name: str, root: Path, overrides: list[str], show_progress: bool = True) -> StageReport:
    """Run a stage as its flow (named after it) on the task runner of params.yaml.

    Params are checked here first, so that a typo in ``--set`` fails before a
    flow run exists; runs of the same stage left "Running" by a killed process
    are marked Crashed before the new one starts.
    """
    runner = build_stage(stage_name, root, overrides).config.runner
    name = flow_name(stage_name)
    started = time.perf_counter()
    try:
        crashed = mark_crashed_runs(name)
    except Exception as err:  # housekeeping never stops a stage
        log.warning("%s: could not check for crashed runs (%s: %s)", stage_name, type(err).__name__, err)
    else:
        if crashed:
            log.warning(
                "%s: %d earlier run(s) without a live process marked Crashed (%.1f s)",
                stage_name,
                len(crashed),
                time.perf_counter() - started,
            )
    configured = stage_flow.with_options(name=name, task_runner=build_task_runner(runner))
    with tags(*process_tags()):
        return configured(stage=stage_name, overrides=list(overrides), root=str(root), quiet=not show_progress)
