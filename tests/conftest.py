"""Shared fixtures: real reference data (skipped when absent), a tiny synthetic release, Prefect."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml

# Prefect and DVC must be configured before they are imported anywhere.
_PREFECT_HOME = tempfile.mkdtemp(prefix="denseseg-prefect-")
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DVC_NO_ANALYTICS"] = "true"
os.environ.pop("PREFECT_API_URL", None)

from tests.builders import csv_row, gradient_image, write_release  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]

SHARED_DATA = Path(os.environ.get("DENSESEG_SHARED_DATA", PROJECT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data beside the project (../shared/data); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real reference data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session; yields its API URL.

    Stages run in subprocesses pointed at it (as `dvc repro` runs them): Prefect's
    console logging keeps the first stderr it sees, which pytest closes per test.
    """
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        from prefect.settings import PREFECT_API_URL

        yield PREFECT_API_URL.value()
    shutil.rmtree(_PREFECT_HOME, ignore_errors=True)


@pytest.fixture
def tiny_project(tmp_path: Path):
    """A project folder with params.yaml and a 4-image release (one right hand, one lateral, one cast)."""
    stems = {
        "0001_1297860395_01_WRI-L1_M014": 14.1,
        "0001_1297860435_01_WRI-L2_M014": 14.1,
        "0002_0354485735_01_WRI-R1_F012": 12.0,
        "0003_0662359226_01_WRI-L1_M011": 11.1,
    }
    rows = [csv_row(s, a, cast=s.startswith("0003")) for s, a in stems.items()]
    images = {s: gradient_image(120 + 10 * i, 80, seed=i) for i, s in enumerate(stems)}
    write_release(tmp_path / "data/raw/grazpedwri-dx", rows, images)
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["ingest"].update({"height": 48, "width": 32, "shard_size": 2})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def run_cli(args: list[str], cwd: Path, api_url: str | None = None, timeout: int = 300):
    """Run ``python -m pipelines ...`` as dvc.yaml does; returns the CompletedProcess."""
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
