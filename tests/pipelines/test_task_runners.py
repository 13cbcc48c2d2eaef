"""The runner that params.yaml names is the one that runs the shards.

The CLI test of the Dask runner compares its outputs with the threads runner's,
which it would also match if ``runner.kind=dask`` quietly ran on threads. Here
the oracle is the operating system: a task on the Dask runner reports the
process it ran in, which must not be this one (the local cluster uses worker
processes), while on the threads runner it is this one.
"""

import os

import pytest

from pipelines.task_runners import build_task_runner
from stages.base import RunnerParams, StageError


def _runner(kind: str, max_workers: int = 1, address: str | None = None):
    return build_task_runner(RunnerParams(kind=kind, max_workers=max_workers, dask_address=address, retries=0))


def test_each_kind_builds_its_own_runner():
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    threads, serial, dask = _runner("threads", 3), _runner("serial", 3), _runner("dask", 2)
    assert type(threads) is ThreadPoolTaskRunner and threads._max_workers == 3
    assert type(serial) is ThreadPoolTaskRunner and serial._max_workers == 1
    assert type(dask) is DaskTaskRunner and dask.address is None
    assert dask.cluster_kwargs["processes"] is True and dask.cluster_kwargs["n_workers"] == 2
    remote = _runner("dask", 2, "tcp://scheduler:8786")
    assert type(remote) is DaskTaskRunner and remote.address == "tcp://scheduler:8786"
    with pytest.raises(StageError, match=r"params.yaml \[runner.kind\]: unknown runner 'mpi'"):
        _runner("mpi")


def _process_ids(kind: str) -> set[int]:
    from prefect import flow, task

    @task
    def where(_: int) -> int:
        return os.getpid()

    @flow(task_runner=_runner(kind, 1))
    def probe() -> list[int]:
        return [future.result() for future in where.map([0, 1])]

    return set(probe())


@pytest.mark.slow
def test_dask_tasks_run_in_a_worker_process_and_threads_tasks_in_this_one(prefect_harness):
    assert _process_ids("threads") == {os.getpid()}
    dask_pids = _process_ids("dask")
    assert len(dask_pids) == 1 and os.getpid() not in dask_pids
