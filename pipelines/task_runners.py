"""Choose how shards are mapped: threads by default, a Dask cluster when the data outgrows one machine."""

from __future__ import annotations

from stages.base import RunnerParams, StageError


def build_task_runner(params: RunnerParams):
    from prefect.task_runners import ThreadPoolTaskRunner

    if params.kind == "threads":
        return ThreadPoolTaskRunner(max_workers=params.max_workers)
    if params.kind == "serial":
        return ThreadPoolTaskRunner(max_workers=1)
    if params.kind == "dask":
        from prefect_dask import DaskTaskRunner

        if params.dask_address:
            return DaskTaskRunner(address=params.dask_address)
        return DaskTaskRunner(
            cluster_kwargs={
                "n_workers": params.max_workers,
                "threads_per_worker": 1,
                "processes": True,
                "dashboard_address": None,
            }
        )
    raise StageError(f"params.yaml [runner.kind]: unknown runner {params.kind!r}; use threads, serial or dask")
