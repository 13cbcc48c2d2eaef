"""jsrt -> uvmaps -> train -> evaluate on a tiny chest phantom, through the real stages.

Also: a training killed with SIGKILL resumes at the next run and ends with the same
bytes as an uninterrupted one; bad checkpoints and models fail with a clear message.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from denseseg.anatomy import JSRT
from stages.base import StageError
from stages.config import build_stage
from tests.conftest import PROJECT

TINY_NET = {"channels": [4, 8], "num_res_units": 0, "features": 4}
RUNS = ("denseseg-jsrt", "heatreg-jsrt", "shapeformer-jsrt")
TINY_SHAPEFORMER = {"features": 4, "width": 4, "layers": 1, "k": 4, "iterations": 1}


def tiny_params(root: Path, epochs: int = 2) -> None:
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["jsrt"].update({"limit": 14, "n_train": 9, "n_val": 2, "size": 64, "shard_size": 8})
    train = params["train"]
    train["training"].update({"epochs": epochs, "batch_size": 3, "threads": 1, "device": "cpu"})
    for method in train["methods"].values():
        if "backbone" in method:
            method["backbone"] = dict(TINY_NET)
    train["methods"]["shapeformer"]["network"] = dict(TINY_SHAPEFORMER)
    train["methods"]["heatreg"]["heatmap"]["sigma"] = 2.0
    train["runs"] = {name: {**train["runs"][name], "training": {"epochs": epochs}} for name in RUNS}
    params["evaluate"].update({"threads": 1, "device": "cpu"})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def chest_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("chest")
    (root / "data/external").mkdir(parents=True)
    tiny_params(root)
    build_stage("jsrt", root).run_serial()
    build_stage("uvmaps@jsrt", root).run_serial()
    return root


@pytest.fixture(scope="module")
def trained(chest_project):
    root = chest_project
    reports = {name: build_stage(f"train@{name}", root).run_serial() for name in RUNS}
    evals = {name: build_stage(f"evaluate@{name}", root).run_serial() for name in RUNS}
    return root, reports, evals


def test_training_writes_model_checkpoints_curve_and_metrics(trained):
    root, reports, _ = trained
    for name in RUNS:
        assert (root / "models" / name / "model.pt").exists()
        assert {p.name for p in (root / "checkpoints" / name).iterdir()} >= {"last.pt", "best.pt"}
        curve = pd.read_csv(root / "reports/plots/train" / f"{name}.csv")
        assert list(curve["epoch"]) == [1, 2] and {"train_loss", "val_tre_px", "lr"} <= set(curve.columns)
        metrics = json.loads((root / "reports/metrics" / f"train-{name}.json").read_text())
        assert metrics["epochs"] == 2 and metrics["best_epoch"] in (1, 2)
        assert metrics["train_items"] == 7 and metrics["val_items"] == 2  # n_train 9 = 7 train + 2 val


def test_evaluation_scores_every_test_image_structure_and_estimator(trained):
    root, _, evals = trained
    cases = pd.read_parquet(root / "reports/eval/denseseg-jsrt/cases.parquet")
    test_images = 14 - 9
    assert len(cases) == test_images * len(JSRT.structures) * 2  # affine and softmin
    assert set(cases["estimator"]) == {"affine", "softmin"}
    assert cases["dsc"].between(0, 1).all()
    metrics = json.loads((root / "reports/metrics/eval-denseseg-jsrt.json").read_text())
    assert metrics["test_images"] == test_images
    heat = pd.read_parquet(root / "reports/eval/heatreg-jsrt/cases.parquet")
    assert set(heat["estimator"]) == {"subpixel"} and len(heat) == test_images * len(JSRT.structures)
    shape = pd.read_parquet(root / "reports/eval/shapeformer-jsrt/cases.parquet")
    assert set(shape["estimator"]) == {"landmarks"} and len(shape) == test_images * len(JSRT.structures)
    assert shape["tre_px"].notna().all()  # it predicts every landmark it was trained on
    for label in ("best", "median", "worst"):
        assert (root / "reports/eval/denseseg-jsrt" / f"{label}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tables_put_our_figures_beside_the_papers(trained):
    root, _, _ = trained
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tables"] = {
        "table1": {
            "anatomy": "jsrt",
            "columns": {
                "ShapeFormer": {"run": "shapeformer-jsrt", "paper": "shapeformer"},
                "HeatReg": {"run": "heatreg-jsrt", "paper": "heatreg"},
                "ours": {"run": "denseseg-jsrt", "paper": "denseseg"},
            },
        },
        "table2": None,
        "new_landmarks": None,
        "estimators": ["denseseg-jsrt"],
    }
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    build_stage("tables", root).run_serial()
    table = (root / "reports/tables/table1.md").read_text()
    assert "| lungs |" in table and "| pooled |" in table
    assert " / 97.1 ± 0.9" in table  # HeatReg's published lung DSC beside ours
    assert " / 95.6 ± 2.0" in table  # ShapeFormer's
    figures = json.loads((root / "reports/tables/tables.json").read_text())
    ours = figures["table1"]["columns"]["ours"]["rows"]["lungs"]["DSC"]["ours"]["mean"]
    cases = pd.read_parquet(root / "reports/eval/denseseg-jsrt/cases.parquet")
    lungs = cases[cases["primary"] & cases["structure"].str.endswith("lung")]
    assert ours == pytest.approx(lungs["dsc"].mean())  # the table's cell is the cases' mean
    estimators = (root / "reports/tables/estimators.md").read_text()
    assert "affine" in estimators and "softmin" in estimators


def test_training_is_deterministic(trained, tmp_path):
    root, _, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("models", "checkpoints", "reports"))
    for run in ("denseseg-jsrt", "shapeformer-jsrt"):  # shapeformer: its initial shapes are seeded too
        build_stage(f"train@{run}", copy).run_serial()
        assert (copy / f"models/{run}/model.pt").read_bytes() == (root / f"models/{run}/model.pt").read_bytes()


def test_a_corrupt_model_is_a_clear_stage_error(trained, tmp_path):
    root, _, _ = trained
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    model = copy / "models/heatreg-jsrt/model.pt"
    model.write_bytes(model.read_bytes()[:1000])
    with pytest.raises(StageError, match="model.pt: unreadable model file"):
        build_stage("evaluate@heatreg-jsrt", copy).run_serial()


def test_an_unknown_run_is_a_clear_stage_error(chest_project):
    with pytest.raises(StageError, match="no run 'nope-jsrt'"):
        build_stage("train@nope-jsrt", chest_project).run_serial()


def test_a_nan_loss_stops_training_with_the_epoch_named(chest_project, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(chest_project, copy, ignore=shutil.ignore_patterns("models", "checkpoints", "reports"))
    with pytest.raises(StageError, match="train@denseseg-jsrt: .*epoch 1"):
        build_stage("train@denseseg-jsrt", copy, ["train.training.lr=1.0e+30"]).run_serial()


@pytest.mark.slow
def test_a_killed_training_resumes_to_the_same_bytes(chest_project, tmp_path):
    """SIGKILL after the first epoch's checkpoint, run again: the model equals an uninterrupted run's."""
    epochs = 6
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    for copy in (whole, killed):
        shutil.copytree(chest_project, copy, ignore=shutil.ignore_patterns("models", "checkpoints", "reports"))
        tiny_params(copy, epochs=epochs)
    build_stage("train@denseseg-jsrt", whole).run_serial()

    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    command = [
        sys.executable,
        "-c",
        "from stages.config import build_stage; build_stage('train@denseseg-jsrt').run_serial()",
    ]
    proc = subprocess.Popen(command, cwd=killed, env=env)
    last = killed / "checkpoints/denseseg-jsrt/last.pt"
    deadline = time.monotonic() + 300
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists() and not (killed / "models/denseseg-jsrt/model.pt").exists()
    build_stage("train@denseseg-jsrt", killed).run_serial()
    assert (killed / "models/denseseg-jsrt/model.pt").read_bytes() == (
        whole / "models/denseseg-jsrt/model.pt"
    ).read_bytes()
