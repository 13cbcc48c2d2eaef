"""The command line contract: a stage runs as a Prefect flow, exit codes, one-line errors, overrides."""

import asyncio

import pytest

from denseseg.io.tables import MANIFEST, read_table
from tests.conftest import PROJECT, run_cli


def _outputs(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stage_runs_as_a_flow_with_its_parameters_and_artifacts(tiny_project, prefect_harness):
    done = run_cli(["ingest", "--quiet", "--set", "ingest.shard_size=1"], tiny_project, prefect_harness)
    assert done.returncode == 0, done.stderr
    assert "ingest: done (" in done.stdout
    assert len(read_table(tiny_project / "data/interim/ingest/manifest.parquet", MANIFEST)) == 3

    from prefect import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    async def recorded():
        async with get_client() as client:
            (run,) = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["ingest"])), limit=1)
            run = await client.read_flow_run(run.id)  # read back by id, as the UI does
            tasks = [t for t in await client.read_task_runs(limit=200) if t.flow_run_id == run.id]
            return run, tasks, await client.read_artifacts(limit=200), await client.read_logs(limit=200)

    run, tasks, artifacts, logs = asyncio.run(recorded())
    # the UI shows what ran with which --set
    assert run.parameters == {"stage": "ingest", "overrides": ["ingest.shard_size=1"], "root": ".", "quiet": True}
    assert run.name == "ingest --set ingest.shard_size=1" and run.state.is_completed()
    assert {t.split(":")[0] for t in run.tags} == {"pid", "host"}
    # the stage's own log lines reach the UI next to the flow's
    assert any(log.name == "denseseg.stages.ingest" and "rows selected" in log.message for log in logs)
    # one task run per shard (3 posterior-anterior images, shard_size 1), named after it
    assert sorted(t.name for t in tasks) == [
        "ingest shard 1/3 (0001_1297860395_01_WRI-L1_M014)",
        "ingest shard 2/3 (0002_0354485735_01_WRI-R1_F012)",
        "ingest shard 3/3 (0003_0662359226_01_WRI-L1_M011)",
    ]
    keys = {a.key for a in artifacts}
    assert {"ingest-metrics", "ingest-rejects", "ingest-summary"} <= keys
    assert any(a.type == "progress" and a.data == 100.0 for a in artifacts)


@pytest.mark.slow
def test_dask_runner_gives_the_same_bytes_as_threads(tiny_project, prefect_harness):
    assert run_cli(["ingest", "--quiet"], tiny_project, prefect_harness).returncode == 0
    first = _outputs(tiny_project / "data/interim/ingest")
    args = ["ingest", "--quiet", "--set", "runner.kind=dask", "--set", "ingest.shard_size=1"]
    done = run_cli(args, tiny_project, prefect_harness)
    assert done.returncode == 0, done.stderr
    assert _outputs(tiny_project / "data/interim/ingest") == first


def test_failures_exit_non_zero_with_one_line(tiny_project):
    bad = run_cli(["ingest", "--set", "ingest.height=oops"], tiny_project)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: ingest: params.yaml [ingest.height]: Input should be a valid integer, "
        "unable to parse string as an integer (1 error(s))"
    ]
    unknown = run_cli(["nosuchstage"], tiny_project)
    assert unknown.returncode == 2 and "unknown stage 'nosuchstage'" in unknown.stderr
    helptext = run_cli(["--help"], PROJECT)
    assert helptext.returncode == 0 and "ingest" in helptext.stdout and "--set" in helptext.stdout


def test_serial_mode_without_prefect(tiny_project):
    done = run_cli(["ingest", "--no-prefect"], tiny_project)
    assert done.returncode == 0, done.stderr
    assert (tiny_project / "data/interim/ingest/manifest.parquet").exists()


def test_console_scripts_point_at_the_command_lines(capsys):
    import importlib
    import tomllib

    scripts = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "denseseg": "pipelines.cli:main",
        "denseseg-locate": "denseseg.uv.locate:main",
        "denseseg-predict": "pipelines.predict:main",
    }
    for target in scripts.values():
        module, _, name = target.partition(":")
        try:  # argparse exits on --help; predict's main(argv) returns the status instead
            code = getattr(importlib.import_module(module), name)(["--help"])
        except SystemExit as done:
            code = done.code
        assert code == 0
    assert "--set" in capsys.readouterr().out
