"""End to end: `dvc repro` on a tiny phantom runs every stage; a second repro does nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT

# A tiny configuration of every stage (the defaults are demo-scale, these are test-scale).
# Teenagers only, so that every bone is ossified and most images pass QC.
TINY = {
    "phantom": {
        "n_patients": 16,
        "height_min": 200,
        "height_max": 260,
        "age_min": 12.0,
        "age_max": 17.0,
        "n_seed_annotations": 8,
        "shard_size": 4,
    },
    "ingest": {"height": 96, "width": 64, "shard_size": 4},
    "propagate": {"rounds": 1, "epochs": 8, "finetune_epochs": 2},
    "jsrt": {"limit": 16, "n_train": 10, "n_val": 2},
    # enough images with landmarks in every split: training picks its checkpoint on val
    "split": {"test_fraction": 0.3, "val_fraction": 0.35},
    "train": {
        "training": {"epochs": 1, "batch_size": 2, "threads": 1},
        "methods": {
            "denseseg": {"backbone": {"channels": [4, 8], "num_res_units": 0, "features": 4}},
            "heatreg": {"backbone": {"channels": [4, 8], "num_res_units": 0, "features": 4}},
            "shapeformer": {"network": {"features": 4, "width": 4, "layers": 1, "k": 4, "iterations": 1}},
        },
        "runs": {
            run: {"training": {"epochs": 1}}
            for run in ("denseseg-jsrt", "denseseg_sparse-jsrt", "heatreg-jsrt", "shapeformer-jsrt")
        },
    },
    "evaluate": {"threads": 1},
    "nnunet": {
        "plan": {"base_features": 4, "max_features": 16, "max_stages": 3, "batch_size": 2},
        "schedule": {"epochs": 1, "iterations_per_epoch": 2, "val_iterations_per_epoch": 1, "save_every": 1},
        "threads": 1,
    },
    "tune": {"n_trials": 2, "workers": 1, "prune": {"dice_below": 0.0}},
    "boneage": {"network": {"members": 2}, "training": {"epochs": 3}},
}


def deep_update(base: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def _dvc(project: Path, *args: str, env: dict) -> subprocess.CompletedProcess:
    dvc = Path(sys.executable).with_name("dvc")
    return subprocess.run([str(dvc), *args], cwd=project, env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture
def dvc_project(tmp_path: Path, prefect_harness) -> tuple[Path, dict]:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("denseseg", "stages", "pipelines"):
        shutil.copytree(PROJECT / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT / "dvc.yaml", project / "dvc.yaml")
    (project / "data/external").mkdir(parents=True)  # no JSRT landmarks: the jsrt stage uses its stand-ins
    shutil.copy(PROJECT / "data/external/README.md", project / "data/external/README.md")
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    deep_update(params, TINY)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        PYTHONPATH=str(project),
        PREFECT_API_URL=prefect_harness,
        DVC_NO_ANALYTICS="true",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    assert _dvc(project, "init", "-q", env=env).returncode == 0
    return project, env


@pytest.mark.slow
def test_repro_runs_every_stage_then_nothing(dvc_project):
    project, env = dvc_project
    first = _dvc(project, "repro", env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    for stage in yaml.safe_load((project / "dvc.yaml").read_text())["stages"]:
        assert f"Running stage '{stage}" in first.stdout, stage
    for metrics in (
        "ingest",
        "propagation",
        "registration",
        "subsample",
        "uvmaps-wrist",
        "uvmaps-wrist178",
        "uvmaps-jsrt",
    ):
        assert (project / f"reports/metrics/{metrics}.json").exists(), metrics
    assert (project / "release/SHA256SUMS").exists()
    jsrt = yaml.safe_load((project / "reports/metrics/jsrt-info.json").read_text())  # the words of jsrt.json
    assert jsrt["landmarks"].startswith("synthetic")  # no landmarks in data/external: the stand-ins, named
    assert (project / "data/interim/ingest/manifest.parquet").exists()
    second = _dvc(project, "repro", env=env)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout
    status = _dvc(project, "status", env=env)
    assert "up to date" in status.stdout


def _outs(project: Path) -> dict[str, str]:
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    return {out["path"]: out["md5"] for stage in lock.values() for out in stage.get("outs", [])}


@pytest.mark.slow
def test_forced_rerun_gives_the_same_bytes(dvc_project):
    project, env = dvc_project
    assert _dvc(project, "repro", env=env).returncode == 0
    first = _outs(project)
    again = _dvc(project, "repro", "--force", env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert _outs(project) == first
