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
- ``reports/tuned/<study>.json``: the picked values; a training run reads them with ``tuned: <study>``;
- ``reports/plots/tuning/<study>.csv``: the front, for ``dvc plots``;
- ``paths.metrics/tune-<study>.json``: trial counts and the picked trial.

``train.*`` is read from params.yaml itself (``--set`` overrides given to this
stage reach only the ``tune`` section).
"""

from __future__ import annotations

import hashlib
import math
import threading
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import optuna
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from denseseg.io.atomic import commit_dir, partial_dir, write_json_atomic, write_text_atomic
from denseseg.losses.denseseg import dense_uv_l1
from denseseg.losses.segmentation import positive_weights
from denseseg.methods.data import CacheItems, mask_fractions, open_training_cache
from denseseg.methods.registry import method_class
from denseseg.training.augment import AffineAugment, AugmentParams
from denseseg.training.config import TrainingConfig
from denseseg.training.loop import Trainer, TrainingError
from denseseg.tuning.prune import FirstEpochDice, TrialPruned
from denseseg.tuning.report import front_markdown, pareto_front, plot_front, trials_frame
from denseseg.tuning.space import SearchSpace
from denseseg.tuning.study import (
    TuningError,
    finished_count,
    journal_storage,
    open_study,
    recover_interrupted,
    run_worker,
)
from denseseg.uv.cache import CacheError
from stages.base import Stage, StageError, StageParams, StageReport
from stages.config import load_params
from stages.train import TUNED_DIR, TrainParams, deep_update

REPORTS_DIR = "reports/tuning"
PLOTS_DIR = "reports/plots/tuning"
JOURNAL = "study.journal"
# what each method's validation records (Method.validate, plus the uv error added here for DenseSeg)
METRICS = {
    "denseseg": ("val_loss", "val_dice", "val_tre_px", "val_uv_l1"),
    "heatreg": ("val_loss", "val_dice", "val_tre_px"),
}
_INIT_LOCK = threading.Lock()  # seeding torch and building a network is one step, even with workers in threads


@dataclass(frozen=True)
class Worker:
    """One shard: a worker index (part of its sampler seeds) and how many trials it runs."""

    index: int
    trials: int

    def __repr__(self) -> str:  # the task run's name in the Prefect UI
        return f"worker {self.index}: {self.trials} trial(s)"


class StudyParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    dataset: str  # the uvmaps variant whose train split trains and whose val split scores every trial


class PruneParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dice_below: float = Field(ge=0, le=1)  # validation Dice after the first epoch below this: pruned


class TuneParams(StageParams):
    n_trials: int = Field(ge=1)  # the study's total budget (a rerun with a larger one continues the study)
    workers: int = Field(ge=1)  # shards = parallel workers sharing the journal; 1 is reproducible
    n_startup_trials: int = Field(ge=0)  # TPE's random trials before it models the history
    training: dict[str, Any]  # deep update of train.training for every trial
    prune: PruneParams
    spaces: dict[str, dict[str, list[float]]]  # method -> {dotted path: [low, high]}
    objectives: dict[str, dict[str, Literal["minimize", "maximize"]]]  # method -> {val metric: direction}
    studies: dict[str, StudyParams]


def with_uv_error(method):
    """DenseSeg's validation plus ``uv_l1``: mean |predicted - true uv| over the pixels where the true map exists."""

    def validate(network, batch):
        out = method.validate(network, batch)
        with torch.no_grad():
            _, uv = network(batch["image"])
        out["uv_l1"] = float(dense_uv_l1(uv, batch["uv"]))
        return out

    return validate


class TuneStage(Stage[TuneParams]):
    name = "tune"
    Params = TuneParams
    whole_section: ClassVar[bool] = True  # tune@<study> reads the whole tune section

    def prepare(self) -> None:
        p = self.params
        if self.variant not in p.studies:
            raise StageError(f"tune: no study {self.variant!r} in tune.studies ({', '.join(p.studies)})")
        self.study = p.studies[self.variant]
        method = self.study.method
        where = f"tune.studies.{self.variant}"
        if method not in METRICS:
            raise StageError(f"{where}.method: {method!r} is not tunable; methods: {', '.join(METRICS)}")
        for section in ("spaces", "objectives"):
            if method not in getattr(p, section):
                raise StageError(f"tune.{section}: no entry for method {method!r} (study {self.variant})")
        self.objectives = dict(p.objectives[method])
        unknown = sorted(set(self.objectives) - set(METRICS[method]))
        if len(self.objectives) < 2 or unknown:
            raise StageError(
                f"tune.objectives.{method}: need two or more of {', '.join(METRICS[method])}"
                + (f"; unknown {unknown}" if unknown else "")
            )
        train = self._train_params()
        if method not in train.methods:
            raise StageError(f"{where}.method: {method!r} has no section train.methods")
        self.base_params = train.methods[method]
        try:
            self.space = SearchSpace.from_params(p.spaces[method], f"tune.spaces.{method}")
            self.space.check_paths(self.base_params, f"tune.spaces.{method}")
            self.training = TrainingConfig(**deep_update(train.training, p.training))
            self.augment = AugmentParams(**train.augment)
            method_class(method).Params(**self.base_params)
        except (KeyError, ValueError) as err:
            raise StageError(f"tune@{self.variant}: {err}".replace("\n", " ")) from None
        cache_dir = self.path(self.config.paths["uvmaps"]) / self.study.dataset
        try:
            self.cache, self.landmarks = open_training_cache(cache_dir)
        except (CacheError, FileNotFoundError) as err:
            raise StageError(str(err)) from None
        self.train_items = self.cache.items_of("train")
        self.val_items = self.cache.items_of("val")
        if not self.train_items or not self.val_items:
            raise StageError(
                f"{cache_dir}: {len(self.train_items)} train and {len(self.val_items)} val items; "
                "tuning needs both (trials are scored on val, never on test)"
            )
        positive, total = mask_fractions(CacheItems(self.cache, self.train_items, keep=False))
        self.pos_weight = positive_weights(positive, total)
        self.journal = self.path(self.config.paths["checkpoints"]) / f"tune-{self.variant}" / JOURNAL
        try:
            study = open_study(
                self.journal, self.variant, list(self.objectives.values()), self.setup(), list(self.objectives)
            )
        except TuningError as err:
            raise StageError(str(err)) from None
        interrupted = recover_interrupted(self.journal, self.variant, self.space)
        if interrupted:
            self.log.warning("tune@%s: trial(s) %s were interrupted; their values run again", self.variant, interrupted)
        done = finished_count(study)
        remaining = max(0, p.n_trials - done)
        workers = min(p.workers, remaining)
        quotas = [remaining // workers + (i < remaining % workers) for i in range(workers)] if workers else []
        self.plan = [Worker(index, quota) for index, quota in enumerate(quotas)]
        self.log.info(
            "tune@%s: %d of %d trial(s) finished, %d to run on %d worker(s); dashboard: optuna-dashboard %s",
            self.variant,
            done,
            p.n_trials,
            remaining,
            len(self.plan),
            self.journal,
        )

    def _train_params(self) -> TrainParams:
        raw = load_params(self.root).get("train")
        if not isinstance(raw, dict):
            raise StageError("params.yaml has no section 'train' (tune trains through it)")
        try:
            return TrainParams(**raw)
        except ValidationError as err:
            raise StageError(f"params.yaml [train]: {err.errors()[0]['msg']}") from None

    def setup(self) -> dict[str, Any]:
        """What makes two trials comparable; stored in the study and compared on every open."""
        return {
            "seed": self.seed,
            "method": self.study.method,
            "dataset": self.study.dataset,
            "data": hashlib.sha256((self.cache.root / "index.parquet").read_bytes()).hexdigest()[:16],
            "search_space": self.space.signature(),
            "objectives": self.objectives,
            "base_params": self.base_params,
            "training": self.training.model_dump(mode="json"),
            "augment": self.augment.model_dump(mode="json"),
            "prune": self.params.prune.model_dump(mode="json"),
        }

    def shards(self):
        return self.plan

    def objective(self, values: dict[str, float], train_set, val_set) -> list[float]:
        """Train one trial's params for ``tune.training`` epochs; its objectives from the last validation."""
        method_name = self.study.method
        cls = method_class(method_name)
        try:
            params = cls.Params(**deep_update(self.base_params, SearchSpace.nested(values)))
        except ValidationError as err:
            raise StageError(f"tune@{self.variant}: sampled values {values} are not valid: {err}") from None
        method = cls(params, self.landmarks, self.pos_weight)
        with _INIT_LOCK:
            torch.manual_seed(self.seed)  # every trial starts from the same weights: only the loss differs
            network = method.build_network()
        trainer = Trainer(
            network,
            method.step,
            self.training,
            seed=self.seed,
            train_set=train_set,
            val_set=val_set,
            validate=with_uv_error(method) if method_name == "denseseg" else method.validate,
            augment=AffineAugment(self.augment),
            workdir=None,  # a trial is short: an interrupted one is trained again from the start
            callbacks=[FirstEpochDice(self.params.prune.dice_below)],
        )
        try:
            record = trainer.fit().history[-1]
        except TrainingError as err:
            raise TrialPruned(f"non-finite training loss ({err})") from None
        scores = [float(record.get(name, math.nan)) for name in self.objectives]
        bad = [name for name, v in zip(self.objectives, scores, strict=True) if not math.isfinite(v)]
        if bad:
            raise TrialPruned(f"objective(s) {bad} not finite after epoch {record['epoch']}")
        return scores

    def process(self, shard: Worker):
        worker, quota = shard.index, shard.trials
        torch.set_num_threads(self.training.threads)
        train_set = CacheItems(self.cache, self.train_items)  # UVCache keeps its Parquet handles per thread
        val_set = CacheItems(self.cache, self.val_items)

        def progress(trial: optuna.trial.FrozenTrial, finished: int) -> None:
            shown = (
                ", ".join(f"{k} {v:.4g}" for k, v in zip(self.objectives, trial.values, strict=True))
                if trial.values
                else trial.user_attrs.get("reason", "")
            )
            message = f"trial {trial.number} {trial.state.name.lower()} ({shown})"
            self.report_progress(finished, self.params.n_trials, message)
            self.log.info("tune@%s worker %d: %s", self.variant, worker, message)

        return run_worker(
            self.journal,
            self.variant,
            self.space,
            quota,
            lambda values: self.objective(values, train_set, val_set),
            seed=self.seed,
            worker=worker,
            n_startup_trials=self.params.n_startup_trials,
            on_trial=progress,
        )

    def finish(self, results) -> StageReport:
        study = optuna.load_study(study_name=self.variant, storage=journal_storage(self.journal))
        names, directions = list(self.objectives), list(self.objectives.values())
        trials = trials_frame(study, names, self.space)
        front = pareto_front(trials, names, directions)
        staging = partial_dir(self.path(REPORTS_DIR) / self.variant)
        trials.to_csv(staging / "trials.csv", index=False)
        front.to_csv(staging / "pareto.csv", index=False)
        (staging / "pareto.md").write_text(front_markdown(front, self.variant, self.objectives))
        plot_front(trials, front, names, staging / "pareto.png", f"tune@{self.variant}: {len(trials)} trials")
        commit_dir(staging, self.path(REPORTS_DIR) / self.variant)
        plot_csv = self.path(PLOTS_DIR) / f"{self.variant}.csv"
        plot_csv.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(plot_csv, front.to_csv(index=False))

        picked = {
            "study": self.variant,
            "method": self.study.method,
            "dataset": self.study.dataset,
            "directions": self.objectives,
            "rule": "closest to the utopia point after min-max normalising each objective over the Pareto front",
        }
        if front.empty:  # the pipeline goes on; a run that asks for these values is refused (stages/train.py)
            note = f"none of {len(trials)} trial(s) completed (all pruned or failed); see {REPORTS_DIR}/{self.variant}"
            self.log.warning("tune@%s: %s", self.variant, note)
            picked.update(trial=None, objectives={}, values={}, overrides={}, note=note)
        else:
            pick = front[front["picked"]].iloc[0]
            values = {path: float(pick[path]) for path in self.space.ranges}
            picked.update(
                trial=int(pick["trial"]),
                objectives={name: float(pick[name]) for name in names},
                values=values,
                overrides=SearchSpace.nested(values),  # deep update of train.methods.<method>
            )
        write_json_atomic(self.path(TUNED_DIR) / f"{self.variant}.json", picked)
        states = trials["state"].value_counts().to_dict()
        metrics = {
            "trials": len(trials),
            "complete": int(states.get("COMPLETE", 0)),
            "pruned": int(states.get("PRUNED", 0)),
            "failed": int(states.get("FAIL", 0)),
            "interrupted": int(trials["interrupted"].sum()),
            "front_size": len(front),
            "picked_trial": picked["trial"],
            "picked": {**picked["objectives"], **picked["values"]},
        }
        self.write_metrics(metrics, f"tune-{self.variant}")
        return StageReport(metrics=metrics, tables={"pareto front": front})
