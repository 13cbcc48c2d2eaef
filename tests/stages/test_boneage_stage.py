"""uvmaps -> train (DenseSeg, HeatReg) -> boneage on eight small synthetic wrists, through the real stages.

The inputs are the smallest honest route to what the stage reads: synthetic
wrists (masks, registration landmarks, splits, working-size images and a
manifest with ages), the real uvmaps and train stages with tiny networks, a
phantom truth (true landmarks = the registration ones jittered, bone ages
beside the chronological ones).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from denseseg.anatomy import WRIST
from denseseg.bone_age.metrics import age_metrics
from denseseg.bone_age.model import BoneAgeModel
from denseseg.inference.predictor import Predictor
from denseseg.io.tables import LANDMARKS, MANIFEST, TRUTH_IMAGES, read_table, write_table
from denseseg.shape.landmark_table import landmark_frame
from denseseg.uv.cache import UVCache
from stages.base import StageError
from stages.config import build_stage
from tests.conftest import PROJECT
from tests.stages.test_uvmaps_stage import _write_inputs

TINY_NET = {"channels": [4, 8], "num_res_units": 0, "features": 4}
SPLIT = ["train"] * 4 + ["val"] * 2 + ["test"] * 2
HEIGHT, WIDTH = 96, 56  # a small working frame keeps the uv maps and the landmark models fast
ONE_SOURCE = "boneage.sources={denseseg: denseseg-wrist}"  # where the second model adds nothing to a test
SOURCES = {"baseline", "registration", "denseseg", "heatreg", "truth"}


def _params(root):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["train"]["training"].update({"epochs": 1, "batch_size": 3, "threads": 1, "device": "cpu"})
    for method in params["train"]["methods"].values():
        method["backbone"] = dict(TINY_NET)
    params["train"]["methods"]["heatreg"]["heatmap"]["sigma"] = 2.0
    boneage = params["boneage"]
    boneage.update({"device": "cpu", "predict_batch": 4})
    boneage["network"]["members"] = 2
    boneage["training"].update({"epochs": 3, "batch_size": 4})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from denseseg.shape.synthetic import wrist_cases

    root = tmp_path_factory.mktemp("boneage")
    _params(root)
    cases = list(wrist_cases(len(SPLIT), seed=5, height=HEIGHT, width=WIDTH))
    names = [c[0] for c in cases]
    _write_inputs(root, names, [c[1] for c in cases], [c[2] for c in cases], SPLIT)
    ages = dict(zip(names, np.linspace(6.0, 17.0, len(names))))
    manifest_path = root / "data/interim/ingest/manifest.parquet"
    manifest = read_table(manifest_path, MANIFEST)
    manifest["age"] = manifest["filestem"].map(ages).astype(np.float32)
    write_table(manifest, manifest_path, MANIFEST)
    truth = pd.DataFrame({column: [None] * len(names) for column in TRUTH_IMAGES.names})
    truth["filestem"], truth["age"] = names, [ages[n] for n in names]
    truth["bone_age"] = [ages[n] + 0.5 * np.sin(i) for i, n in enumerate(names)]
    write_table(truth, root / "data/truth/images.parquet", TRUTH_IMAGES)
    rng = np.random.default_rng(0)
    true_points = np.stack([c[2] for c in cases]) + rng.normal(0, 0.5, (len(names), WRIST.n_landmarks, 2))
    frame = landmark_frame(names, true_points, WRIST)
    write_table(frame, root / "data/processed/truth-landmarks.parquet", LANDMARKS)
    build_stage("uvmaps@wrist", root).run_serial()
    for run in ("denseseg-wrist", "heatreg710-wrist"):
        build_stage(f"train@{run}", root).run_serial()
    return root, ages


@pytest.fixture(scope="module")
def ran(project):
    root, _ = project
    stage = build_stage("boneage", root)
    calls = []
    stage.progress_hook = lambda done, total, message: calls.append((done, total, message))
    report = stage.run_serial()
    return root, report, calls


def _copy(root, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns("boneage", "boneage.json", "checkpoints"))
    return copy


def test_metrics_have_the_agreed_shape_with_both_targets_on_the_phantom(ran):
    root, report, calls = ran
    metrics = json.loads((root / "reports/metrics/boneage.json").read_text())
    assert set(metrics) == {
        "n_train",
        "n_val",
        "n_test",
        "bucket_months",
        "members",
        "chronological",
        "bone_age",
        "paper",
    }
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (4, 2, 2)
    assert metrics["bucket_months"] == 4 and metrics["members"] == 2
    assert metrics["paper"] == {"registration": 14.1, "denseseg": 13.9, "heatreg": 14.1, "baseline": 27.4}
    for target in ("chronological", "bone_age"):
        assert set(metrics[target]) == SOURCES
        for figures in metrics[target].values():
            assert set(figures) == {"mae_months", "r2"} and figures["mae_months"] >= 0
    assert report.metrics["chronological"]["denseseg"] == metrics["chronological"]["denseseg"]
    # progress once per member: 2 targets x 4 sources x 2 members
    assert [c[0] for c in calls] == list(range(1, 17)) and {c[1] for c in calls} == {16}
    assert "bone_age / truth: member 2/2" in calls[-1][2]


def test_metrics_are_those_of_the_test_predictions_and_the_baseline_is_the_mean_training_age(ran, project):
    root, _, _ = ran
    _, ages = project
    metrics = json.loads((root / "reports/metrics/boneage.json").read_text())
    rows = pd.read_csv(root / "reports/boneage/predictions.csv")
    assert list(rows.columns) == ["filestem", "source", "target", "true_months", "predicted_months"]
    (plot,) = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]["boneage"]["plots"]
    declared = plot["reports/boneage/predictions.csv"]
    assert declared["template"] == "scatter" and {declared["x"], declared["y"]} <= set(rows.columns)
    test_items = sorted(UVCache(root / "data/processed/uvmaps/wrist").items_of("test"))
    for (target, source), part in rows.groupby(["target", "source"]):
        assert sorted(part["filestem"]) == test_items, (target, source)
        expected = age_metrics(part["true_months"], part["predicted_months"])
        assert metrics[target][source]["mae_months"] == pytest.approx(expected["mae_months"], abs=1e-3)
        assert metrics[target][source]["r2"] == pytest.approx(expected["r2"], abs=1e-3)
        assert ((part["predicted_months"] - 2) % 4).abs().max() < 1e-3  # bucket centres: 2, 6, 10, ... months
    chronological = rows[(rows["target"] == "chronological") & (rows["source"] == "registration")]
    assert np.allclose(chronological["true_months"], [12 * ages[s] for s in chronological["filestem"]], atol=1e-3)
    train = UVCache(root / "data/processed/uvmaps/wrist").items_of("train")
    mean = 12 * np.mean([ages[s] for s in train])
    true = 12 * np.array([ages[s] for s in test_items])
    assert metrics["chronological"]["baseline"]["mae_months"] == pytest.approx(np.abs(true - mean).mean(), rel=1e-5)
    assert (root / "reports/boneage/scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_saved_model_is_the_denseseg_ensemble_and_predicts_from_predicted_landmarks(ran):
    """What `predict` will do: DenseSeg's landmarks of a test image -> the saved ensemble -> the CSV's age."""
    root, _, _ = ran
    model = BoneAgeModel.from_folder(root / "models/boneage")
    assert model.info["source"] == "denseseg" and model.info["target"] == "chronological"
    assert model.info["trained_on"] == "registration + denseseg" and len(model.members) == 2
    assert (model.height, model.width) == (HEIGHT, WIDTH)
    cache = UVCache(root / "data/processed/uvmaps/wrist")
    items = cache.items_of("test")
    predictor = Predictor.from_folder(root / "models/denseseg-wrist", "cpu")
    images = torch.from_numpy(np.stack([cache.image(it) for it in items]))
    primary = predictor.method.estimators[0]
    landmarks = np.stack([p.landmarks[primary] for p in predictor.predict(images)])
    rows = pd.read_csv(root / "reports/boneage/predictions.csv")
    rows = rows[(rows["source"] == "denseseg") & (rows["target"] == "chronological")].set_index("filestem")
    assert np.allclose(model.predict(landmarks), rows.loc[items, "predicted_months"], atol=1e-3)


def test_the_same_params_give_the_same_bytes(ran, tmp_path):
    root, _, _ = ran
    copy = _copy(root, tmp_path)
    build_stage("boneage", copy).run_serial()
    for name in (
        "models/boneage/model.pt",
        "reports/metrics/boneage.json",
        "reports/boneage/predictions.csv",
        "reports/boneage/scatter.png",
    ):
        assert (copy / name).read_bytes() == (root / name).read_bytes(), name


def test_without_a_phantom_only_chronological_age_and_no_truth_source(project, tmp_path):
    copy = _copy(project[0], tmp_path)
    (copy / "data/truth/images.parquet").unlink()
    (copy / "data/processed/truth-landmarks.parquet").unlink()
    report = build_stage("boneage", copy, [ONE_SOURCE, "boneage.network.members=1"]).run_serial()
    metrics = json.loads((copy / "reports/metrics/boneage.json").read_text())
    assert "bone_age" not in metrics and set(metrics["chronological"]) == {"baseline", "registration", "denseseg"}
    assert report.metrics["members"] == 1
    assert set(pd.read_csv(copy / "reports/boneage/predictions.csv")["target"]) == {"chronological"}


def test_a_missing_model_names_the_training_to_run(project, tmp_path):
    copy = _copy(project[0], tmp_path)
    shutil.rmtree(copy / "models/heatreg710-wrist")
    with pytest.raises(StageError, match=r"run `dvc repro train@heatreg710-wrist` first"):
        build_stage("boneage", copy).run_serial()


def test_an_item_without_an_age_is_named(project, tmp_path):
    copy = _copy(project[0], tmp_path)
    path = copy / "data/interim/ingest/manifest.parquet"
    manifest = read_table(path, MANIFEST)
    item = UVCache(copy / "data/processed/uvmaps/wrist").items_of("val")[0]
    manifest.loc[manifest["filestem"] == item, "age"] = np.nan
    write_table(manifest, path, MANIFEST)
    with pytest.raises(StageError, match=f"no chronological age for item '{item}'"):
        build_stage("boneage", copy).run_serial()


def test_a_nan_loss_is_a_stage_error_naming_the_target_and_source(project, tmp_path):
    copy = _copy(project[0], tmp_path)
    with pytest.raises(StageError, match=r"boneage \(chronological, registration\): non-finite loss at epoch"):
        build_stage("boneage", copy, [ONE_SOURCE, "boneage.training.lr=1.0e+30"]).run_serial()
