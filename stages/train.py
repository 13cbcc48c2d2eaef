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

import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from denseseg.inference.predictor import save_model
from denseseg.io.atomic import write_json_atomic
from denseseg.losses.segmentation import positive_weights
from denseseg.methods.data import CacheItems, mask_fractions, open_training_cache
from denseseg.methods.registry import method_class
from denseseg.nets.backbone import count_parameters
from denseseg.training.augment import AffineAugment
from denseseg.training.checkpoint import load_best
from denseseg.training.curves import write_curve
from denseseg.training.loop import Callback, Trainer, TrainingError, TrainingResult
from denseseg.training.runs import ResolvedRun, RunError, RunParams, resolve_run, run_fingerprint
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


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


@dataclass(frozen=True)
class Trained:
    """The trained run: its method, the network with the best weights loaded, the loop's result."""

    method: Any
    network: torch.nn.Module
    result: TrainingResult
    pos_weight: torch.Tensor


class _Progress(Callback):
    """Epochs as the stage's progress (a progress artifact in the Prefect UI; the loop logs each epoch itself)."""

    def __init__(self, stage: TrainStage, epochs: int):
        self.stage, self.epochs = stage, epochs

    def on_epoch_end(self, trainer, record):
        self.stage.report_progress(record["epoch"], self.epochs, f"epoch {record['epoch']}/{self.epochs}")


class TrainStage(Stage[TrainParams, Trained]):
    name = "train"
    Params = TrainParams
    whole_section: ClassVar[bool] = True  # train@<run> reads the whole train section

    def resolved(self) -> ResolvedRun:
        """The run's method params, training config and augmentation, validated (``denseseg.training.runs``)."""
        p = self.params
        with stage_errors(f"train@{self.variant}: ", (RunError,)):
            resolved = resolve_run(
                self.variant, p.runs, p.tuned_runs, p.methods, p.training, p.augment,
                self.path(self.config.paths["tuned"]),
            )  # fmt: skip
        if resolved.tuned_trial is not None:
            self.log.info("train@%s: tune@%s's trial %s", self.variant, resolved.run.tuned, resolved.tuned_trial)
        return resolved

    def prepare(self) -> None:
        self.resolved_run = resolved = self.resolved()
        self.run, self.method_params, self.training = resolved.run, resolved.method_params, resolved.training
        if self.run.method not in self.params.monitor:
            raise StageError(f"train.monitor: no monitor for method {self.run.method!r}")
        cache_dir = self.path(self.config.paths["uvmaps"]) / self.run.dataset
        with stage_errors():
            self.cache, self.space = open_training_cache(cache_dir)
        self.train_items = self.cache.items_of("train")
        self.val_items = self.cache.items_of("val")
        if not self.train_items or not self.val_items:
            raise StageError(
                f"{cache_dir}: {len(self.train_items)} train and {len(self.val_items)} val items; "
                "training needs both (the best checkpoint is picked on val, never on test)"
            )
        self.out_dir = self.path(self.config.paths["models"]) / self.variant
        self.workdir = self.path(self.config.paths["checkpoints"]) / self.variant

    def process(self, shard):
        torch.set_num_threads(self.training.threads)
        train_set = CacheItems(self.cache, self.train_items)
        val_set = CacheItems(self.cache, self.val_items)
        positive, total = mask_fractions(train_set)
        pos_weight = positive_weights(positive, total)
        method = method_class(self.run.method)(self.method_params, self.space, pos_weight)
        with stage_errors(f"train@{self.variant}: ", (ValueError,)):
            method.prepare(train_set)
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
            augment=AffineAugment(self.resolved_run.augment),
            workdir=self.workdir,
            monitor=self.params.monitor[self.run.method],
            monitor_mode=self.params.monitor_mode[self.run.method],
            callbacks=[_Progress(self, self.training.epochs)],
            fingerprint=run_fingerprint(self.resolved_run, self.seed, self.cache.root / "index.parquet"),
        )
        started = time.perf_counter()
        with stage_errors(f"train@{self.variant}: ", (TrainingError,)):
            result = trainer.fit()
        self.log.info("train@%s: %d epoch(s) in %.0f s", self.variant, result.epochs_run, time.perf_counter() - started)
        load_best(network, self.workdir)
        return Trained(method, network, result, pos_weight)

    def finish(self, results: list[Trained]) -> StageReport:
        (trained,) = results
        network, result = trained.network, trained.result
        save_model(
            self.out_dir,
            method=self.run.method,
            params=self.method_params,
            space=self.space,
            network=network,
            pos_weight=trained.pos_weight,
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
