"""Stage ``nnunet@<run>``: the nnU-Net baseline through the real ``nnunetv2`` package, trained and scored.

A run (``nnunet.runs.<name>``) names the uv cache of its anatomy (``dataset``)
and an nnU-Net dataset id. The stage exports the cache's training split as an
nnU-Net raw dataset (structures as regions), plans and preprocesses the 2-D
configuration, trains fold ``all`` and predicts the test split
(``denseseg.nnunet``), with ``nnUNet_raw`` / ``nnUNet_preprocessed`` /
``nnUNet_results`` pointing at this run's folders only while nnU-Net runs.
The test predictions are scored by the project's evaluation code
(``score_case`` without landmarks) as ``evaluate@<run>`` scores a trained model.

Outputs:
- ``paths.nnunet/<run>/raw`` and ``/preprocessed``: nnU-Net's raw and preprocessed folders;
- ``paths.nnunet/<run>/predictions.parquet``: per test item and structure the region
  probability (float16) and the mask (packed bits);
- ``paths.models/<run>/``: nnU-Net's results folder (plans, dataset.json, checkpoints; a
  persistent DVC out: a killed training resumes from ``checkpoint_latest.pth``);
- ``reports/eval/<run>/cases.parquet`` and ``{best,median,worst}.png`` (by mask surface ASD);
- ``paths.metrics/eval-<run>.json`` (as ``evaluate``) and ``paths.metrics/nnunet-<run>.json``
  (cases, plan, parameters; timings are logged, not written, so the same params give the same bytes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from denseseg.evaluation.cases import evaluation_summary, extremes, score_case
from denseseg.evaluation.overlays import overlay_png
from denseseg.io.atomic import atomic_file, write_json_atomic
from denseseg.nnunet.config import NnUNetParams
from denseseg.nnunet.environment import Folders
from denseseg.nnunet.export import ExportError, cache_reader, export_raw_dataset, image_integers
from denseseg.nnunet.outputs import prediction_rows, run_fingerprint, run_summary, write_predictions
from denseseg.nnunet.plan import plan_and_preprocess
from denseseg.nnunet.regions import EncodingError
from denseseg.uv.cache import CacheError, UVCache
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors

if TYPE_CHECKING:  # the training module imports nnunetv2 (slow): only when the stage trains
    from denseseg.nnunet.training import TrainedModel

ESTIMATOR = "masks"  # nnU-Net predicts masks only: one estimator, the primary one


class RunParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str  # the uvmaps variant (its train split is exported, its test split scored)
    dataset_id: int = Field(ge=1, le=999)  # nnU-Net's dataset id


class NnUNetStageParams(StageParams, NnUNetParams):
    """The nnunet section: the library's ``NnUNetParams`` (validated there, once) plus the stage's runs."""

    runs: dict[str, RunParams]
    overlay_scale: int = Field(ge=1)


@dataclass(frozen=True)
class NnUNetRun:
    """The trained run: scored rows and prediction rows of the test split, the model, its plans, timings."""

    rows: list[dict]
    predictions: list[dict]
    trained: TrainedModel
    plans: Path
    timings: dict[str, float]


class NnUNetStage(Stage[NnUNetStageParams, NnUNetRun]):
    name = "nnunet"
    Params = NnUNetStageParams
    whole_section: ClassVar[bool] = True

    def prepare(self) -> None:
        p = self.params
        if self.variant not in p.runs:
            raise StageError(f"nnunet: no run {self.variant!r} in nnunet.runs ({', '.join(p.runs)})")
        self.run = p.runs[self.variant]
        with stage_errors(f"nnunet@{self.variant}: ", (ValueError, CacheError)):
            self.nnunet = NnUNetParams(**p.model_dump(exclude={"runs", "overlay_scale"}))  # the fingerprinted part
            self.cache = UVCache(self.path(self.config.paths["uvmaps"]) / self.run.dataset)
        self.anatomy = self.cache.anatomy
        self.train_items, self.test_items = self.cache.items_of("train"), self.cache.items_of("test")
        if not self.train_items or not self.test_items:
            raise StageError(
                f"{self.cache.root}: {len(self.train_items)} train and {len(self.test_items)} test items; "
                "nnU-Net trains on train and is scored on test"
            )
        base = self.path(self.config.paths["nnunet"]) / self.variant
        results = self.path(self.config.paths["models"]) / self.variant
        self.folders = Folders(base / "raw", base / "preprocessed", results)
        self.predictions = base / "predictions.parquet"
        self.out_dir = self.path("reports/eval") / self.variant

    def process(self, shard):
        from denseseg.nnunet.predict import NnUNetModel, NnUNetPredictError
        from denseseg.nnunet.training import NnUNetTrainingError, train

        timings = {}
        started = time.perf_counter()
        with stage_errors(f"nnunet@{self.variant}: ", (ExportError, EncodingError)):
            exported = export_raw_dataset(
                cache_reader(self.cache),
                self.train_items,
                self.cache.structures,
                self.folders.raw,
                self.run.dataset_id,
                self.variant.replace("-", "_"),
                f"DenseSeg pipeline: train split of uv cache {self.run.dataset} ({self.anatomy.name})",
            )
        timings["export_s"] = time.perf_counter() - started
        started = time.perf_counter()
        plans_file = plan_and_preprocess(self.folders, self.run.dataset_id, self.nnunet)
        timings["plan_preprocess_s"] = time.perf_counter() - started
        started = time.perf_counter()
        with stage_errors(f"nnunet@{self.variant}: ", (NnUNetTrainingError, NnUNetPredictError)):
            fingerprint = run_fingerprint(self.seed, self.nnunet, self.folders.raw)
            trained = train(self.folders, exported.name, self.nnunet, self.seed, fingerprint)
            self.model = NnUNetModel(trained.output_folder, exported.encoding, self.nnunet)
        timings["train_s"] = time.perf_counter() - started
        if trained.resumed_from_epoch is not None:
            self.log.info("nnunet@%s: resumed at epoch %d", self.variant, trained.resumed_from_epoch)
        started = time.perf_counter()
        rows, predictions = [], []
        for done, item in enumerate(self.test_items, 1):
            record = self.cache.read(item)
            pred = self.model.predict(image_integers(record["image"], self.cache.image_max))
            predictions += prediction_rows(item, pred.probabilities, pred.masks, self.cache.structures)
            for row in score_case(
                item,
                self.anatomy,
                pred.masks,
                None,
                record["masks"],
                self._reference_landmarks(record),
                self.cache.mm_per_px(item),
            ):
                rows.append({**row, "estimator": ESTIMATOR, "primary": True})
            self.report_progress(done, len(self.test_items), f"predicted {item}")
        timings["predict_score_s"] = time.perf_counter() - started
        return NnUNetRun(rows, predictions, trained, plans_file, timings)

    def _reference_landmarks(self, record: dict) -> np.ndarray | None:
        """The cache's landmarks when it holds the anatomy's full set (scored as TRE's reference), else None."""
        return record["landmarks"] if len(record["landmarks"]) == self.anatomy.n_landmarks else None

    def finish(self, results: list[NnUNetRun]) -> StageReport:
        (result,) = results
        rows = pd.DataFrame(result.rows)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.out_dir / "cases.parquet") as tmp:
            rows.to_parquet(tmp, index=False, compression="zstd")
        write_predictions(self.predictions, result.predictions)
        metrics = evaluation_summary(rows, self.anatomy, [ESTIMATOR], len(self.test_items))
        for label, item in zip(("best", "median", "worst"), extremes(rows, "surface_asd_px")):
            record = self.cache.read(item)  # predicted again: only three images are kept in memory
            pred = self.model.predict(image_integers(record["image"], self.cache.image_max))
            overlay_png(
                self.out_dir / f"{label}.png",
                record["image"][0],
                pred.masks,
                record["masks"],
                None,
                self._reference_landmarks(record),
                scale=self.params.overlay_scale,
            )
        write_json_atomic(self.path(self.config.paths["metrics"]) / f"eval-{self.variant}.json", metrics)
        trained, timings, schedule = result.trained, result.timings, self.nnunet.schedule
        summary = run_summary(result.plans, self.nnunet, self.folders.raw)
        run_metrics = {
            "train_items": len(self.train_items),
            "test_items": len(self.test_items),
            **summary,
            "parameters": sum(int(v.numel()) for v in self.model.predictor.network.parameters()),
        }
        if trained.trained_now and trained.resumed_from_epoch is None:  # logged, not written: same params, same bytes
            steps = schedule.epochs * (schedule.iterations_per_epoch + schedule.val_iterations_per_epoch)
            timings["seconds_per_epoch"] = timings["train_s"] / schedule.epochs
            timings["seconds_per_step"] = timings["train_s"] / steps
        self.log.info("nnunet@%s: timings %s", self.variant, {k: round(v, 3) for k, v in timings.items()})
        write_json_atomic(self.path(self.config.paths["metrics"]) / f"nnunet-{self.variant}.json", run_metrics)
        return StageReport(metrics={**run_metrics, "eval": metrics["primary"]["average"]})
