"""jsrt: the validation split is carved out of the training names, never out of test."""

from pathlib import Path

import pytest
import yaml

from denseseg.io.jsrt import split_names
from denseseg.io.tables import SPLITS, read_table
from stages.base import StageError
from stages.config import build_stage

PROJECT = Path(__file__).resolve().parents[2]


def test_val_is_a_seeded_draw_from_the_first_n_train_and_test_does_not_move():
    split = split_names(10, 7, 3, seed=1)
    assert split[7:] == ["test"] * 3 and split[:7].count("val") == 3 and split[:7].count("train") == 4
    assert split == split_names(10, 7, 3, seed=1)
    assert any(split_names(10, 7, 3, seed=s) != split for s in range(2, 6))
    assert split_names(10, 7, 0, seed=1) == ["train"] * 7 + ["test"] * 3
    assert split_names(10, 7, 5, seed=1)[7:] == ["test"] * 3


def test_n_val_must_leave_training_names():
    with pytest.raises(ValueError, match=r"only 4 case\(s\) in the first n_train"):
        split_names(4, 10, 4, seed=1)  # fewer cases than n_train (a limit): val may not take them all


def _project(tmp_path, **jsrt):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["jsrt"].update({"landmarks": "data/external/none.csv", "synthetic_cases": 8, "shard_size": 4, **jsrt})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def test_stage_writes_train_val_test(tmp_path):
    root = _project(tmp_path, n_train=6, n_val=2)
    report = build_stage("jsrt", root).run_serial()
    assert (report.metrics["train"], report.metrics["val"], report.metrics["test"]) == (4, 2, 2)
    splits = read_table(root / "data/jsrt/splits.parquet", SPLITS)
    names = sorted(splits["filestem"])
    assert list(splits["filestem"]) == names
    assert set(splits.loc[splits["split"] != "test", "filestem"]) == set(names[:6])


def test_n_val_not_below_n_train_is_a_clear_params_error(tmp_path):
    root = _project(tmp_path, n_train=6, n_val=6)
    with pytest.raises(StageError, match=r"jsrt\.n_val \(6\) must be smaller than jsrt\.n_train \(6\)"):
        build_stage("jsrt", root).run_serial()
