"""Stage ``propagate``: seed annotations + ingested images -> 17 bone masks for every image.

Reads the ingest manifest and images and the seed annotations
(``denseseg.io.seed_annotations``), runs the label propagation rounds
(``denseseg.propagation``) and writes, atomically, into ``paths.masks``: mask-store
shards (``shard-XXXX.parquet``) of the seeds (confidence 1) and of the accepted
pseudo-labels (per-bone confidence); ``rejects.parquet`` (every ingested image
without masks, and seed rows that could not be used, with the reason);
``excluded-masks.parquet`` (the excluded images' masks, for inspection only);
``rounds.parquet`` (the per-round record). Metrics: ``paths.metrics``/propagation.json
(numbers; the refiner and the device in propagation-info.json); on the phantom
each round is scored against the true masks (``PropagationScores``). For ``dvc
plots``: ``reports/plots/propagation/rounds.csv`` and ``train_loss.csv``.

Streamed (memory flat in the number of images): seeds and truth go to mask-store
shards in ``<masks>.partial/.work/``, images are read when a batch needs them, and
the output shards are assembled by copying rows.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pydantic import Field

from denseseg.anatomy import WRIST
from denseseg.evaluation.segmentation_scores import PropagationScores, score_against_truth
from denseseg.io.atomic import commit_dir, json_ready, partial_dir, write_text_atomic
from denseseg.io.ingested import check_images, working_frames
from denseseg.io.png import read_png
from denseseg.io.tables import MANIFEST, REJECTS, read_table, reject_frame, write_table
from denseseg.propagation.inputs import seed_shards, truth_shards
from denseseg.propagation.records import LOSS_COLUMNS, loss_rows, propagation_metrics, round_row
from denseseg.propagation.refiners import RefinerParams, make_refiner
from denseseg.propagation.rounds import PropagationParams, PropagationResult, propagate
from denseseg.propagation.store import LazyImages, ShardMasks, write_item_shards, write_row_shard
from denseseg.propagation.trainer import normalise_image
from denseseg.training.device import resolve_device
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors

STRUCTURES = list(WRIST.structures)


class PropagateParams(StageParams, PropagationParams):
    """The rounds' parameters (``PropagationParams``) and how this run makes them."""

    refiner: RefinerParams
    device: str = Field(description="auto | cpu | cuda")
    threads: int = Field(ge=1, description="torch CPU threads")
    shard_size: int = Field(gt=0, description="images per mask shard (output, and prediction chunk)")
    cache_items: int = Field(ge=0, description="training pairs cached in memory (packed masks)")


@dataclass(frozen=True)
class Propagated:
    """The rounds' result, how they ran (refiner, device, seconds) and the seeds' scores against truth."""

    result: PropagationResult
    refiner: str
    device: str
    seed_scores: dict | None
    has_truth: bool
    seconds: float


class PropagateStage(Stage[PropagateParams, Propagated]):
    name = "propagate"
    Params = PropagateParams

    def prepare(self) -> None:
        paths = self.config.paths
        self.ingest_dir = self.path(paths["ingest"])
        self.out_dir = self.path(paths["masks"])
        with stage_errors():
            manifest = read_table(self.ingest_dir / "manifest.parquet", MANIFEST)
            if manifest.empty:
                raise StageError(f"{self.ingest_dir / 'manifest.parquet'}: no ingested image")
            self.readable, self.shape, self.image_rejects = check_images(self.ingest_dir, manifest)
        self.images_in = len(manifest)
        self.frames = working_frames(manifest)
        self.image_paths = dict(zip(manifest["filestem"], manifest["image_path"]))
        self.staging = partial_dir(self.out_dir)
        self.work = self.staging / ".work"
        # the seed annotations' masks (``self.seed`` is the project's random seed)
        with stage_errors():
            self.seed_masks, self.seed_rejects = seed_shards(
                self.path(paths["seed_annotations"]), self.frames, STRUCTURES, set(self.readable),
                self.work / "seeds", self.params.shard_size, self.shape,
            )  # fmt: skip
        self.truth_path = self.path(paths["truth"]) / "contours.parquet" if paths.get("truth") else None
        counts = (len(self.readable), len(self.seed_masks), len(self.seed_rejects))
        self.log.info("propagate: %d images, %d seeds, %d seed(s) rejected", *counts)

    def load_image(self, stem: str) -> np.ndarray:
        """The normalised working image, float16 as the network and refiner see it."""
        return normalise_image(read_png(self.ingest_dir / self.image_paths[stem])).astype(np.float16)

    def _truth(self) -> ShardMasks | None:
        """The true masks of the readable images, rasterised into truth shards (None without truth)."""
        if self.truth_path is None or not self.truth_path.exists():
            return None
        with stage_errors():
            return truth_shards(
                self.truth_path, self.frames, STRUCTURES, set(self.readable),
                self.work / "truth", self.params.shard_size, self.shape,
            )  # fmt: skip

    def process(self, shard) -> Propagated:
        threads = torch.get_num_threads()
        torch.set_num_threads(self.params.threads)
        try:
            return self._propagate()
        finally:
            torch.set_num_threads(threads)

    def _propagate(self) -> Propagated:
        p = self.params
        started = time.perf_counter()
        truth = self._truth()
        with stage_errors("propagate.device: ", (ValueError,)):
            device = resolve_device(p.device)
        with stage_errors("propagate.refiner: ", (RuntimeError, ValueError, OSError)):
            refiner = make_refiner(p.refiner, p.prob_threshold, device=str(device), log=self.log)

        def progress(r, phase, done, total):
            if phase == "predict" and done == total or phase == "train" and (done % 10 == 0 or done == total):
                self.log.info("round %d %s: %d/%d", r, phase, done, total)

        with stage_errors("propagate: ", (ValueError, RuntimeError)):
            result = propagate(
                LazyImages(self.readable, self.load_image),
                self.seed_masks,
                STRUCTURES,
                p,
                refiner,
                self.work / "rounds",
                seed=self.seed,
                device=p.device,
                chunk_size=p.shard_size,
                cache_items=p.cache_items,
                evaluator=PropagationScores(truth, WRIST) if truth is not None else None,
                progress=progress,
                log=self.log,
            )
        seed_scores = score_against_truth(sorted(self.seed_masks), self.seed_masks, truth, WRIST) if truth else None
        description, seconds = getattr(refiner, "description", refiner.name), time.perf_counter() - started
        return Propagated(result, description, str(device), seed_scores, truth is not None, seconds)

    def finish(self, results: list[Propagated]) -> StageReport:
        (out,) = results
        result = out.result
        # output shards: rows copied from the seed shards and the last round's shards, in item order
        items = sorted([*self.seed_masks, *result.accepted])
        write_item_shards(self.staging, items, [self.seed_masks, result.masks], self.params.shard_size)
        excluded = sorted(result.rejected)
        write_row_shard(self.staging / "excluded-masks.parquet", [result.masks.rows(k) for k in excluded])
        shutil.rmtree(self.work)
        excluded_rows = [(k, f"excluded from pseudo-labels: {result.rejected[k]}") for k in excluded]
        rejects = reject_frame(
            excluded_rows + self.image_rejects + self.seed_rejects, self.name, ("filestem", "reason")
        )
        write_table(rejects, self.staging / "rejects.parquet", REJECTS)
        round_table = pd.DataFrame([round_row(rec, WRIST) for rec in result.records])
        round_table.to_parquet(self.staging / "rounds.parquet", index=False, compression="zstd")
        commit_dir(self.staging, self.out_dir)

        metrics = propagation_metrics(
            result,
            self.images_in,
            len(self.seed_masks),
            len(self.seed_rejects),
            out.seed_scores,
            out.has_truth,
            out.refiner,
            out.device,
        )
        metrics = json_ready(metrics)
        # numbers to propagation.json; refiner, its description and the device to propagation-info.json
        self.write_metrics(metrics, "propagation")
        self._write_plots(round_table, result.records)
        counts = (len(items), len(self.seed_masks), len(result.accepted), len(excluded))
        done = "propagate: %d images with masks (%d seeds + %d pseudo-labels), %d excluded; final Dice %s (%.1f s)"
        self.log.info(done, *counts, metrics["final_dice_mean"], out.seconds)
        return StageReport(metrics=metrics, rejects=rejects, tables={"rounds": round_table})

    def _write_plots(self, round_table: pd.DataFrame, records) -> None:
        """CSV files for ``dvc plots show`` in ``paths.plots``/propagation (default: ``plots/`` beside the metrics)."""
        paths = self.config.paths
        if "metrics" not in paths and "plots" not in paths:
            return
        folder = self.path(paths.get("plots") or (Path(paths["metrics"]).parent / "plots").as_posix()) / "propagation"
        write_text_atomic(folder / "rounds.csv", round_table.to_csv(index=False, lineterminator="\n"))
        p = self.params
        losses = loss_rows(records, lambda r: p.finetune_epochs if r > 1 and p.warm_start else p.epochs)
        frame = pd.DataFrame(losses, columns=LOSS_COLUMNS)
        write_text_atomic(folder / "train_loss.csv", frame.to_csv(index=False, lineterminator="\n"))
