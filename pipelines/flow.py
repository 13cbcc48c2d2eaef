"""Run one stage as a Prefect flow: one task run per shard, progress and table artifacts.

The stage itself knows nothing of Prefect; this module only schedules its
``process`` over shards and publishes what ``finish`` reports.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.futures import as_completed
from tqdm import tqdm

from pipelines.task_runners import build_task_runner
from stages.base import Stage, StageReport

MAX_TABLE_ROWS = 500  # the UI is for reading, the Parquet files hold everything


def artifact_key(text: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


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


@task(name="process-shard")
def process_shard(stage: Stage, shard: Any) -> Any:
    return stage.process(shard)


def run_stage(stage: Stage, stage_name: str, show_progress: bool = True) -> StageReport:
    """Run ``stage`` as a flow named after it, with the task runner of params.yaml."""
    runner = stage.config.runner

    @flow(name=stage_name.replace("@", "-"), task_runner=build_task_runner(runner), log_prints=True)
    def stage_flow() -> StageReport:
        logger = get_run_logger()
        stage.prepare()
        shards = list(stage.shards())
        logger.info("%s: %d shard(s) on the %s runner", stage_name, len(shards), runner.kind)
        progress_id = create_progress_artifact(progress=0.0, description=f"{stage_name}: shards done (%)")
        task_fn = process_shard.with_options(retries=runner.retries, retry_delay_seconds=1)
        futures = task_fn.map([stage] * len(shards), shards) if shards else []
        order = {id(f): i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        with tqdm(total=len(futures), desc=stage_name, unit="shard", disable=not show_progress) as bar:
            for done, future in enumerate(as_completed(futures), 1):
                results[order[id(future)]] = future.result()
                bar.update(1)
                update_progress_artifact(progress_id, progress=100.0 * done / len(futures))
        report = stage.finish(results)
        publish(stage_name, report)
        if len(report.rejects):
            logger.warning("%s: %d item(s) rejected; see the rejects table", stage_name, len(report.rejects))
        create_markdown_artifact(
            key=f"{artifact_key(stage_name)}-summary",
            markdown=f"# {stage_name}\n\n" + "\n".join(f"- **{k}**: {v}" for k, v in _flatten(report.metrics).items()),
        )
        return report

    return stage_flow()
