"""The stage flow in this process: retries on transient errors only, progress of a long shard, crashed runs."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import pipelines.flow as stage_flow_module
from pipelines.flow import describe_shard, mark_crashed_runs, process_alive, run_stage, shard_label
from stages.base import ProjectConfig, RunnerParams, Stage, StageError, StageParams, StageReport


class ScriptedStage(Stage):
    """One shard whose attempts are counted; each attempt raises the next scripted error, then succeeds."""

    name = "scripted"
    Params = StageParams

    def __init__(self, errors: list[BaseException], steps: int = 0):
        config = ProjectConfig(seed=0, paths={}, runner=RunnerParams(kind="threads", max_workers=1, retries=2))
        super().__init__(StageParams(), config)
        self.errors = list(errors)
        self.steps = steps
        self.attempts = 0
        self.lock = threading.Lock()

    def process(self, shard):
        with self.lock:
            self.attempts += 1
            error = self.errors.pop(0) if self.errors else None
        if error is not None:
            raise error
        for done in range(1, self.steps + 1):
            self.report_progress(done, self.steps, f"epoch {done}")
        return "ok"

    def finish(self, results) -> StageReport:
        return StageReport(metrics={"results": len(results)})


@pytest.fixture
def scripted(monkeypatch):
    """Run a ScriptedStage through the real flow under the name given (build_stage is pointed at it)."""

    def run(stage: ScriptedStage, name: str):
        monkeypatch.setattr(stage_flow_module, "build_stage", lambda *args, **kwargs: stage)
        return run_stage(name, Path("."), [], show_progress=False)

    return run


def _read(coro_fn):
    from prefect import get_client

    async def go():
        async with get_client() as client:
            return await coro_fn(client)

    return asyncio.run(go())


def test_a_stage_error_is_not_retried(prefect_harness, scripted):
    stage = ScriptedStage([StageError("bad input: row 3 has no filestem")])
    with pytest.raises(StageError, match="row 3"):
        scripted(stage, "scripted-stage-error")
    assert stage.attempts == 1


def test_a_transient_error_is_retried(prefect_harness, scripted):
    stage = ScriptedStage([OSError("stale NFS handle"), TimeoutError("read timed out")])
    report = scripted(stage, "scripted-transient")
    assert stage.attempts == 3 and report.metrics == {"results": 1}


def test_progress_of_a_long_shard_goes_to_an_artifact_and_the_log(prefect_harness, scripted):
    stage = ScriptedStage([], steps=40)
    scripted(stage, "scripted-progress")

    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # logs go to the API in batches

    async def read(client):
        from prefect.client.schemas.filters import (
            ArtifactFilter,
            ArtifactFilterKey,
            FlowFilter,
            FlowFilterName,
            LogFilter,
            LogFilterFlowRunId,
        )

        (run,) = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["scripted-progress"])))
        key = ArtifactFilterKey(any_=["scripted-progress-progress"])
        logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])))
        return await client.read_artifacts(artifact_filter=ArtifactFilter(key=key)), logs

    artifacts, logs = _read(read)
    progress = [a for a in artifacts if a.key == "scripted-progress-progress"]
    assert len(progress) == 1 and progress[0].type == "progress" and progress[0].data == 100.0
    assert progress[0].description == "scripted-progress: epoch 40"
    lines = [log.message for log in logs if log.message.startswith("scripted-progress: ") and "epoch" in log.message]
    # a line per tenth: 1 (0 %), 4 (10 %), 8, ..., 40 (100 %)
    assert len(lines) == 11 and lines[-1] == "scripted-progress: 40/40 (100%): epoch 40"


def test_report_progress_without_a_hook_logs_every_tenth(caplog):
    stage = ScriptedStage([])
    with caplog.at_level(logging.INFO, logger="denseseg.stages.scripted"):
        for done in range(1, 21):
            stage.report_progress(done, 20)
        for done in range(1, 6):  # the next phase counts again
            stage.report_progress(done, 5, "phase 2")
    logged = [r.getMessage() for r in caplog.records]
    assert logged[0] == "scripted: 1/20 (5%)" and logged[1] == "scripted: 2/20 (10%)"
    assert logged[10] == "scripted: 20/20 (100%)" and len(logged) == 11 + 5
    assert logged[-1] == "scripted: 5/5 (100%): phase 2"


def test_a_hook_gets_every_report():
    stage = ScriptedStage([])
    seen = []
    stage.progress_hook = lambda done, total, message: seen.append((done, total, message))
    stage.report_progress(1, 3)
    stage.report_progress(3, 3, "done")
    assert seen == [(1, 3, ""), (3, 3, "done")]


def test_shard_labels_tell_shards_apart():
    Row = type("Row", (), {"filestem": "0001_x"})
    assert describe_shard(None) == "" and describe_shard(Path("a/shard-0003.parquet")) == "shard-0003.parquet"
    assert describe_shard((16, 32)) == "items 16-32" and describe_shard([Row(), Row(), Row()]) == "0001_x +2"
    assert describe_shard([Row()]) == "0001_x" and describe_shard([1.5, 2.5]) == "2 items"
    assert shard_label("split", 0, 1, None) == "split shard 1/1"
    assert shard_label("phantom", 2, 4, (32, 48)) == "phantom shard 3/4 (items 32-48)"


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_runs_left_running_by_a_dead_process_are_marked_crashed(prefect_harness):
    from prefect import flow, get_client, task
    from prefect.client.schemas.objects import StateType
    from prefect.states import Running

    @flow(name="crash-check")
    def crash_check():
        pass

    @task(name="crash-check-shard")
    def shard():
        pass

    host = socket.gethostname()
    dead = _dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with get_client(sync_client=True) as client:

            def make(pid, on_host):
                return client.create_flow_run(crash_check, state=Running(), tags=[f"pid:{pid}", f"host:{on_host}"])

            killed, living, elsewhere = make(dead, host), make(alive.pid, host), make(dead, "another-machine")
            shard_run = client.create_task_run(shard, flow_run_id=killed.id, dynamic_key="0", state=Running())
        assert process_alive(alive.pid) and not process_alive(dead)

        assert mark_crashed_runs("crash-check") == [str(killed.id)]

        with get_client(sync_client=True) as client:
            killed_state, living_state, elsewhere_state = (
                client.read_flow_run(run.id).state for run in (killed, living, elsewhere)
            )
            task_state = client.read_task_run(shard_run.id).state
        assert killed_state.type == StateType.CRASHED
        assert f"process {dead} on {host} is gone" in killed_state.message
        assert living_state.type == StateType.RUNNING and elsewhere_state.type == StateType.RUNNING
        assert task_state.type == StateType.CRASHED
        assert mark_crashed_runs("crash-check") == []  # nothing left to mark
    finally:
        alive.kill()
        alive.wait()


def test_a_reused_pid_is_not_the_earlier_process():
    from datetime import UTC, datetime, timedelta

    long_ago = datetime.now(UTC) - timedelta(days=1)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # the process with that pid started after the run did: another process got the pid again
        assert process_alive(live.pid) and not process_alive(live.pid, since=long_ago)
    finally:
        live.kill()
        live.wait()
