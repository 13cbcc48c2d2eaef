"""split: patient-level, deterministic, roughly the asked shares."""

import json
from pathlib import Path

import pandas as pd
import pytest

from denseseg.io.tables import MANIFEST, SPLITS, read_table, write_table
from stages.base import StageError
from stages.config import build_stage
from stages.split import patient_split

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"


def manifest(n_patients=50, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        for s in range(int(rng.integers(1, 4))):
            rows.append(
                {name: None for name in MANIFEST.names} | {"filestem": f"p{p:03d}_s{s}", "patient_id": f"{p:04d}"}
            )
    return pd.DataFrame(rows)


def test_no_patient_on_two_sides_and_shares():
    df = manifest()
    split = patient_split(df, 0.4, 0.15, seed=7)
    assert split.groupby("patient_id")["split"].nunique().max() == 1
    shares = split["split"].value_counts(normalize=True)
    assert abs(shares["test"] - 0.4) < 0.06
    assert 0.03 < shares["val"] < 0.15
    assert split.equals(patient_split(df.sample(frac=1, random_state=1), 0.4, 0.15, seed=7))
    assert not split.equals(patient_split(df, 0.4, 0.15, seed=8))


def test_stage_writes_splits_deterministically(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS.read_text())
    path = tmp_path / "data/interim/ingest/manifest.parquet"
    path.parent.mkdir(parents=True)
    df = manifest()
    df["study_number"] = 1
    write_table(df.astype({c: "object" for c in df.columns}).assign(study_number=1), path, MANIFEST)
    report = build_stage("split", tmp_path).run_serial()
    out = tmp_path / "data/processed/splits.parquet"
    first = out.read_bytes()
    build_stage("split", tmp_path).run_serial()
    assert out.read_bytes() == first
    splits = read_table(out, SPLITS)
    assert len(splits) == len(df) and set(splits["split"]) == {"train", "val", "test"}
    assert report.metrics["test_images"] + report.metrics["train_images"] + report.metrics["val_images"] == len(df)
    # reports/metrics/split.json (dvc.yaml declares it): the same counts, numbers only
    written = json.loads((tmp_path / "reports/metrics/split.json").read_text())
    assert written == report.metrics and all(type(v) is int for v in written.values())
    counts = splits.groupby("split")["patient_id"].nunique()
    assert written["val_patients"] == counts["val"] and written["test_images"] == (splits["split"] == "test").sum()
    assert not (tmp_path / "reports/metrics/split-info.json").exists()


def test_missing_manifest_is_a_stage_error(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS.read_text())
    with pytest.raises(StageError, match="manifest"):
        build_stage("split", tmp_path).run_serial()
