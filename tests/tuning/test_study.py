"""The journal study: opened by Optuna's own API, never mixed, resumed with no lost or repeated trial, threads.

The objective here is a cheap closed-form function of the sampled values, so the
tests exercise the storage, the sampler seeding and the worker loop, not training.
"""

from __future__ import annotations

import threading

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from denseseg.tuning.prune import FirstEpochDice, TrialPruned
from denseseg.tuning.space import SearchSpace
from denseseg.tuning.study import (
    TuningError,
    finished_count,
    open_study,
    recover_interrupted,
    run_worker,
)

SPACE = SearchSpace.from_params({"a": [0.0, 1.0], "b": [0.0, 1.0]}, "test")
DIRECTIONS = ["minimize", "maximize"]
SETUP = {"search_space": SPACE.signature(), "objectives": {"err": "minimize", "dice": "maximize"}}
SEED = 11


def objective(values):
    return [(values["a"] - 0.3) ** 2 + values["b"], values["a"] * values["b"]]


def run(path, n, worker=0, fn=objective, startup=2):
    return run_worker(path, "s", SPACE, n, fn, seed=SEED, worker=worker, n_startup_trials=startup)


def completed_params(path):
    study = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path))))
    return [tuple(t.params[k] for k in SPACE.ranges) for t in study.trials if t.state == TrialState.COMPLETE]


def test_the_journal_opens_with_optunas_own_journal_storage(tmp_path):
    path = tmp_path / "study.journal"
    open_study(path, "s", DIRECTIONS, SETUP)
    run(path, 3)
    study = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path))))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.user_attrs["denseseg_setup"] == SETUP
    assert {t.number for t in study.best_trials} <= {0, 1, 2}


def test_one_worker_draws_the_same_sequence_every_time(tmp_path):
    for name in ("one", "two"):
        open_study(tmp_path / name, "s", DIRECTIONS, SETUP)
        run(tmp_path / name, 5)  # 2 random, then 3 TPE trials
    first = completed_params(tmp_path / "one")
    assert first == completed_params(tmp_path / "two") and len(set(first)) == 5


def test_a_study_of_another_search_space_or_objective_set_is_refused(tmp_path):
    path = tmp_path / "study.journal"
    open_study(path, "s", DIRECTIONS, SETUP)
    other_space = {**SETUP, "search_space": {"a": [0.0, 2.0], "b": [0.0, 1.0]}}
    message = r'study.journal: study \'s\' was made with search_space = \{"a": \[0.0, 1.0\]'
    with pytest.raises(TuningError, match=message):
        open_study(path, "s", DIRECTIONS, other_space)
    other_objectives = {**SETUP, "objectives": {"err": "minimize", "tre": "minimize"}}
    with pytest.raises(TuningError, match="has directions \\['minimize', 'maximize'\\], this run asks for"):
        open_study(path, "s", ["minimize", "minimize"], other_objectives)
    with pytest.raises(TuningError, match="was made with objectives = "):
        open_study(path, "s", DIRECTIONS, {**SETUP, "objectives": {"uv": "minimize", "dice": "maximize"}})
    assert len(open_study(path, "s", DIRECTIONS, SETUP).trials) == 0  # the original still opens


def test_a_killed_study_resumes_with_no_trial_lost_or_repeated(tmp_path):
    whole, killed = tmp_path / "whole.journal", tmp_path / "killed.journal"
    for path in (whole, killed):
        open_study(path, "s", DIRECTIONS, SETUP)
    run(whole, 5)

    calls = []

    def dies_in_the_third(values):
        calls.append(values)
        if len(calls) == 3:
            raise KeyboardInterrupt  # like a kill: the asked trial is never told, it stays RUNNING
        return objective(values)

    with pytest.raises(KeyboardInterrupt):
        run(killed, 5, fn=dies_in_the_third)
    study = open_study(killed, "s", DIRECTIONS, SETUP)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    interrupted_at = study.trials[2].params

    assert recover_interrupted(killed, "s", SPACE) == [2]
    study = open_study(killed, "s", DIRECTIONS, SETUP)
    assert study.trials[2].state == TrialState.FAIL and study.trials[2].user_attrs["interrupted"]
    assert finished_count(study) == 2
    run(killed, 5 - finished_count(study))

    study = open_study(killed, "s", DIRECTIONS, SETUP)
    assert [t.number for t in study.trials] == list(range(6))  # the count continues after the interrupted trial
    assert study.trials[3].params == interrupted_at  # the interrupted point is trained again, once
    assert finished_count(study) == 5
    resumed = completed_params(killed)
    assert len(set(resumed)) == 5  # no point twice
    assert resumed == completed_params(whole)  # and the same sequence as without the kill
    assert recover_interrupted(killed, "s", SPACE) == []  # a second resume enqueues nothing again


def test_a_record_torn_by_a_kill_inside_a_write_is_cut_before_the_study_goes_on(tmp_path, caplog):
    path = tmp_path / "study.journal"
    open_study(path, "s", DIRECTIONS, SETUP)
    run(path, 2)
    intact = path.read_bytes()
    with open(path, "ab") as handle:
        handle.write(b'{"op_code":5,"worker_id":"x","trial_id":1')  # no newline: the write was cut
    assert open_study(path, "s", DIRECTIONS, SETUP) is not None
    assert path.read_bytes() == intact and "torn last record (41 bytes)" in caplog.text
    run(path, 1)  # and the journal stays readable after the next record
    assert finished_count(open_study(path, "s", DIRECTIONS, SETUP)) == 3


def test_parallel_workers_on_threads_share_one_journal(tmp_path):
    path = tmp_path / "study.journal"
    open_study(path, "s", DIRECTIONS, SETUP)
    threads = [threading.Thread(target=run, args=(path, 3, worker)) for worker in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    study = optuna.load_study(study_name="s", storage=JournalStorage(JournalFileBackend(str(path))))
    assert sorted(t.number for t in study.trials) == list(range(9))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len(set(completed_params(path))) == 9  # each worker's own seeds: no duplicate random draws


def test_a_pruned_trial_is_recorded_with_its_reason_and_a_bug_fails_loudly(tmp_path):
    path = tmp_path / "study.journal"
    open_study(path, "s", DIRECTIONS, SETUP)

    def hopeless(values):
        raise TrialPruned("val_dice 0.0100 after epoch 1 is below the pruning threshold 0.02")

    run(path, 1, fn=hopeless)

    def buggy(values):
        raise ZeroDivisionError("oops")

    with pytest.raises(ZeroDivisionError):
        run(path, 1, fn=buggy)
    study = open_study(path, "s", DIRECTIONS, SETUP)
    assert [t.state for t in study.trials] == [TrialState.PRUNED, TrialState.FAIL]
    assert "below the pruning threshold" in study.trials[0].user_attrs["reason"]
    assert study.trials[1].user_attrs["reason"] == "ZeroDivisionError: oops"
    assert finished_count(study) == 2  # neither is run again


def test_the_first_epoch_dice_rule_prunes_below_the_threshold_only_once():
    rule = FirstEpochDice(0.2)
    rule.on_epoch_end(None, {"epoch": 1, "train_loss": 1.0})  # not validated: nothing to judge
    with pytest.raises(TrialPruned, match="val_dice 0.1000 after epoch 2 is below the pruning threshold 0.2"):
        rule.on_epoch_end(None, {"epoch": 2, "val_dice": 0.1})
    later = FirstEpochDice(0.2)
    later.on_epoch_end(None, {"epoch": 1, "val_dice": 0.5})
    later.on_epoch_end(None, {"epoch": 2, "val_dice": 0.0})  # only the first validation is judged
    with pytest.raises(TrialPruned, match="nan"):
        FirstEpochDice(0.2).on_epoch_end(None, {"epoch": 1, "val_dice": float("nan")})
