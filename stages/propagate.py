"""Stage ``propagate``: seed annotations + ingested images -> 17 bone masks for every image.

Reads the ingest manifest and images and the seed annotations (8-bit masks at
the original resolution, mapped into the working frame), runs the label
propagation rounds (``denseseg.propagation``) and writes, atomically, into
``paths.masks``:

- ``shard-XXXX.parquet``: mask-store shards of the seeds (their manual masks,
  confidence 1) and of the accepted pseudo-labels (per-bone confidence);
- ``rejects.parquet`` (REJECTS): every ingested image without masks in the
  shards, with the reason (low confidence, missing bone), and seed rows that
  could not be used;
- ``excluded-masks.parquet``: the refined masks of the excluded images, for
  inspection only (not a shard; later stages do not read it);
- ``rounds.parquet``: the per-round record.

Metrics go to ``paths.metrics``/propagation.json (numbers; the refiner and the
device in propagation-info.json); on the phantom (``paths.truth`` present) each
round is scored against the true masks, per bone group. For ``dvc plots``:
``reports/plots/propagation/rounds.csv`` (a row per round: Dice and ASD of the
accepted and of all predicted images, per group too) and ``train_loss.csv``
(step, round, epoch, loss).

Streamed (memory flat in the number of images): ``prepare`` checks every
ingested image and writes the seeds' working-frame masks to mask-store shards
in the staging folder (``<masks>.partial/.work/``); the truth contours are
rasterised once, a row group at a time, into truth shards there too. Images
are read when a batch needs them, each round's predictions go to shards as
they are made, and ``finish`` assembles the output shards by copying rows.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import torch
from pydantic import Field
from skimage.draw import polygon2mask

from denseseg.anatomy import WRIST
from denseseg.evaluation.segmentation import score_masks
from denseseg.io.atomic import commit_dir, json_ready, partial_dir, write_text_atomic
from denseseg.io.png import ImageError, read_png
from denseseg.io.tables import MANIFEST, REJECTS, TRUTH_CONTOURS, SchemaError, check_schema, read_table, write_table
from denseseg.preprocessing.working_frame import WorkingFrame
from denseseg.propagation.network import pick_device
from denseseg.propagation.refiners import make_refiner
from denseseg.propagation.rounds import PropagationConfig, propagate
from denseseg.propagation.scoring import GroupScores
from denseseg.propagation.store import LazyImages, ShardMasks, ShardWriter, write_row_shard
from denseseg.propagation.trainer import normalise_image
from stages.base import Stage, StageError, StageParams, StageReport

STRUCTURES = list(WRIST.structures)


class PropagateParams(StageParams):
    rounds: int = Field(2, ge=1)
    epochs: int = Field(100, ge=1, description="epochs of the first round")
    finetune_epochs: int = Field(40, ge=0, description="epochs of later rounds (warm start)")
    warm_start: bool = True
    channels: list[int] = Field([8, 16, 32, 64, 128], min_length=2)
    num_res_units: int = Field(0, ge=0)
    batch_size: int = Field(4, ge=1)
    lr: float = Field(2e-2, gt=0)
    augment: bool = True
    confidence_threshold: float = Field(0.6, ge=0, le=1)
    prob_threshold: float = Field(0.5, gt=0, lt=1)
    expected_fraction: float = Field(1.0, ge=0, le=1, description="bones in this share of seeds must be predicted")
    refiner: Literal["classical", "sam"] = "classical"
    sam_checkpoint: str | None = None
    sam_model_type: str = "vit_b"
    random_walker: bool = True
    rw_beta: float = Field(130.0, gt=0)
    rw_high: float = Field(0.8, gt=0, lt=1)
    rw_low: float = Field(0.2, gt=0, lt=1)
    smooth_radius: int = Field(1, ge=0)
    device: str = "auto"
    threads: int = Field(1, ge=1, description="torch CPU threads")
    shard_size: int = Field(64, gt=0, description="images per mask shard (output, and prediction chunk)")
    cache_items: int = Field(64, ge=0, description="training pairs cached in memory (packed masks)")


def truth_masks(contours: pd.DataFrame, frame: WorkingFrame) -> np.ndarray:
    """(S, H, W) true masks of one image: its dense contours mapped to working pixels and filled.

    A contour may run outside a cropped field of view; what lies outside the
    original image (the letterbox padding) is not bone in the working image.
    """
    out = np.zeros((len(STRUCTURES), frame.height, frame.width), bool)
    footprint = frame.warp_mask(np.ones((frame.orig_height, frame.orig_width), bool))
    for name, part in contours.groupby("structure", sort=False):
        if name not in STRUCTURES:
            continue
        part = part.sort_values("point")
        xy = frame.to_working(part[["x", "y"]].to_numpy(np.float64))
        out[STRUCTURES.index(name)] = polygon2mask((frame.height, frame.width), xy[:, ::-1]) & footprint
    return out


LOSS_COLUMNS = ["step", "round", "epoch", "loss"]


def loss_rows(records, epochs_per_round) -> list[tuple[int, int, int, float]]:
    """(step, round, epoch, loss) for the training-loss plot; ``step`` counts epochs over all rounds.

    A round record with ``epoch_losses`` (the mean loss of every epoch) gives
    one row per epoch; one without gives its final ``train_loss`` at its last
    epoch (``epochs_per_round(round)``).
    """
    rows, step = [], 0
    for rec in records:
        per_epoch = list(getattr(rec, "epoch_losses", None) or [])
        if per_epoch:
            for epoch, loss in enumerate(per_epoch, 1):
                rows.append((step + epoch, rec.round, epoch, float(loss)))
            step += len(per_epoch)
        else:
            last = epochs_per_round(rec.round)
            rows.append((step + last, rec.round, last, float(rec.train_loss)))
            step += last
    return rows


class TruthScores:
    """The rounds' evaluator: each refined image against its true masks, summed per group (no masks kept)."""

    def __init__(self, truth: ShardMasks):
        self.truth = truth
        self.rounds: dict[int, tuple[GroupScores, GroupScores]] = {}

    def add(self, round: int, item: str, masks: np.ndarray, accepted: bool) -> None:
        all_, acc = self.rounds.setdefault(round, (GroupScores(WRIST), GroupScores(WRIST)))
        if item not in self.truth:
            return
        rows = score_masks(item, masks, self.truth[item], STRUCTURES)
        all_.add(rows)
        if accepted:
            acc.add(rows)

    def summary(self, round: int) -> dict:
        if not len(self.truth):
            return {}
        all_, acc = self.rounds.pop(round, (GroupScores(WRIST), GroupScores(WRIST)))
        return {"all": all_.summary(), "accepted": acc.summary()}


class PropagateStage(Stage[PropagateParams]):
    name = "propagate"
    Params = PropagateParams

    # ---- inputs -------------------------------------------------------------------------
    def prepare(self) -> None:
        paths = self.config.paths
        self.ingest_dir = self.path(paths["ingest"])
        self.seed_dir = self.path(paths["seed_annotations"])
        self.out_dir = self.path(paths["masks"])
        try:
            manifest = read_table(self.ingest_dir / "manifest.parquet", MANIFEST)
        except (FileNotFoundError, SchemaError) as err:
            raise StageError(str(err)) from None
        if manifest.empty:
            raise StageError(f"{self.ingest_dir / 'manifest.parquet'}: no ingested image")
        self.manifest = manifest.set_index("filestem", drop=False)
        self.rejects: list[tuple[str, str]] = []
        self.readable, self.shape = self._check_images()
        self.staging = partial_dir(self.out_dir)
        self.work = self.staging / ".work"
        self.seeds, self.seed_rejects = self._read_seeds()
        if not len(self.seeds):
            raise StageError(
                f"{self.seed_dir}: no usable seed annotation ({len(self.seed_rejects)} rejected: "
                f"{self.seed_rejects[0][1] if self.seed_rejects else 'none given'})"
            )
        self.truth_path = self.path(paths["truth"]) / "contours.parquet" if paths.get("truth") else None
        self.log.info(
            "propagate: %d images, %d seeds, %d seed(s) rejected",
            len(self.readable),
            len(self.seeds),
            len(self.seed_rejects),
        )

    def _check_images(self) -> tuple[list[str], tuple[int, int]]:
        """Every ingested image decodes and has the manifest's size (read once, not kept)."""
        readable, sizes = [], set()
        for row in self.manifest.itertuples(index=False):
            path = self.ingest_dir / row.image_path
            try:
                pixels = read_png(path)
            except ImageError as err:
                self.rejects.append((row.filestem, f"ingested image unreadable: {err}"))
                continue
            if pixels.shape != (row.height, row.width):
                self.rejects.append(
                    (row.filestem, f"{path}: size {pixels.shape} differs from the manifest's {(row.height, row.width)}")
                )
                continue
            sizes.add(pixels.shape)
            readable.append(row.filestem)
        if len(sizes) > 1:
            raise StageError(f"{self.ingest_dir}: images of several working sizes {sorted(sizes)}; re-run ingest")
        if not readable:
            raise StageError(f"{self.ingest_dir}: no readable ingested image")
        return readable, sizes.pop()

    def load_image(self, stem: str) -> np.ndarray:
        """The normalised working image, float16 as the network and refiner see it."""
        pixels = read_png(self.ingest_dir / self.manifest.loc[stem, "image_path"])
        return normalise_image(pixels).astype(np.float16)

    def _read_seeds(self) -> tuple[ShardMasks, list[tuple[str, str]]]:
        """Seed masks in the working frame, written to seed shards; a seed image with any bad row is not used."""
        csv = self.seed_dir / "annotations.csv"
        if not csv.exists():
            raise StageError(f"{csv}: seed annotations not found")
        try:
            table = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        except Exception as err:  # malformed CSV
            raise StageError(f"{csv}: cannot read ({type(err).__name__}: {err})".replace("\n", " ")) from None
        missing = {"filestem", "structure", "mask_path"} - set(table.columns)
        if missing:
            raise StageError(f"{csv}: missing column(s) {', '.join(sorted(missing))}; found {', '.join(table.columns)}")
        writer = ShardWriter(self.work / "seeds", STRUCTURES, self.params.shard_size, prefix="seeds")
        rejects = []
        root = self.seed_dir.resolve()
        readable = set(self.readable)
        for stem, rows in table.groupby("filestem", sort=True):
            if stem not in self.manifest.index:
                rejects.append(
                    (stem, "seed annotation: image not in the ingest manifest (not ingested or rejected by ingest)")
                )
                continue
            if stem not in readable:
                rejects.append((stem, "seed annotation: its ingested image is unreadable"))
                continue
            frame = WorkingFrame.from_row(self.manifest.loc[stem])
            masks = np.zeros((len(STRUCTURES), frame.height, frame.width), bool)
            problems = []
            for row in rows.itertuples(index=False):
                where = f"{row.structure} ({row.mask_path})"
                if row.structure not in STRUCTURES:
                    problems.append(f"unknown structure {row.structure!r}")
                    continue
                s = STRUCTURES.index(row.structure)
                if masks[s].any():
                    problems.append(f"{row.structure} annotated twice")
                    continue
                path = (self.seed_dir / row.mask_path).resolve()
                if not path.is_relative_to(root):
                    problems.append(f"{where}: mask path outside the seed folder")
                    continue
                try:
                    mask = read_png(path) > 0
                except ImageError as err:
                    problems.append(f"{where}: {err}")
                    continue
                if mask.shape != (frame.orig_height, frame.orig_width):
                    problems.append(
                        f"{where}: size {mask.shape} differs from the image's {(frame.orig_height, frame.orig_width)}"
                    )
                    continue
                if not mask.any():
                    problems.append(f"{where}: empty mask")
                    continue
                warped = frame.warp_mask(mask)
                if not warped.any():
                    problems.append(f"{where}: mask vanishes at working resolution")
                    continue
                masks[s] = warped
            if problems:
                rejects.append(
                    (stem, "seed annotation unusable, image propagated as unlabelled: " + "; ".join(problems))
                )
            else:
                writer.add(stem, masks, np.where(masks.reshape(len(STRUCTURES), -1).any(1), 1.0, np.nan))
        return ShardMasks(writer.close(), STRUCTURES, self.shape), rejects

    def _truth(self) -> ShardMasks | None:
        """The true masks of the readable images, rasterised a row group at a time into truth shards."""
        if self.truth_path is None or not self.truth_path.exists():
            return None
        readable = set(self.readable)
        writer = ShardWriter(self.work / "truth", STRUCTURES, self.params.shard_size, prefix="truth")
        done: set[str] = set()
        pending: list[pd.DataFrame] = []  # rows of the image that may continue in the next row group

        def emit(part: pd.DataFrame) -> None:
            stem = part["filestem"].iloc[0]
            if stem in done:
                raise StageError(
                    f"{self.truth_path}: rows of {stem} are not together (truth must be grouped by filestem)"
                )
            done.add(stem)
            if stem in readable:
                writer.add(stem, truth_masks(part, WorkingFrame.from_row(self.manifest.loc[stem])))

        try:
            source = pq.ParquetFile(self.truth_path)
            for g in range(source.num_row_groups):
                frame = check_schema(source.read_row_group(g), TRUTH_CONTOURS, str(self.truth_path)).to_pandas()
                if frame.empty:
                    continue
                if pending and frame["filestem"].iloc[0] != pending[0]["filestem"].iloc[0]:
                    emit(pd.concat(pending, ignore_index=True))
                    pending = []
                stems = frame["filestem"].to_numpy()
                starts = np.flatnonzero(np.r_[True, stems[1:] != stems[:-1]])
                bounds = np.r_[starts, len(stems)]
                for a, b in zip(bounds[:-1], bounds[1:]):
                    part = frame.iloc[a:b]
                    if b == len(stems):
                        pending.append(part)
                    else:
                        if pending:
                            part = pd.concat([*pending, part], ignore_index=True)
                            pending = []
                        emit(part)
            if pending:
                emit(pd.concat(pending, ignore_index=True))
        except SchemaError as err:
            raise StageError(str(err)) from None
        return ShardMasks(writer.close(), STRUCTURES, self.shape, cache_shards=8)

    # ---- work ---------------------------------------------------------------------------
    def process(self, shard) -> dict:
        threads = torch.get_num_threads()
        torch.set_num_threads(self.params.threads)
        try:
            return self._propagate()
        finally:
            torch.set_num_threads(threads)

    def _propagate(self) -> dict:
        p = self.params
        started = time.perf_counter()
        truth = self._truth()
        try:
            device = pick_device(p.device)
        except RuntimeError as err:
            raise StageError(f"propagate.device: {err}") from None
        try:
            refiner = make_refiner(
                p.refiner,
                p.sam_checkpoint,
                p.sam_model_type,
                device=str(device),
                log=self.log,
                threshold=p.prob_threshold,
                high=p.rw_high,
                low=p.rw_low,
                beta=p.rw_beta,
                smooth_radius=p.smooth_radius,
                use_random_walker=p.random_walker,
            )
        except (RuntimeError, ValueError, OSError) as err:
            raise StageError(f"propagate.refiner: {err}".replace("\n", " ")) from None
        config = PropagationConfig(
            rounds=p.rounds,
            epochs=p.epochs,
            finetune_epochs=p.finetune_epochs,
            warm_start=p.warm_start,
            channels=tuple(p.channels),
            num_res_units=p.num_res_units,
            batch_size=p.batch_size,
            lr=p.lr,
            augment=p.augment,
            confidence_threshold=p.confidence_threshold,
            prob_threshold=p.prob_threshold,
            expected_fraction=p.expected_fraction,
            chunk_size=p.shard_size,
            cache_items=p.cache_items,
            seed=self.seed,
            device=p.device,
        )

        def progress(r, phase, done, total):
            if phase == "predict" and done == total or phase == "train" and (done % 10 == 0 or done == total):
                self.log.info("round %d %s: %d/%d", r, phase, done, total)

        images = LazyImages(self.readable, self.load_image)
        evaluator = TruthScores(truth) if truth is not None else None
        try:
            result = propagate(
                images, self.seeds, STRUCTURES, config, refiner, self.work / "rounds", evaluator, progress, self.log
            )
        except (ValueError, RuntimeError) as err:
            raise StageError(f"propagate: {err}".replace("\n", " ")) from None
        seed_scores = None
        if truth:
            sums = GroupScores(WRIST)
            for k in sorted(self.seeds):
                if k in truth:
                    sums.add(score_masks(k, self.seeds[k], truth[k], STRUCTURES))
            seed_scores = sums.summary()
        return {
            "result": result,
            "refiner": getattr(refiner, "description", refiner.name),
            "device": str(device),
            "seed_scores": seed_scores,
            "has_truth": truth is not None,
            "seconds": time.perf_counter() - started,
        }

    # ---- outputs ------------------------------------------------------------------------
    def finish(self, results: list[dict]) -> StageReport:
        (out,) = results
        result = out["result"]
        staging = self.staging
        # output shards: rows copied from the seed shards and the last round's shards, in item order
        accepted = result.accepted
        items = sorted([*self.seeds, *accepted])
        size = self.params.shard_size
        for n, start in enumerate(range(0, len(items), size)):
            chunk = items[start : start + size]
            write_row_shard(
                staging / f"shard-{n:04d}.parquet",
                [self.seeds.rows(k) if k in self.seeds else result.masks.rows(k) for k in chunk],
            )
        excluded = sorted(result.rejected)
        write_row_shard(staging / "excluded-masks.parquet", [result.masks.rows(k) for k in excluded])
        shutil.rmtree(self.work)
        rejects = (
            [(k, f"excluded from pseudo-labels: {result.rejected[k]}") for k in excluded]
            + self.rejects
            + self.seed_rejects
        )
        reject_frame = pd.DataFrame([(k, self.name, r) for k, r in rejects], columns=REJECTS.names).sort_values(
            ["filestem", "reason"], kind="stable"
        )
        write_table(reject_frame, staging / "rejects.parquet", REJECTS)
        round_table = pd.DataFrame([self._round_row(rec) for rec in result.records])
        round_table.to_parquet(staging / "rounds.parquet", index=False, compression="zstd")
        commit_dir(staging, self.out_dir)

        last = result.records[-1]
        acc = last.scores.get("accepted", {}).get("all", {})
        all_ = last.scores.get("all", {}).get("all", {})
        metrics = {
            "refiner": result.refiner,
            "refiner_description": out["refiner"],
            "device": out["device"],
            "images_in": len(self.manifest),
            "seeds_used": len(self.seeds),
            "seeds_rejected": len(self.seed_rejects),
            "final_images_accepted": len(items),
            "final_pseudo_accepted": len(accepted),
            "final_images_excluded": len(excluded),
            "final_dice_mean": acc.get("dice_mean", float("nan")),
            "final_asd_mean_px": acc.get("asd_mean", float("nan")),
            "final_dice_mean_all_predicted": all_.get("dice_mean", float("nan")),
            "final_groups": last.scores.get("accepted", {}),
            "seed_groups": out["seed_scores"] or {},
            "scored_against_truth": out["has_truth"],
            "rounds": {str(rec.round): self._round_metrics(rec) for rec in result.records},
        }
        metrics = json_ready(metrics)
        # numbers to propagation.json; refiner, its description and the device to propagation-info.json
        self.write_metrics(metrics, "propagation")
        self._write_plots(round_table, result.records)
        self.log.info(
            "propagate: %d images with masks (%d seeds + %d pseudo-labels), %d excluded; final Dice %s (%.1f s)",
            len(items),
            len(self.seeds),
            len(accepted),
            len(excluded),
            metrics["final_dice_mean"],
            out["seconds"],
        )
        return StageReport(metrics=metrics, rejects=reject_frame, tables={"rounds": round_table})

    def plots_dir(self) -> Path:
        """``paths.plots``/propagation, by default ``plots/propagation`` beside the metrics folder."""
        paths = self.config.paths
        base = paths.get("plots") or (Path(paths["metrics"]).parent / "plots").as_posix()
        return self.path(base) / "propagation"

    def epochs_per_round(self, round: int) -> int:
        p = self.params
        return p.finetune_epochs if round > 1 and p.warm_start else p.epochs

    def _write_plots(self, round_table: pd.DataFrame, records) -> None:
        """CSV files for ``dvc plots show``: the scores per round and the training loss per epoch."""
        if "metrics" not in self.config.paths and "plots" not in self.config.paths:
            return
        folder = self.plots_dir()
        write_text_atomic(folder / "rounds.csv", round_table.to_csv(index=False, lineterminator="\n"))
        losses = pd.DataFrame(loss_rows(records, self.epochs_per_round), columns=LOSS_COLUMNS)
        write_text_atomic(folder / "train_loss.csv", losses.to_csv(index=False, lineterminator="\n"))

    @staticmethod
    def _round_metrics(rec) -> dict:
        # wall time stays in the log: outputs are the same bytes for the same params
        out = {k: v for k, v in rec.as_dict().items() if k not in ("scores", "seconds", "epoch_losses")}
        out["images_accepted"] = rec.n_accepted
        for which in ("accepted", "all"):
            groups = rec.scores.get(which, {})
            out[f"dice_mean_{which}"] = groups.get("all", {}).get("dice_mean", float("nan"))
            out[f"asd_mean_{which}_px"] = groups.get("all", {}).get("asd_mean", float("nan"))
        out["groups"] = {g: v for g, v in rec.scores.get("accepted", {}).items() if g != "all"}
        return out

    @classmethod
    def _round_row(cls, rec) -> dict:
        """A flat row for the table artifact and rounds.parquet."""
        m = cls._round_metrics(rec)
        row = {k: v for k, v in m.items() if k != "groups"}
        for group in sorted(WRIST.groups):
            scores = m["groups"].get(group, {})
            row[f"dice_{group}"] = scores.get("dice_mean", float("nan"))
            row[f"asd_{group}_px"] = scores.get("asd_mean", float("nan"))
        return row
