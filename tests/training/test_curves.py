"""Training curves: a CSV for dvc plots, deterministic (no wall-clock seconds)."""

from __future__ import annotations

from denseseg.training.curves import write_curve


def test_the_curve_has_one_row_per_epoch_and_empty_cells_for_missing_metrics(tmp_path):
    history = [
        {"epoch": 1, "lr": 0.1, "train_loss": 0.5, "seconds": 1.25},
        {"epoch": 2, "lr": 0.05, "train_loss": 0.25, "val_loss": float("nan"), "seconds": 1.5},
        {"epoch": 3, "lr": 0.025, "train_loss": 0.125, "val_loss": 0.375, "seconds": 2.0},
    ]
    path = tmp_path / "curves" / "train.csv"
    write_curve(path, history)
    assert path.read_text() == ("epoch,lr,train_loss,val_loss\n1,0.1,0.5,\n2,0.05,0.25,\n3,0.025,0.125,0.375\n")
