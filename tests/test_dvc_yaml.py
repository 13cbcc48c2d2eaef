"""dvc.yaml as DVC users read it: metrics files of numbers, and plots that `dvc plots show` renders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from denseseg.anatomy import WRIST
from denseseg.propagation.records import LOSS_COLUMNS, loss_rows, round_row
from denseseg.propagation.rounds import RoundRecord
from tests.conftest import PROJECT

DVC_YAML = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
PLOTS = "reports/plots/propagation"


def _record(round: int, dice: float) -> RoundRecord:
    scores = {
        which: {"all": {"dice_mean": dice - shift, "asd_mean": 1.0 + shift, "n": 3}}
        for which, shift in (("accepted", 0.0), ("all", 0.1))
    }
    return RoundRecord(
        round=round,
        n_seeds=4,
        n_pseudo_train=0,
        n_predicted=6,
        n_accepted=3,
        n_rejected=3,
        train_loss=0.5 / round,
        seconds=1.0,
        scores=scores,
    )


def _write_plot_files(root: Path) -> None:
    """The two CSV files as the propagate stage writes them, for two rounds."""
    records = [_record(1, 0.8), _record(2, 0.9)]
    folder = root / PLOTS
    folder.mkdir(parents=True)
    pd.DataFrame([round_row(r, WRIST) for r in records]).to_csv(folder / "rounds.csv", index=False)
    rows = loss_rows(records, {1: 3, 2: 2}.get)
    pd.DataFrame(rows, columns=LOSS_COLUMNS).to_csv(folder / "train_loss.csv", index=False)


def test_metrics_of_every_stage_are_declared_uncached():
    stages = DVC_YAML["stages"]
    files = {"phantom": "phantom", "propagate": "propagation", "split": "split", "release": "release"}
    for stage, name in files.items():
        assert stages[stage]["metrics"] == [{f"${{paths.metrics}}/{name}.json": {"cache": False}}], stage
    propagate_outs = {next(iter(o)) if isinstance(o, dict) else o: o for o in stages["propagate"]["outs"]}
    assert propagate_outs[PLOTS] == {PLOTS: {"cache": False}}
    assert "${paths.metrics}/propagation-info.json" in propagate_outs


def test_plots_name_columns_that_the_propagate_stage_writes(tmp_path):
    _write_plot_files(tmp_path)
    plots = {next(iter(p)): next(iter(p.values())) for p in DVC_YAML["plots"]}
    plots = {name: plot for name, plot in plots.items() if name.startswith("propagation-")}
    assert set(plots) == {"propagation-dice", "propagation-asd", "propagation-train-loss"}
    for name, plot in plots.items():
        ((path, columns),) = plot["y"].items()
        header = set(pd.read_csv(tmp_path / path).columns)
        assert plot["x"] in header and set([columns] if isinstance(columns, str) else columns) <= header, name
    assert plots["propagation-dice"]["y"] == {f"{PLOTS}/rounds.csv": ["dice_mean_accepted", "dice_mean_all"]}
    assert plots["propagation-train-loss"]["x"] == "step"


def test_dvc_plots_show_renders_every_plot(tmp_path):
    """`dvc plots show --json` in a scratch git repository: three plots, with the rows of the CSV files."""
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(PROJECT / name, tmp_path / name)
    _write_plot_files(tmp_path)
    from denseseg.training.curves import write_curve

    for run in yaml_runs() + yaml_runs("tuned_runs"):
        history = [{"epoch": e, "lr": 0.01, "train_loss": 1.0 / e, "val_tre_px": 10.0 / e} for e in (1, 2)]
        write_curve(tmp_path / "reports/plots/train" / f"{run}.csv", history)
    import yaml

    for study in yaml.safe_load((PROJECT / "params.yaml").read_text())["tune"]["studies"]:
        front = pd.DataFrame({"trial": [0, 3], "val_tre_px": [4.0, 6.0], "val_dice": [0.7, 0.8]})
        (tmp_path / "reports/plots/tuning").mkdir(parents=True, exist_ok=True)
        front.to_csv(tmp_path / "reports/plots/tuning" / f"{study}.csv", index=False)
    boneage = pd.DataFrame(
        {"filestem": ["a", "b"], "source": "denseseg", "target": "chronological", "true_months": [100.0, 150.0]}
    ).assign(predicted_months=[98.0, 154.0])
    (tmp_path / "reports/boneage").mkdir(parents=True)
    boneage.to_csv(tmp_path / "reports/boneage/predictions.csv", index=False)
    env = dict(os.environ, DVC_NO_ANALYTICS="true")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc = str(Path(sys.executable).with_name("dvc"))
    assert subprocess.run([dvc, "init", "-q"], cwd=tmp_path, env=env).returncode == 0
    done = subprocess.run([dvc, "plots", "show", "--json"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert not shown.get("errors"), shown["errors"]
    data = shown["data"]
    assert {"propagation-dice", "propagation-asd", "propagation-train-loss", "train-loss", "validation-tre"} <= set(
        data
    )
    assert len(data["train-loss"][0]["content"]["data"]["values"]) == 2 * len(yaml_runs())
    dice = data["propagation-dice"][0]["content"]["data"]["values"]
    # two rounds x two curves (accepted, all), the values from rounds.csv
    assert sorted((v["round"], v["field"], float(v["dvc_inferred_y_value"])) for v in dice) == [
        ("1", "dice_mean_accepted", 0.8),
        ("1", "dice_mean_all", 0.7000000000000001),
        ("2", "dice_mean_accepted", 0.9),
        ("2", "dice_mean_all", 0.8),
    ]
    scatter = data["reports/boneage/predictions.csv"][0]["content"]["data"]["values"]
    assert [(v["true_months"], v["predicted_months"]) for v in scatter] == [("100.0", "98.0"), ("150.0", "154.0")]
    loss = data["propagation-train-loss"][0]["content"]["data"]["values"]
    assert [(v["step"], v["loss"]) for v in loss] == [("3", "0.5"), ("5", "0.25")]


def yaml_runs(key: str = "runs") -> list[str]:
    import yaml

    return list(yaml.safe_load((PROJECT / "params.yaml").read_text())["train"][key])


def test_training_curves_of_every_run_are_declared_as_plots():
    """Each train@<run> writes reports/plots/train/<run>.csv; the top-level plots draw every run's loss and TRE."""
    runs = set(yaml_runs())
    stage_plots = DVC_YAML["stages"]["train"]["do"]["plots"]
    assert stage_plots == [{"reports/plots/train/${key}.csv": {"cache": False}}]
    plots = {next(iter(p)): next(iter(p.values())) for p in DVC_YAML["plots"]}
    for name, column in (("train-loss", "train_loss"), ("validation-tre", "val_tre_px")):
        assert plots[name]["x"] == "epoch"
        assert {Path(path).stem for path in plots[name]["y"]} == runs, name
        assert set(plots[name]["y"].values()) == {column}, name
