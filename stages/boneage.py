"""Stage ``boneage``: bone age regressed from landmarks (paper 3.2 and 4.2.1), per landmark source.

Reads the wrist uv cache (``boneage.cache``: the QC-passed items, their
patient-level split and working resolution), the registration landmarks
(``paths.landmarks``, the dataset's labels), the chronological ages of the
ingest manifest, and, on the phantom, the true landmark positions
(``paths.truth_landmarks``) and each image's bone age (``paths.truth``/images.parquet).
The models named in ``boneage.sources`` predict the landmarks of every item
(one shard per batch of images).

Sources: ``registration`` trains and tests on the registration landmarks;
each model source trains on the registration and that model's landmarks of
the train split and tests on its landmarks of the test split only; ``truth``
(phantom only) trains and tests on the true correspondences; ``baseline`` is
the mean training age. Targets: ``chronological`` always, ``bone_age`` when
the phantom truth exists. Every member picks its best epoch on the validation
split, never on test.

Outputs: ``paths.metrics``/boneage.json, ``reports/boneage/predictions.csv``
(test split; a DVC scatter plot), ``reports/boneage/scatter.png`` and
``paths.models``/boneage (the ensemble of ``boneage.model_source`` for the
chronological target, which ``python -m pipelines predict`` uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from denseseg.bone_age.config import BoneAgeParams
from denseseg.bone_age.experiment import SPLITS, compare_sources
from denseseg.bone_age.inputs import bone_ages, chronological_ages, landmarks_of
from denseseg.bone_age.plots import scatter_png
from denseseg.inference.predictor import Predictor
from denseseg.io.atomic import atomic_file, write_json_atomic
from denseseg.training.config import TrainingConfig
from denseseg.training.loop import TrainingError
from denseseg.uv.cache import UVCache
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors

PAPER = {"registration": 14.1, "denseseg": 13.9, "heatreg": 14.1, "baseline": 27.4}  # MAE in months, Fig. 5
OUT = "reports/boneage"


class BoneAgeStageParams(StageParams):
    cache: str  # the uv cache variant (paths.uvmaps/<cache>) whose items and splits are used
    sources: dict[str, str]  # landmark source -> trained model run (paths.models/<run>)
    model_source: str  # the source whose chronological ensemble is saved as paths.models/boneage
    device: str  # where the landmark models predict: auto | cpu | cuda
    predict_batch: int = Field(ge=1)  # images per prediction shard
    network: BoneAgeParams
    training: TrainingConfig


@dataclass(frozen=True)
class PredictBatch:
    """One shard: a batch of images whose landmarks one source's model predicts."""

    source: str
    items: tuple[str, ...]

    def __repr__(self) -> str:  # the shard's label in the UI
        return f"{self.source}: {self.items[0]} +{len(self.items) - 1}"


@dataclass(frozen=True)
class Predicted:
    """One shard's predicted landmarks: (N, 2) per item, by the source's primary estimator."""

    source: str
    items: tuple[str, ...]
    landmarks: list[np.ndarray]


class BoneAgeStage(Stage[BoneAgeStageParams, Predicted]):
    name = "boneage"
    Params = BoneAgeStageParams

    def prepare(self) -> None:
        p, paths = self.params, self.config.paths
        if p.model_source not in p.sources:
            raise StageError(
                f"boneage.model_source {p.model_source!r} is not one of boneage.sources ({', '.join(p.sources)})"
            )
        clash = {"registration", "truth", "baseline"} & set(p.sources)
        if clash:
            raise StageError(f"boneage.sources: {', '.join(sorted(clash))} is a built-in source name")
        torch.set_num_threads(p.training.threads)
        with stage_errors():
            self.cache = UVCache(self.path(paths["uvmaps"]) / p.cache)
        self.anatomy = self.cache.anatomy
        self.items = {split: self.cache.items_of(split) for split in SPLITS}
        for split, items in self.items.items():
            if not items:
                raise StageError(f"{self.cache.root}: no {split} items (bone-age regression needs train, val and test)")
        every = [it for split in SPLITS for it in self.items[split]]
        with stage_errors():
            manifest = self.path(paths["ingest"]) / "manifest.parquet"
            self.height, self.width, self.months = chronological_ages(manifest, every)
            truth_images = self.path(paths["truth"]) / "images.parquet"
            self.bone_age = bone_ages(truth_images, every) if truth_images.exists() else None
        if self.bone_age is None:
            self.log.info("boneage: no phantom truth (%s): the bone_age target is skipped", truth_images)
        self.landmarks = {"registration": self._landmarks(paths["landmarks"], every, required=True)}
        truth = self._landmarks(paths.get("truth_landmarks"), every, required=False)
        covered = {split: [it for it in self.items[split] if it in truth] for split in SPLITS}
        if covered["train"] and covered["test"]:
            self.landmarks["truth"] = truth
        else:
            self.log.info(
                "boneage: no true landmark positions of train and test items (%s): source 'truth' skipped",
                paths.get("truth_landmarks"),
            )
        self.predictors = {source: self._predictor(run) for source, run in p.sources.items()}

    def _landmarks(self, relative: str | None, items: list[str], required: bool) -> dict[str, np.ndarray]:
        """Item -> (N, 2) landmarks of a LANDMARKS table; without ``required`` a missing table or item is no error."""
        path = self.path(relative) if relative else None
        if path is None or not path.exists():
            if required:
                raise StageError(f"{path or 'paths.landmarks'}: landmarks table not found; run `dvc repro register`")
            return {}
        with stage_errors():
            return landmarks_of(path, items, self.anatomy, required)

    def _predictor(self, run: str) -> Predictor:
        folder = self.path(self.config.paths["models"]) / run
        if not (folder / "model.pt").exists():
            raise StageError(f"{folder}: no trained model; run `dvc repro train@{run}` first")
        with stage_errors():  # ModelError
            predictor = Predictor.from_folder(folder, self.params.device)
        if predictor.method.anatomy.name != self.anatomy.name:
            raise StageError(f"{folder}: a {predictor.method.anatomy.name} model, the cache is {self.anatomy.name}")
        return predictor

    def shards(self):
        every = sorted(it for split in SPLITS for it in self.items[split])
        b = self.params.predict_batch
        return [PredictBatch(s, tuple(every[i : i + b])) for s in self.params.sources for i in range(0, len(every), b)]

    def process(self, shard: PredictBatch):
        predictor = self.predictors[shard.source]
        images = np.stack([self.cache.image(item) for item in shard.items])
        if images.shape[-2:] != (self.height, self.width):
            raise StageError(
                f"{self.cache.root}: images are {images.shape[-2:]}, the manifest says {self.height}x{self.width}"
            )
        predictions = predictor.predict(torch.from_numpy(images))
        primary = predictor.method.estimators[0]
        return Predicted(shard.source, shard.items, [pred.landmarks[primary] for pred in predictions])

    def finish(self, results: list[Predicted]) -> StageReport:
        p = self.params
        for r in results:
            self.landmarks.setdefault(r.source, {}).update(zip(r.items, r.landmarks))
        targets = {"chronological": self.months, **({"bone_age": self.bone_age} if self.bone_age is not None else {})}
        order = ["registration", *p.sources, *(["truth"] if "truth" in self.landmarks else [])]
        try:
            found = compare_sources(
                p.network,
                p.training,
                self.items,
                {source: self.landmarks[source] for source in order},
                targets,
                anatomy=self.anatomy,
                height=self.height,
                width=self.width,
                seed=self.seed,
                progress=self.report_progress,
            )
        except KeyError as err:
            raise StageError(f"boneage: {err.args[0]}") from None
        except TrainingError as err:
            raise StageError(f"boneage {err}") from None
        for (target, source), n in found.fallbacks.items():
            if n:
                self.log.warning(
                    "boneage %s / %s: %d test image(s) without any landmark got the mean training age",
                    target,
                    source,
                    n,
                )
        counts = {f"n_{split}": len(self.items[split]) for split in SPLITS}
        metrics = {**counts, "bucket_months": p.network.bucket_months, "members": p.network.members, **found.metrics}
        metrics["paper"] = dict(PAPER)
        self._write(metrics, pd.DataFrame(found.rows), found.models["chronological", p.model_source])
        return StageReport(metrics=metrics)

    def _write(self, metrics: dict, rows: pd.DataFrame, model) -> None:
        out = self.path(OUT)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_file(out / "predictions.csv") as tmp:
            rows.to_csv(tmp, index=False, float_format="%.4f")
        chronological = rows[rows["target"] == "chronological"]
        scatter_png(
            chronological,
            out / "scatter.png",
            "Bone-age regression from landmarks: chronological age, test split",
            baseline_months=float(np.mean([self.months[it] for it in self.items["train"]])),
        )
        model.save(self.path(self.config.paths["models"]) / "boneage")
        write_json_atomic(self.path(self.config.paths["metrics"]) / "boneage.json", metrics)
