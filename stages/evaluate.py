"""Stage ``evaluate@<run>``: score a trained model on the test split of its anatomy.

Reads ``paths.models/<run>/model.pt`` and the uv cache named by the run's
``evaluate_on`` (recorded in the model) (its test items, reference masks and landmarks of the full
landmark set, and each image's mm per pixel); on the wrist phantom also the true
landmark positions (``paths.truth_landmarks``). Every test image and structure
is scored once per landmark estimator (``denseseg.evaluation.cases``).

Outputs:
- ``reports/eval/<run>/cases.parquet``: one row per image, structure and estimator;
- ``reports/eval/<run>/{best,median,worst}.png``: overlays of the best, median and
  worst test case by landmark ASD (the primary estimator);
- ``paths.metrics/eval-<run>.json``: per group mean and std of the primary estimator's
  metrics (the paper's Table 1/2 cells), the other estimators' TRE, and counts.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from denseseg.evaluation.cases import aggregate, evaluation_summary, extremes, score_case
from denseseg.evaluation.landmarks import subset_anatomy
from denseseg.evaluation.overlays import overlay_png
from denseseg.inference.predictor import Predictor
from denseseg.io.atomic import atomic_file, write_json_atomic
from denseseg.io.tables import LANDMARKS, read_table
from denseseg.shape.landmark_table import landmark_array
from denseseg.uv.cache import UVCache
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class EvaluateParams(StageParams):
    batch_size: int = Field(ge=1)
    device: str
    threads: int = Field(ge=1)
    overlay_scale: int = Field(ge=1)  # overlay PNGs at this many screen pixels per working pixel


class EvaluateStage(Stage[EvaluateParams, list[dict]]):  # per shard: the scored rows (case, structure, estimator)
    name = "evaluate"
    Params = EvaluateParams
    whole_section = True

    def prepare(self) -> None:
        torch.set_num_threads(self.params.threads)
        with stage_errors():  # ModelError, CacheError
            self.predictor = Predictor.from_folder(
                self.path(self.config.paths["models"]) / self.variant, self.params.device
            )
            self.cache = UVCache(self.path(self.config.paths["uvmaps"]) / self.predictor.info["evaluate_on"])
        self.anatomy = self.predictor.method.anatomy
        if self.cache.meta["anatomy"] != self.anatomy.name:
            raise StageError(f"evaluate@{self.variant}: model is {self.anatomy.name}, cache {self.cache.root} is not")
        if len(self.cache.meta["landmark_indices"]) != self.anatomy.n_landmarks:
            raise StageError(f"{self.cache.root}: evaluation needs a cache of all {self.anatomy.n_landmarks} landmarks")
        self.items = self.cache.items_of("test")
        if not self.items:
            raise StageError(f"{self.cache.root}: no test items")
        self.truth = self._truth()
        space = self.predictor.method.space
        self.landmark_sets, self.keep, self.scored = None, None, self.anatomy
        if space.n_trained < self.anatomy.n_landmarks:
            used = np.zeros(self.anatomy.n_landmarks, bool)
            used[space.trained] = True
            self.landmark_sets = {"used": used, "new": ~used}
            if not self.predictor.method.locates_any_landmark:
                # it predicts only the landmarks it was trained on: score those, as the paper's HeatReg 178
                self.keep, self.scored = used, subset_anatomy(self.anatomy, used)
                self.landmark_sets = {"used": np.ones(int(used.sum()), bool)}
        self.out_dir = self.path("reports/eval") / self.variant

    def _truth(self) -> dict[str, np.ndarray]:
        path = self.config.paths.get("truth_landmarks")
        if self.anatomy.name != "wrist" or not path or not self.path(path).exists():
            return {}
        table = read_table(self.path(path), LANDMARKS)
        table = table[table["filestem"].isin(self.items)]
        if table.empty:
            return {}
        stems, points = landmark_array(table, self.anatomy)
        return dict(zip(stems, points))

    def shards(self):
        b = self.params.batch_size
        return [self.items[i : i + b] for i in range(0, len(self.items), b)]

    def process(self, items):
        records = [self.cache.read(item) for item in items]
        images = torch.from_numpy(np.stack([r["image"] for r in records]).astype(np.float32))
        predictions = self.predictor.predict(images)
        rows = []
        primary = self.predictor.method.estimators[0]
        for record, pred in zip(records, predictions):
            reference, truth = self._scored(record["landmarks"]), self._scored(self.truth.get(record["item"]))
            for estimator, landmarks in pred.landmarks.items():
                for row in score_case(
                    record["item"],
                    self.scored,
                    pred.masks,
                    self._scored(landmarks),
                    record["masks"],
                    reference,
                    self.cache.mm_per_px(record["item"]),
                    truth,
                    self.landmark_sets,
                ):
                    rows.append({**row, "estimator": estimator, "primary": estimator == primary})
        return rows

    def _scored(self, landmarks: np.ndarray | None) -> np.ndarray | None:
        """The landmarks that are scored: all, or the trained subset of a model that predicts only those."""
        return landmarks if landmarks is None or self.keep is None else landmarks[self.keep]

    def finish(self, results) -> StageReport:
        rows = pd.DataFrame([row for res in results for row in res])
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.out_dir / "cases.parquet") as tmp:
            rows.to_parquet(tmp, index=False, compression="zstd")
        estimators = self.predictor.method.estimators
        primary = rows[rows["primary"]]
        metrics = evaluation_summary(rows, self.anatomy, estimators, len(self.items))
        if self.landmark_sets:
            sets = [f"tre_px_{s}" for s in self.landmark_sets] + [f"tre_truth_px_{s}" for s in self.landmark_sets]
            metrics["landmark_sets"] = aggregate(primary, self.anatomy, [m for m in sets if m in primary])
        for label, item in zip(("best", "median", "worst"), extremes(primary, "landmark_asd_px")):
            record = self.cache.read(item)  # predicted again: only three images are kept in memory
            pred = self.predictor.predict(torch.from_numpy(record["image"][None].astype(np.float32)))[0]
            overlay_png(
                self.out_dir / f"{label}.png",
                record["image"][0],
                pred.masks,
                record["masks"],
                pred.landmarks[estimators[0]],
                record["landmarks"],
                scale=self.params.overlay_scale,
            )
        write_json_atomic(self.path(self.config.paths["metrics"]) / f"eval-{self.variant}.json", metrics)
        return StageReport(metrics=metrics)
