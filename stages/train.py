"""Stage ``train@<run>``: train one method on one uv cache through the shared training core.

A run (``train.runs.<name>``) names a method, the uv cache it trains on
(``dataset``: a ``uvmaps`` variant) and the cache it is evaluated on. Its
params are the method's section (``train.methods.<method>``) and the shared
``training`` / ``augment`` settings, each deep-updated by the run's own
``overrides`` / ``training`` / ``augment`` keys, so every value is written once.

Outputs:
- ``paths.models/<run>/model.pt``: the best weights (picked on the validation
  split, never on test) with everything ``denseseg.inference.Predictor`` needs;
- ``paths.checkpoints/<run>/``: ``last.pt`` / ``best.pt`` (a persistent DVC out,
  so a run killed half way resumes at the next ``dvc repro``);
- ``reports/plots/train/<run>.csv``: the per-epoch history (DVC plots);
- ``paths.metrics/train-<run>.json``: epochs, best epoch and monitor, parameters.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from denseseg.inference.predictor import save_model
from denseseg.io.atomic import write_json_atomic
from denseseg.io.checksums import source_digest
from denseseg.losses.segmentation import positive_weights
from denseseg.methods.data import CacheItems, mask_fractions, open_training_cache
from denseseg.methods.registry import method_class
from denseseg.nets.backbone import count_parameters
from denseseg.training.augment import AffineAugment, AugmentParams
from denseseg.training.checkpoint import load_best
from denseseg.training.config import TrainingConfig, deep_update
from denseseg.training.curves import write_curve
from denseseg.training.loop import Callback, Trainer, TrainingError
from denseseg.uv.cache import CacheError
from stages.base import Stage, StageError, StageParams, StageReport

CODE = ("nets", "losses", "methods", "training")  # the packages whose code is part of a run's fingerprint


class RunParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    method: str
    dataset: str  # the uvmaps variant it trains on
    evaluate_on: str  # the uvmaps variant holding the reference landmarks of its test split
    overrides: dict[str, Any] = Field(default_factory=dict)  # deep update of train.methods.<method>
    training: dict[str, Any] = Field(default_factory=dict)  # deep update of train.training
    augment: dict[str, Any] = Field(default_factory=dict)  # deep update of train.augment
    # a tune study whose picked values (paths.tuned/<study>.json) deep-update the method's params
    # before ``overrides``; None (the default runs): the values of train.methods.<method>
    tuned: str | None = None


class TrainParams(StageParams):
    training: dict[str, Any]
    augment: dict[str, Any]
    monitor: dict[str, str]  # method -> validation metric picking the best checkpoint (val_loss, val_tre_px, ...)
    monitor_mode: dict[str, Literal["min", "max"]]
    methods: dict[str, dict[str, Any]]
    runs: dict[str, RunParams]
    # runs trained with a tune study's picked values (their own DVC stage train_tuned@<run>, which depends
    # on reports/tuned/<study>.json: a foreach stage cannot add a dependency to some of its entries only)
    tuned_runs: dict[str, RunParams]


def _code_digest() -> str:
    """Digest of the library code that shapes a training run: a checkpoint made by other code never resumes."""
    import denseseg

    root = Path(denseseg.__file__).parent
    return source_digest(*(root / package for package in CODE))


class _Progress(Callback):
    """Epochs as the stage's progress (a progress artifact in the Prefect UI; the loop logs each epoch itself)."""

    def __init__(self, stage: TrainStage, epochs: int):
        self.stage, self.epochs = stage, epochs

    def on_epoch_end(self, trainer, record):
        self.stage.report_progress(record["epoch"], self.epochs, f"epoch {record['epoch']}/{self.epochs}")


class TrainStage(Stage[TrainParams]):
    name = "train"
    Params = TrainParams
    whole_section: ClassVar[bool] = True  # train@<run> reads the whole train section

    def resolved(self) -> tuple[RunParams, Any, TrainingConfig, AugmentParams]:
        """The run's method params, training config and augmentation, validated."""
        p = self.params
        runs = {**p.runs, **p.tuned_runs}
        if self.variant not in runs:
            raise StageError(f"train: no run {self.variant!r} in train.runs or train.tuned_runs ({', '.join(runs)})")
        if self.variant in p.tuned_runs and p.tuned_runs[self.variant].tuned is None:
            raise StageError(f"train.tuned_runs.{self.variant}: a tuned run names its study (tuned: <study>)")
        run = runs[self.variant]
        if run.method not in p.methods:
            raise StageError(f"train.runs.{self.variant}.method: {run.method!r} has no section train.methods")
        try:
            cls = method_class(run.method)
            method_params = cls.Params(**deep_update(self.tuned_values(run), run.overrides))
            config = TrainingConfig(**deep_update(p.training, run.training))
            augment = AugmentParams(**deep_update(p.augment, run.augment))
        except (KeyError, ValueError) as err:
            raise StageError(f"train@{self.variant}: {err}".replace("\n", " ")) from None
        return run, method_params, config, augment

    def tuned_values(self, run: RunParams) -> dict:
        """train.methods.<method>, deep-updated by the picked values of the run's tune study when it names one."""
        base = self.params.methods[run.method]
        if run.tuned is None:
            return base
        path = self.path(self.config.paths["tuned"]) / f"{run.tuned}.json"
        if not path.exists():
            raise StageError(f"train@{self.variant}: tuned: {path} not found; run the stage tune@{run.tuned} first")
        try:
            picked = json.loads(path.read_text())
            method, overrides = picked["method"], picked["overrides"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise StageError(f"train@{self.variant}: {path} is not a picked-values file ({err})") from None
        if picked.get("trial") is None:
            raise StageError(f"train@{self.variant}: {path} picks nothing: {picked.get('note', 'no completed trial')}")
        if method != run.method:
            raise StageError(f"train@{self.variant}: {path} was tuned for {method!r}, the run trains {run.method!r}")
        self.log.info("train@%s: %s values of trial %s: %s", self.variant, path, picked.get("trial"), overrides)
        return deep_update(base, overrides)

    def prepare(self) -> None:
        self.run_name = self.variant
        self.run, self.method_params, self.training, self.augment = self.resolved()
        if self.run.method not in self.params.monitor:
            raise StageError(f"train.monitor: no monitor for method {self.run.method!r}")
        cache_dir = self.path(self.config.paths["uvmaps"]) / self.run.dataset
        try:
            self.cache, self.space = open_training_cache(cache_dir)
        except (CacheError, FileNotFoundError) as err:
            raise StageError(str(err)) from None
        self.train_items = self.cache.items_of("train")
        self.val_items = self.cache.items_of("val")
        if not self.train_items or not self.val_items:
            raise StageError(
                f"{cache_dir}: {len(self.train_items)} train and {len(self.val_items)} val items; "
                "training needs both (the best checkpoint is picked on val, never on test)"
            )
        self.out_dir = self.path(self.config.paths["models"]) / self.variant
        self.workdir = self.path(self.config.paths["checkpoints"]) / self.variant

    def fingerprint(self) -> str:
        """Changes with every param of the run and with the training data: a checkpoint of another run never resumes."""
        blob = json.dumps(
            {
                "seed": self.seed,
                "method": self.run.method,
                "params": self.method_params.model_dump(mode="json"),
                "training": self.training.model_dump(mode="json"),
                "augment": self.augment.model_dump(mode="json"),
                "data": hashlib.sha256((self.cache.root / "index.parquet").read_bytes()).hexdigest(),
                "code": _code_digest(),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def process(self, shard):
        torch.set_num_threads(self.training.threads)
        train_set = CacheItems(self.cache, self.train_items)
        val_set = CacheItems(self.cache, self.val_items)
        positive, total = mask_fractions(train_set)
        pos_weight = positive_weights(positive, total)
        method = method_class(self.run.method)(self.method_params, self.space, pos_weight)
        try:
            method.prepare(train_set)
        except ValueError as err:
            raise StageError(f"train@{self.variant}: {err}") from None
        torch.manual_seed(self.seed)
        network = method.build_network()
        trainer = Trainer(
            network,
            method.step,
            self.training,
            seed=self.seed,
            train_set=train_set,
            val_set=val_set,
            validate=method.validate,
            augment=AffineAugment(self.augment),
            workdir=self.workdir,
            monitor=self.params.monitor[self.run.method],
            monitor_mode=self.params.monitor_mode[self.run.method],
            callbacks=[_Progress(self, self.training.epochs)],
            fingerprint=self.fingerprint(),
        )
        started = time.perf_counter()
        try:
            result = trainer.fit()
        except TrainingError as err:
            raise StageError(f"train@{self.variant}: {err}") from None
        self.log.info("train@%s: %d epoch(s) in %.0f s", self.variant, result.epochs_run, time.perf_counter() - started)
        load_best(network, self.workdir)
        return method, network, result, pos_weight

    def finish(self, results) -> StageReport:
        method, network, result, pos_weight = results[0]
        save_model(
            self.out_dir,
            method=self.run.method,
            params=self.method_params,
            space=self.space,
            network=network,
            pos_weight=pos_weight,
            info={
                "run": self.variant,
                "dataset": self.run.dataset,
                "evaluate_on": self.run.evaluate_on,
                "best_epoch": result.best_epoch,
            },
        )
        plots = self.path("reports/plots/train")
        plots.mkdir(parents=True, exist_ok=True)
        write_curve(plots / f"{self.variant}.csv", result.history)
        last = result.history[-1] if result.history else {}
        metrics = {
            "epochs": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_monitor": result.best_metric,
            "final_train_loss": last.get("train_loss"),
            "parameters": count_parameters(network),
            "train_items": len(self.train_items),
            "val_items": len(self.val_items),
            "landmarks_trained": self.space.n_trained,
        }
        if result.resumed_from is not None:  # logged, not written: a resumed run gives the same bytes
            self.log.info("train@%s: resumed after epoch %d", self.variant, result.resumed_from)
        metrics = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}
        write_json_atomic(self.path(self.config.paths["metrics"]) / f"train-{self.variant}.json", metrics)
        return StageReport(metrics=metrics)
