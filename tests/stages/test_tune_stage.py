"""tune@<study> on a tiny chest phantom through the real stages: front, pick, resume, threads, guards.

The chest project is the one of test_train_evaluate_stages (jsrt -> uvmaps@jsrt with tiny params);
each trial trains a [4, 8] network for one epoch on 7 images and scores it on the 2 val images.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import optuna
import pandas as pd
import pytest
import torch
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from pipelines.flow import shard_label
from stages.base import StageError
from stages.config import build_stage
from stages.tune import TuneStage, Worker
from tests.stages.test_train_evaluate_stages import tiny_params

STUDIES = {
    "denseseg-jsrt": {"method": "denseseg", "dataset": "jsrt"},
    "heatreg-jsrt": {"method": "heatreg", "dataset": "jsrt"},
}


def tune_params(root, n_trials=3, workers=1, dice_below=0.0, **changes) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"].update(
        {
            "n_trials": n_trials,
            "workers": workers,
            "n_startup_trials": 2,
            "training": {"epochs": 1, "threads": 1},
            "prune": {"dice_below": dice_below},
            "studies": STUDIES,
            **changes,
        }
    )
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def load(root, name):
    path = root / "checkpoints" / f"tune-{name}" / "study.journal"
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(path))))


@pytest.fixture(scope="module")
def chest(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("chest-tune")
    (root / "data/external").mkdir(parents=True)
    tiny_params(root, epochs=1)
    tune_params(root)
    build_stage("jsrt", root).run_serial()
    build_stage("uvmaps@jsrt", root).run_serial()
    return root


@pytest.fixture(scope="module")
def tuned(chest):
    reports = {name: build_stage(f"tune@{name}", chest).run_serial() for name in STUDIES}
    return chest, reports


def copy_of(root, tmp_path, keep_studies=False):
    copy = tmp_path / "copy"
    ignore = ["models", "reports"] + ([] if keep_studies else ["checkpoints"])
    shutil.copytree(root, copy, ignore=shutil.ignore_patterns(*ignore))
    return copy


def test_each_study_writes_its_trials_front_figure_picked_values_and_metrics(tuned):
    root, reports = tuned
    for name, objectives in (
        ("denseseg-jsrt", ["val_uv_l1", "val_tre_px", "val_dice"]),
        ("heatreg-jsrt", ["val_tre_px", "val_dice"]),
    ):
        folder = root / "reports/tuning" / name
        trials = pd.read_csv(folder / "trials.csv")
        assert list(trials["trial"]) == [0, 1, 2] and set(trials["state"]) == {"COMPLETE"}
        front = pd.read_csv(folder / "pareto.csv")
        assert set(objectives) <= set(front.columns) and front["picked"].sum() == 1
        assert set(front["trial"]) == {t.number for t in load(root, name).best_trials}  # Optuna agrees
        assert load(root, name).metric_names == objectives  # labels in optuna-dashboard
        assert (folder / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "**" in (folder / "pareto.md").read_text()
        assert pd.read_csv(root / "reports/plots/tuning" / f"{name}.csv").equals(front)
        picked = json.loads((root / "reports/tuned" / f"{name}.json").read_text())
        row = front[front["picked"]].iloc[0]
        assert picked["trial"] == int(row["trial"]) and picked["method"] == STUDIES[name]["method"]
        assert picked["values"] == {path: pytest.approx(row[path]) for path in picked["values"]}
        metrics = json.loads((root / "reports/metrics" / f"tune-{name}.json").read_text())
        assert metrics["trials"] == 3 and metrics["complete"] == 3 and metrics["picked_trial"] == picked["trial"]
        assert reports[name].metrics["front_size"] == len(front)
    picked = json.loads((root / "reports/tuned/heatreg-jsrt.json").read_text())
    assert 1.0 <= picked["values"]["heatmap.alpha"] <= 50.0 and 1.0 <= picked["values"]["heatmap.sigma"] <= 10.0
    assert set(picked["overrides"]["heatmap"]) == {"alpha", "sigma"}


def test_a_finished_study_is_not_run_again_and_its_reports_are_the_same_bytes(tuned):
    root, _ = tuned
    outputs = [
        *sorted((root / "reports/tuning/heatreg-jsrt").iterdir()),
        root / "reports/tuned/heatreg-jsrt.json",
        root / "reports/plots/tuning/heatreg-jsrt.csv",
        root / "reports/metrics/tune-heatreg-jsrt.json",
        root / "checkpoints/tune-heatreg-jsrt/study.journal",
    ]
    before = {path: path.read_bytes() for path in outputs}
    assert {p.name for p in outputs[:4]} == {"pareto.csv", "pareto.md", "pareto.png", "trials.csv"}
    stage = build_stage("tune@heatreg-jsrt", root)
    stage.prepare()
    assert stage.shards() == []
    stage.finish([])
    assert len(load(root, "heatreg-jsrt").trials) == 3
    assert {path: path.read_bytes() for path in outputs} == before  # `dvc repro --force` changes nothing


def test_a_run_with_tuned_trains_with_the_picked_values_and_the_default_runs_do_not(tuned, tmp_path):
    root, _ = tuned
    copy = copy_of(root, tmp_path, keep_studies=True)
    shutil.copytree(root / "reports/tuned", copy / "reports/tuned")
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["train"]["runs"]["heatreg_tuned-jsrt"] = {**params["train"]["runs"]["heatreg-jsrt"], "tuned": "heatreg-jsrt"}
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    picked = json.loads((copy / "reports/tuned/heatreg-jsrt.json").read_text())
    method_params = build_stage("train@heatreg_tuned-jsrt", copy).resolved().method_params
    assert method_params.heatmap.alpha == picked["values"]["heatmap.alpha"]
    assert method_params.heatmap.sigma == picked["values"]["heatmap.sigma"]
    default_params = build_stage("train@heatreg-jsrt", copy).resolved().method_params
    assert default_params.heatmap.sigma == params["train"]["methods"]["heatreg"]["heatmap"]["sigma"]
    params["train"]["runs"]["heatreg_tuned-jsrt"]["tuned"] = "nope"
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(StageError, match="reports/tuned/nope.json not found; run the stage tune@nope first"):
        build_stage("train@heatreg_tuned-jsrt", copy).resolved()
    params["train"]["runs"]["heatreg_tuned-jsrt"]["tuned"] = "denseseg-jsrt"
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(StageError, match="was tuned for 'denseseg', the run trains 'heatreg'"):
        build_stage("train@heatreg_tuned-jsrt", copy).resolved()


def test_a_study_of_another_search_space_is_a_clear_error_never_a_mixed_study(tuned, tmp_path):
    root, _ = tuned
    copy = copy_of(root, tmp_path, keep_studies=True)
    tune_params(copy, spaces={"denseseg": {"loss.lambda_bce": [0.0, 1.0]}, "heatreg": {"heatmap.alpha": [1.0, 9.0]}})
    with pytest.raises(StageError, match="study 'heatreg-jsrt' was made with search_space = .*delete .*study.journal"):
        build_stage("tune@heatreg-jsrt", copy).run_serial()
    assert len(load(copy, "heatreg-jsrt").trials) == 3


def test_an_interrupted_study_resumes_where_it_stopped(chest, tmp_path, monkeypatch):
    copy = copy_of(chest, tmp_path)
    calls = []
    original = TuneStage.objective

    def killed_in_the_second(self, values, train_set, val_set):
        calls.append(values)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the trial stays RUNNING, as after a kill
        return original(self, values, train_set, val_set)

    monkeypatch.setattr(TuneStage, "objective", killed_in_the_second)
    with pytest.raises(KeyboardInterrupt):
        build_stage("tune@heatreg-jsrt", copy).run_serial()
    assert [t.state for t in load(copy, "heatreg-jsrt").trials] == [TrialState.COMPLETE, TrialState.RUNNING]
    monkeypatch.setattr(TuneStage, "objective", original)
    stage = build_stage("tune@heatreg-jsrt", copy)
    stage.prepare()
    assert stage.shards() == [Worker(0, 2)]  # two trials left of three: the interrupted one again, then one more
    stage.finish([stage.process(shard) for shard in stage.shards()])
    trials = pd.read_csv(copy / "reports/tuning/heatreg-jsrt/trials.csv")
    assert list(trials["state"]) == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"] and trials["interrupted"].sum() == 1
    complete = trials[trials["state"] == "COMPLETE"]
    # one worker: the same three points, in order, as the study that was never interrupted
    uninterrupted = pd.read_csv(chest / "reports/tuning/heatreg-jsrt/trials.csv")
    columns = ["heatmap.alpha", "heatmap.sigma"]
    assert complete[columns].to_numpy().tolist() == uninterrupted[columns].to_numpy().tolist()


def test_parallel_workers_on_threads_share_one_journal(chest, tmp_path):
    copy = copy_of(chest, tmp_path)
    tune_params(copy, n_trials=4, workers=2)
    stage = build_stage("tune@heatreg-jsrt", copy)
    reports = []
    stage.progress_hook = lambda done, total, message: reports.append((done, total, message))  # as Prefect's
    stage.prepare()
    assert stage.shards() == [Worker(0, 2), Worker(1, 2)]
    assert (
        shard_label("tune@heatreg-jsrt", 1, 2, stage.shards()[1])
        == "tune@heatreg-jsrt shard 2/2 (worker 1: 2 trial(s))"
    )
    with ThreadPoolExecutor(max_workers=2) as pool:  # as the threads task runner maps the shards
        results = list(pool.map(stage.process, stage.shards()))
    stage.finish(results)
    assert sorted(n for numbers in results for n in numbers) == [0, 1, 2, 3]
    trials = load(copy, "heatreg-jsrt").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len({tuple(t.params.values()) for t in trials}) == 4
    # one progress report per trial, counting the study's finished trials (two workers may read the same count)
    assert len(reports) == 4 and max(done for done, _, _ in reports) == 4 and {t for _, t, _ in reports} == {4}
    assert all(message.startswith("trial ") and "complete (val_tre_px" in message for _, _, message in reports)


def test_hopeless_trials_are_pruned_with_their_reason_and_nothing_is_picked(chest, tmp_path):
    copy = copy_of(chest, tmp_path)
    tune_params(copy, n_trials=2, dice_below=1.0)  # no one-epoch network reaches Dice 1
    report = build_stage("tune@heatreg-jsrt", copy).run_serial()  # the pipeline goes on
    assert report.metrics["pruned"] == 2 and report.metrics["front_size"] == 0
    trials = pd.read_csv(copy / "reports/tuning/heatreg-jsrt/trials.csv")
    assert list(trials["state"]) == ["PRUNED", "PRUNED"]
    assert trials["reason"].str.contains("after epoch 1 is below the pruning threshold 1.0").all()
    assert pd.read_csv(copy / "reports/plots/tuning/heatreg-jsrt.csv").empty
    picked = json.loads((copy / "reports/tuned/heatreg-jsrt.json").read_text())
    assert picked["trial"] is None and picked["values"] == {}
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["train"]["runs"]["heatreg-jsrt"]["tuned"] = "heatreg-jsrt"
    (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(StageError, match="picks nothing: none of 2 trial\\(s\\) completed"):
        build_stage("train@heatreg-jsrt", copy).resolved()


def test_an_unknown_study_or_objective_is_a_clear_error(chest, tmp_path):
    with pytest.raises(StageError, match="no study 'nope' in tune.studies"):
        build_stage("tune@nope", chest).prepare()
    copy = copy_of(chest, tmp_path)
    tune_params(copy, objectives={"denseseg": {"val_uv_l1": "minimize", "val_mse": "minimize"}, "heatreg": {}})
    with pytest.raises(StageError, match="tune.objectives.denseseg: need two or more of .*unknown \\['val_mse'\\]"):
        build_stage("tune@denseseg-jsrt", copy).prepare()


@pytest.mark.slow
def test_a_study_killed_with_sigkill_resumes_at_the_next_run(chest, tmp_path):
    """SIGKILL while a trial trains (after the first completed), run again: three finished trials, none twice."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.conftest import PROJECT

    copy = copy_of(chest, tmp_path)
    tune_params(copy, n_trials=3, training={"epochs": 3, "threads": 1})
    env = dict(os.environ, PYTHONPATH=str(PROJECT))
    command = [
        sys.executable,
        "-c",
        "from stages.config import build_stage; build_stage('tune@heatreg-jsrt').run_serial()",
    ]
    proc = subprocess.Popen(command, cwd=copy, env=env, stderr=subprocess.DEVNULL)
    journal = copy / "checkpoints/tune-heatreg-jsrt/study.journal"
    deadline = time.monotonic() + 300
    states = []
    while proc.poll() is None and time.monotonic() < deadline:
        if journal.exists():
            try:
                states = [t.state for t in load(copy, "heatreg-jsrt").trials]
            except (KeyError, ValueError):  # the study is being created
                states = []
            if TrialState.COMPLETE in states and states[-1] == TrialState.RUNNING:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert TrialState.COMPLETE in states and states[-1] == TrialState.RUNNING, states
    killed_at = len(states) - 1

    build_stage("tune@heatreg-jsrt", copy).run_serial()
    trials = pd.read_csv(copy / "reports/tuning/heatreg-jsrt/trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 3 and trials["interrupted"].tolist().count(True) == 1
    assert trials.loc[killed_at, "state"] == "FAIL" and bool(trials.loc[killed_at, "interrupted"])
    complete = trials[trials["state"] == "COMPLETE"][["heatmap.alpha", "heatmap.sigma"]]
    assert not complete.duplicated().any()
    assert (complete.to_numpy() == trials.loc[[killed_at], ["heatmap.alpha", "heatmap.sigma"]].to_numpy()).all(1).any()


@pytest.mark.slow
def test_trials_run_on_the_dask_runner_sharing_one_journal(chest, tmp_path, prefect_harness, monkeypatch):
    """runner.kind: dask maps the tune workers onto a local Dask cluster (worker processes, one journal)."""
    from pipelines.flow import run_stage

    copy = copy_of(chest, tmp_path)
    tune_params(copy, n_trials=4, workers=2)
    monkeypatch.setenv("PREFECT_API_URL", prefect_harness)
    run_stage("tune@heatreg-jsrt", copy, ["runner.kind=dask", "runner.max_workers=2"], show_progress=False)
    trials = load(copy, "heatreg-jsrt").trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len({tuple(t.params.values()) for t in trials}) == 4
    picked = json.loads((copy / "reports/tuned/heatreg-jsrt.json").read_text())
    assert picked["trial"] in {t.number for t in trials}
