"""Stage ``tune@<study>``: multi-objective TPE over a method's loss weights on the validation split.

A study (``tune.studies.<name>``) names a method and the uv cache it trains on.
Each trial trains the method through the shared training core for a short
budget (``tune.training`` deep-updates ``train.training``; the method's params
are ``train.methods.<method>`` with the sampled values in place) and scores
the last epoch on the validation split: the test split is never read.

Shards are parallel workers sharing one journal file (``tune.workers`` of
them, each running its share of the remaining trials by ask and tell), so
trials run on the pipeline's task runner: threads locally, processes with
``runner.kind: dask``. A study killed at any point resumes at the next run
(the journal is a persistent DVC out under ``paths.checkpoints``); a finished
one is not run again (zero shards) and only its reports are rewritten.

Outputs:
- ``paths.checkpoints/tune-<study>/study.journal``: the Optuna journal (persistent);
- ``reports/tuning/<study>/``: ``trials.csv``, ``pareto.csv``, ``pareto.md``, ``pareto.png``;
- ``paths.tuned/<study>.json``: the picked values; a training run reads them with ``tuned: <study>``;
- ``reports/plots/tuning/<study>.csv``: the front, for ``dvc plots``;
- ``paths.metrics/tune-<study>.json``: trial counts and the picked trial.

``train.*`` is read from params.yaml itself (``--set`` overrides given to this
stage reach only the ``tune`` section). A trial is ``denseseg.tuning.trial.Trial``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import optuna
import torch

from denseseg.io.atomic import commit_dir, partial_dir, write_json_atomic, write_text_atomic
from denseseg.losses.segmentation import positive_weights
from denseseg.methods.data import CacheItems, mask_fractions, open_training_cache
from denseseg.methods.registry import method_class
from denseseg.training.augment import AugmentParams
from denseseg.training.config import TrainingConfig, deep_update
from denseseg.tuning.config import TuningParams
from denseseg.tuning.report import (
    PICK_RULE,
    pareto_front,
    picked_values,
    study_metrics,
    trials_frame,
    write_study_reports,
)
from denseseg.tuning.space import SearchSpace
from denseseg.tuning.study import (
    TuningError,
    finished_count,
    journal_storage,
    open_study,
    recover_interrupted,
    run_worker,
    share_trials,
)
from denseseg.tuning.trial import Trial
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors
from stages.config import subsections

REPORTS_DIR = "reports/tuning"
PLOTS_DIR = "reports/plots/tuning"
JOURNAL = "study.journal"


@dataclass(frozen=True)
class Worker:
    """One shard: a worker index (part of its sampler seeds) and how many trials it runs."""

    index: int
    trials: int

    def __repr__(self) -> str:  # the task run's name in the Prefect UI
        return f"worker {self.index}: {self.trials} trial(s)"


class TuneParams(StageParams, TuningParams):
    """The tune section: the library's ``TuningParams``, validated once."""


class TuneStage(Stage[TuneParams, list[int]]):  # per worker: the numbers of the trials it ran
    name = "tune"
    Params = TuneParams
    whole_section: ClassVar[bool] = True  # tune@<study> reads the whole tune section

    def prepare(self) -> None:
        p = self.params
        with stage_errors():
            self.objectives = p.study_objectives(self.variant)
        self.study = p.studies[self.variant]
        method = self.study.method
        self.base_params, training, augment = self._train_section(method)
        with stage_errors(f"tune@{self.variant}: ", (KeyError, ValueError)):
            self.space = SearchSpace.from_params(p.spaces[method], f"tune.spaces.{method}")
            self.space.check_paths(self.base_params, f"tune.spaces.{method}")
            self.training = TrainingConfig(**deep_update(training, p.training))
            self.augment = AugmentParams(**augment)
            method_class(method).Params(**self.base_params)
        cache_dir = self.path(self.config.paths["uvmaps"]) / self.study.dataset
        with stage_errors():
            self.cache, self.landmarks = open_training_cache(cache_dir)
        self.train_items, self.val_items = self.cache.items_of("train"), self.cache.items_of("val")
        if not self.train_items or not self.val_items:
            raise StageError(
                f"{cache_dir}: {len(self.train_items)} train and {len(self.val_items)} val items; "
                "tuning needs both (trials are scored on val, never on test)"
            )
        positive, total = mask_fractions(CacheItems(self.cache, self.train_items, keep=False))
        self.trial = Trial(
            method,
            self.base_params,
            self.landmarks,
            positive_weights(positive, total),
            self.training,
            self.augment,
            self.seed,
            p.prune.dice_below,
            tuple(self.objectives),
        )
        self.journal = self.path(self.config.paths["checkpoints"]) / f"tune-{self.variant}" / JOURNAL
        with stage_errors(errors=(TuningError,)):
            study = open_study(
                self.journal, self.variant, list(self.objectives.values()), self.setup(), list(self.objectives)
            )
        interrupted = recover_interrupted(self.journal, self.variant, self.space)
        if interrupted:
            self.log.warning("tune@%s: trial(s) %s were interrupted; their values run again", self.variant, interrupted)
        self.plan = self._workers(finished_count(study))

    def _train_section(self, method: str) -> tuple[dict, dict, dict]:
        """``train.methods.<method>``, ``train.training`` and ``train.augment`` of params.yaml itself."""
        train = subsections(self.root, "train", ("methods", "training", "augment"), "tune trains through it")
        if method not in train["methods"]:
            raise StageError(f"tune.studies.{self.variant}.method: {method!r} has no section train.methods")
        return train["methods"][method], train["training"], train["augment"]

    def _workers(self, done: int) -> list[Worker]:
        """The remaining trials of the budget, shared out over at most ``tune.workers`` workers."""
        quotas = share_trials(self.params.n_trials, done, self.params.workers)
        self.log.info(
            "tune@%s: %d of %d trial(s) finished, %d to run on %d worker(s); dashboard: optuna-dashboard %s",
            self.variant, done, self.params.n_trials, sum(quotas), len(quotas), self.journal,
        )  # fmt: skip
        return [Worker(index, quota) for index, quota in enumerate(quotas)]

    def setup(self) -> dict[str, Any]:
        """What makes two trials comparable; stored in the study and compared on every open."""
        return self.trial.setup(
            dataset=self.study.dataset,
            data=hashlib.sha256((self.cache.root / "index.parquet").read_bytes()).hexdigest()[:16],
            search_space=self.space.signature(),
            objectives=self.objectives,
            prune=self.params.prune.model_dump(mode="json"),
        )

    def shards(self):
        return self.plan

    def objective(self, values: dict[str, float], train_set, val_set) -> list[float]:
        with stage_errors(f"tune@{self.variant}: sampled values {values} are not valid: ", (ValueError,)):
            return self.trial(values, train_set, val_set)

    def process(self, shard: Worker):
        torch.set_num_threads(self.training.threads)
        train_set = CacheItems(self.cache, self.train_items)  # UVCache keeps its Parquet handles per thread
        val_set = CacheItems(self.cache, self.val_items)

        def progress(trial: optuna.trial.FrozenTrial, finished: int) -> None:
            values = zip(self.objectives, trial.values or (), strict=False)
            shown = ", ".join(f"{k} {v:.4g}" for k, v in values) or trial.user_attrs.get("reason", "")
            message = f"trial {trial.number} {trial.state.name.lower()} ({shown})"
            self.report_progress(finished, self.params.n_trials, message)
            self.log.info("tune@%s worker %d: %s", self.variant, shard.index, message)

        return run_worker(
            self.journal,
            self.variant,
            self.space,
            shard.trials,
            lambda values: self.objective(values, train_set, val_set),
            seed=self.seed,
            worker=shard.index,
            n_startup_trials=self.params.n_startup_trials,
            on_trial=progress,
        )

    def finish(self, results) -> StageReport:
        study = optuna.load_study(study_name=self.variant, storage=journal_storage(self.journal))
        names = list(self.objectives)
        trials = trials_frame(study, names, self.space)
        front = pareto_front(trials, names, list(self.objectives.values()))
        staging = partial_dir(self.path(REPORTS_DIR) / self.variant)
        write_study_reports(staging, trials, front, self.variant, self.objectives)
        commit_dir(staging, self.path(REPORTS_DIR) / self.variant)
        plot_csv = self.path(PLOTS_DIR) / f"{self.variant}.csv"
        plot_csv.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(plot_csv, front.to_csv(index=False))

        picked = picked_values(front, len(trials), names, self.space)
        if picked["trial"] is None:  # the pipeline goes on; a run that asks for these values is refused (train)
            picked["note"] += f"; see {REPORTS_DIR}/{self.variant}"
            self.log.warning("tune@%s: %s", self.variant, picked["note"])
        picked.update(
            study=self.variant,
            method=self.study.method,
            dataset=self.study.dataset,
            directions=self.objectives,
            rule=PICK_RULE,
        )
        write_json_atomic(self.path(self.config.paths["tuned"]) / f"{self.variant}.json", picked)
        metrics = study_metrics(trials, front, picked)
        self.write_metrics(metrics, f"tune-{self.variant}")
        return StageReport(metrics=metrics, tables={"pareto front": front})
