import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from denseseg.anatomy import WRIST
from denseseg.io.mask_store import mask_rows, write_mask_shard
from denseseg.io.tables import LANDMARKS, SPLITS, write_table
from denseseg.shape.landmark_table import landmark_frame
from denseseg.shape.synthetic import wrist_cases
from denseseg.uv.cache import UVCache
from stages.base import StageError
from stages.config import build_stage

PROJECT = Path(__file__).resolve().parents[2]


def _project(tmp_path, **sections):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for key, value in sections.items():
        params[key].update(value)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def _wrist_inputs(root, n=6):
    cases = list(wrist_cases(n, seed=3, height=192, width=112))
    names = [c[0] for c in cases]
    write_table(
        landmark_frame(names, np.stack([c[2] for c in cases]), WRIST),
        root / "data/processed/landmarks.parquet",
        LANDMARKS,
    )
    rows = [r for name, masks, _ in cases for r in mask_rows(name, masks, WRIST.structures)]
    (root / "data/interim/masks").mkdir(parents=True)
    write_mask_shard(root / "data/interim/masks/shard-0000.parquet", rows)
    split = ["train"] * 4 + ["test"] * (n - 4)
    write_table(
        pd.DataFrame({"filestem": names, "patient_id": names, "split": split}),
        root / "data/processed/splits.parquet",
        SPLITS,
    )
    return cases


def test_subsample_and_uvmaps_wrist(tmp_path):
    root = _project(tmp_path)
    cases = _wrist_inputs(root)
    report = build_stage("subsample", root).run_serial()
    subsets = json.loads((root / "data/processed/subsets.json").read_text())
    assert report.metrics["selected"] == 178 == subsets["total"] == len(subsets["flat_indices"])
    report = build_stage("uvmaps@wrist", root, ["uvmaps.wrist.shard_size=4"]).run_serial()
    m = report.metrics
    assert m["items"] == 6 and m["exactness_ok"] and m["floor_median_px"] < 0.5
    out = root / "data/processed/uvmaps/wrist"
    assert (out / "template.json").exists() and len(list(out.glob("shard-*.parquet"))) == 2
    record = UVCache(out).read(cases[5][0])
    assert np.array_equal(record["masks"], cases[5][1])
    assert json.loads((root / "reports/metrics/uvmaps-wrist.json").read_text())["items"] == 6
    first = (out / "shard-0000.parquet").read_bytes()
    build_stage("uvmaps@wrist", root, ["uvmaps.wrist.shard_size=4"]).run_serial()
    assert (out / "shard-0000.parquet").read_bytes() == first
    assert not list(out.parent.glob("*.partial"))


def test_jsrt_phantom_then_uvmaps(tmp_path, shared_data):
    csv = str(shared_data / "jsrt-landmarks/landmarks.csv")
    root = _project(tmp_path, jsrt={"landmarks": csv, "limit": 8, "n_train": 5, "shard_size": 4})
    report = build_stage("jsrt", root).run_serial()
    assert report.metrics["cases"] == 8 and report.metrics["train"] == 5
    assert len(list((root / "data/jsrt/images").glob("*.png"))) == 8
    report = build_stage("uvmaps@jsrt", root).run_serial()
    assert report.metrics["items"] == 8 and report.metrics["exactness_ok"]
    assert report.metrics["floor_p95_px"] < 1.0 and report.metrics["cache_bytes_per_image"] > 0


def test_jsrt_without_landmarks_runs_on_named_stand_ins(tmp_path):
    """A fresh checkout has no JSRT landmarks: the chain still runs, on synthetic chests, and says so."""
    root = _project(
        tmp_path,
        jsrt={"landmarks": "data/external/none.csv", "limit": 6, "n_train": 4, "shard_size": 3, "synthetic_cases": 10},
    )
    report = build_stage("jsrt", root).run_serial()
    assert report.metrics["cases"] == 6 and report.metrics["landmarks"].startswith("synthetic")
    first = (root / "data/jsrt/landmarks.parquet").read_bytes()
    assert build_stage("jsrt", root).run_serial().metrics["cases"] == 6
    assert (root / "data/jsrt/landmarks.parquet").read_bytes() == first  # seeded: the same stand-ins
    report = build_stage("uvmaps@jsrt", root).run_serial()
    assert report.metrics["items"] == 6 and report.metrics["exactness_ok"] and report.metrics["rejected"] == 0
    with pytest.raises(StageError, match="need their landmarks"):
        _project(tmp_path, jsrt={"landmarks": "data/external/none.csv", "images": "somewhere"})
        build_stage("jsrt", root).run_serial()
