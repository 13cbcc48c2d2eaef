"""A study in a journal file: resumable after a kill, shared by parallel workers, never mixed.

Storage: ``optuna.storages.JournalStorage`` over a ``JournalFileBackend`` (an
append-only log with a file lock), so threads and processes on one machine
(or on a shared file system, for Dask workers) write to one study, and a study
killed at any point is read back up to its last complete record.

- ``open_study`` creates the study or loads it (first cutting a record torn by a
  kill inside a write, ``repair_torn_tail``); the ``setup`` (search space,
  objectives and everything else that makes two trials comparable) is stored
  in the study's user attrs and compared on every open: another setup is a
  ``TuningError`` naming the key, never a silently mixed study.
- ``recover_interrupted`` turns the trials a killed run left RUNNING into
  FAIL (user attr ``interrupted``) and enqueues their parameters again, so the
  interrupted point is trained once more and no point is lost.
- ``run_worker`` is one worker: ``n`` trials by ask and tell. Before each ask it
  gives the study a fresh ``TPESampler`` seeded by (seed, worker, number of
  finished trials): one worker alone draws the same sequence on every run, and
  after a resume, as an uninterrupted run would (TPE ignores failed trials).
  With several workers the history each ask sees depends on timing, so the
  sequence does too (docs/tuning.md).
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.samplers import TPESampler
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from denseseg.tuning.prune import TrialPruned
from denseseg.tuning.space import SearchSpace

logger = logging.getLogger(__name__)

SETUP_ATTR = "denseseg_setup"
INTERRUPTED_ATTR = "interrupted"
REASON_ATTR = "reason"
SECONDS_ATTR = "seconds"

# objective(values by path) -> one float per objective, in the study's order; raises TrialPruned
Objective = Callable[[dict[str, float]], Sequence[float]]


class TuningError(RuntimeError):
    """A study cannot be opened or continued as asked (another setup, a foreign study). One line."""


def journal_storage(path: str | Path) -> JournalStorage:
    """The journal-file storage at ``path`` (created with its folder when absent)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def repair_torn_tail(path: str | Path) -> int:
    """Cut a journal back to its last complete line; returns the bytes removed (0 for an intact file).

    A process killed inside a write can leave a last line without its newline. Optuna skips such
    a line when reading, but the next record would be appended to it and make both unreadable, so
    the torn bytes are removed before any worker writes. Call it only when no worker is running.
    """
    path = Path(path)
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as handle:
        handle.truncate(keep)
    return len(data) - keep


def _plain(obj: Any) -> Any:
    """JSON round trip: tuples become lists, so a stored setup compares equal to a fresh one."""
    return json.loads(json.dumps(obj, sort_keys=True))


def open_study(
    path: str | Path,
    name: str,
    directions: Sequence[str],
    setup: dict[str, Any],
    metric_names: Sequence[str] | None = None,
) -> optuna.Study:
    """Create the study ``name`` in the journal ``path``, or load it after checking that it has this setup.

    ``metric_names`` label the objectives of a new study (optuna-dashboard shows them).

    Raises:
        TuningError: the study exists with other directions or another setup (the message names
            the file, the first differing key and both values), or it was not made by this code.
    """
    torn = repair_torn_tail(path)
    if torn:
        logger.warning("%s: removed a torn last record (%d bytes) left by a killed write", path, torn)
    storage = journal_storage(path)
    setup = _plain(setup)
    if name not in optuna.get_all_study_names(storage):
        study = optuna.create_study(study_name=name, storage=storage, directions=list(directions))
        study.set_user_attr(SETUP_ATTR, setup)
        if metric_names is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(metric_names))
        return study
    study = optuna.load_study(study_name=name, storage=storage)
    stored = study.user_attrs.get(SETUP_ATTR)
    hint = f"delete {path} to start a new study, or restore the params it was made with"
    if stored is None:
        raise TuningError(f"{path}: study {name!r} was not created by the tune stage (no setup recorded); {hint}")
    found = [d.name.lower() for d in study.directions]
    if found != [d.lower() for d in directions]:
        raise TuningError(
            f"{path}: study {name!r} has directions {found}, this run asks for {list(directions)}; {hint}"
        )
    for key in sorted(set(stored) | set(setup)):
        if stored.get(key) != setup.get(key):
            raise TuningError(
                f"{path}: study {name!r} was made with {key} = {json.dumps(stored.get(key))}, "
                f"this run asks for {json.dumps(setup.get(key))}; a study never mixes the two: {hint}"
            )
    return study


def is_finished(trial: FrozenTrial) -> bool:
    """COMPLETE, PRUNED, or FAIL for a reason of its own (not a kill): such a trial is never run again."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and not trial.user_attrs.get(INTERRUPTED_ATTR, False)


def finished_count(study: optuna.Study) -> int:
    return sum(is_finished(t) for t in study.get_trials(deepcopy=False))


def recover_interrupted(path: str | Path, name: str, space: SearchSpace) -> list[int]:
    """Mark the trials left RUNNING by a killed run FAIL (``interrupted``) and enqueue their values again.

    Call it only when no worker of the study is running (the stage does, before its shards start).
    Returns the numbers of the trials marked.
    """
    storage = journal_storage(path)
    study = optuna.load_study(study_name=name, storage=storage)
    study_id = storage.get_study_id_from_name(name)
    marked = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, INTERRUPTED_ATTR, True)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        if set(trial.params) == set(space.ranges):  # asked completely: train the same point again
            study.enqueue_trial(dict(trial.params), user_attrs={"requeued_from": trial.number})
        marked.append(trial.number)
    return marked


def share_trials(n_trials: int, done: int, workers: int) -> list[int]:
    """How many of the ``n_trials - done`` remaining trials each of at most ``workers`` workers runs
    (the first ones one more when they do not divide evenly); [] when the study is complete."""
    remaining = max(0, n_trials - done)
    workers = min(workers, remaining)
    return [remaining // workers + (i < remaining % workers) for i in range(workers)] if workers else []


def trial_seed(seed: int, worker: int, finished: int) -> int:
    """The sampler seed of the next ask: well mixed, distinct per worker and per point of the sequence."""
    return int(np.random.SeedSequence([seed, worker, finished]).generate_state(1)[0])


def run_worker(
    path: str | Path,
    name: str,
    space: SearchSpace,
    n_trials: int,
    objective: Objective,
    *,
    seed: int,
    worker: int,
    n_startup_trials: int,
    on_trial: Callable[[FrozenTrial, int], None] | None = None,
) -> list[int]:
    """Run ``n_trials`` trials of the study by ask and tell; returns their numbers.

    A ``TrialPruned`` from ``objective`` is told as PRUNED with its reason; any other exception
    is told as FAIL with its reason and raised again (a bug stops the stage loudly). ``on_trial``
    gets each told trial and the study's number of finished trials (for progress reports).

    Args:
        path: the journal file.
        name: the study's name (created beforehand by ``open_study``).
        space: the search space.
        n_trials: how many trials this worker runs.
        objective: values by path -> the objective values in the study's order.
        seed: the project's seed.
        worker: this worker's index (part of every sampler seed).
        n_startup_trials: TPE's random trials before it models the history.
        on_trial: called after every trial.
    """
    study = optuna.load_study(study_name=name, storage=journal_storage(path))
    numbers = []
    for _ in range(n_trials):
        finished = finished_count(study)
        study.sampler = TPESampler(seed=trial_seed(seed, worker, finished), n_startup_trials=n_startup_trials)
        trial = study.ask(space.distributions())
        started = time.perf_counter()
        try:
            values = [float(v) for v in objective(space.values_of(trial))]
        except TrialPruned as err:
            trial.set_user_attr(REASON_ATTR, str(err))
            trial.set_user_attr(SECONDS_ATTR, time.perf_counter() - started)
            study.tell(trial, state=TrialState.PRUNED)
        except Exception as err:
            trial.set_user_attr(REASON_ATTR, f"{type(err).__name__}: {err}")
            study.tell(trial, state=TrialState.FAIL)
            raise
        else:
            trial.set_user_attr(SECONDS_ATTR, time.perf_counter() - started)
            study.tell(trial, values)
        numbers.append(trial.number)
        if on_trial is not None:
            on_trial(study.get_trials(deepcopy=False)[trial.number], finished_count(study))
    return numbers
