"""Stage ``uvmaps`` (foreach: ``uvmaps@wrist``, ``uvmaps@jsrt``): template + Parquet uv cache.

Reads landmarks, masks (mask store shards) and the split: the wrist variant
from the pipeline's ``paths.landmarks`` / ``paths.masks`` / ``paths.splits``,
the jsrt variant from the ``jsrt`` stage's folder. Builds the train template,
then per image and structure the uv map crop, and writes
``paths.uvmaps/<variant>/`` atomically: ``template.json``, ``cache.json``,
``index.parquet`` and ``shard-XXXX.parquet``. Metrics: items, bytes per image,
the exactness check (continuous map at the landmarks vs template uv) and the
representation floor (landmarks extracted back from the stored maps, px).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import Field

from denseseg.anatomy import ANATOMIES
from denseseg.io.atomic import commit_dir, partial_dir, write_json_atomic
from denseseg.io.mask_store import read_mask_shard
from denseseg.io.tables import LANDMARKS, REJECTS, SPLITS, read_table
from denseseg.shape.landmark_table import landmark_array, split_structures
from denseseg.shape.template import build_template
from denseseg.shape.umeyama import DegenerateShapeError
from denseseg.uv import cache
from denseseg.uv.cartesian import CartesianWarp
from denseseg.uv.extraction import ExtractionParams, locate
from denseseg.uv.maps import MODES, item_crops
from denseseg.uv.polar import PolarWarp, polar_landmark_uv
from stages.base import Stage, StageError, StageParams, StageReport


class UVMapsParams(StageParams):
    anatomy: str = "wrist"
    source: str = "pipeline"  # pipeline: paths.landmarks/masks/splits; jsrt: the jsrt stage's folder
    mode: str = "cartesian"  # cartesian | polar
    extrapolate: bool = True  # fill mask pixels outside the landmarks' hull (nearest triangle's affine map)
    procrustes: bool = False
    uv_dtype: str = "float32"  # float32 keeps 1e-4 exactness; float16 halves the size
    shard_size: int = Field(64, ge=1)
    train_split: str = "train"
    exactness_tol: float = 1e-4
    extraction: dict = {"method": "affine", "k": 5, "k_affine": 8, "temperature": 1.0}


class UVMapsStage(Stage[UVMapsParams]):
    name = "uvmaps"
    Params = UVMapsParams

    def _inputs(self):
        paths = self.config.paths
        if self.params.source == "pipeline":
            return self.path(paths["landmarks"]), self.path(paths["masks"]), self.path(paths["splits"])
        if self.params.source == "jsrt":
            root = self.path(paths["jsrt"])
            return root / "landmarks.parquet", root / "masks", root / "splits.parquet"
        raise StageError(f"uvmaps.{self.variant}.source: {self.params.source!r} is not pipeline or jsrt")

    def prepare(self) -> None:
        p = self.params
        if p.anatomy not in ANATOMIES:
            raise StageError(f"uvmaps.{self.variant}.anatomy: unknown anatomy {p.anatomy!r}")
        if p.mode not in MODES or p.uv_dtype not in cache.UV_DTYPES:
            raise StageError(f"uvmaps.{self.variant}: mode {p.mode!r} / uv_dtype {p.uv_dtype!r} not supported")
        try:
            self.extraction = ExtractionParams(**p.extraction)
        except (TypeError, ValueError) as err:
            raise StageError(f"uvmaps.{self.variant}.extraction: {err}") from None
        self.anatomy = ANATOMIES[p.anatomy]
        landmarks_path, masks_dir, splits_path = self._inputs()
        try:
            landmarks = read_table(landmarks_path, LANDMARKS)
            splits = read_table(splits_path, SPLITS)
            self.items, self.landmarks = landmark_array(landmarks, self.anatomy)
        except (FileNotFoundError, ValueError) as err:
            raise StageError(str(err).replace("\n", " ")) from None
        train = set(splits.loc[splits["split"] == p.train_split, "filestem"])
        train_rows = [i for i, item in enumerate(self.items) if item in train]
        if not train_rows:
            raise StageError(f"{splits_path}: no item of split {p.train_split!r} has landmarks")
        try:
            self.template = build_template(self.landmarks[train_rows], self.anatomy, p.procrustes)
        except ValueError as err:
            raise StageError(f"uvmaps: {err}") from None
        shards = sorted(masks_dir.glob("shard-*.parquet"))
        if not shards:
            raise StageError(f"{masks_dir}: no mask shards (did the stage that writes masks run?)")
        self.mask_shard = {}
        for shard in shards:
            for item in pq.read_table(shard, columns=["item"]).column("item").to_pylist():
                self.mask_shard.setdefault(item, shard)
        self.out_dir = self.path(self.config.paths["uvmaps"]) / (self.variant or p.anatomy)
        self.staging = partial_dir(self.out_dir)
        self.template.save(self.staging / "template.json")
        rows = list(range(len(self.items)))
        self._shards = [(i // p.shard_size, rows[i : i + p.shard_size]) for i in range(0, len(rows), p.shard_size)]

    def shards(self):
        return self._shards

    def _target_uv(self, structure: str) -> np.ndarray:
        if self.params.mode == "cartesian":
            return self.template.landmark_uv(structure)
        return polar_landmark_uv(self.template.points[structure])

    def _uv_scale(self, structure: str) -> np.ndarray | None:
        """Isotropic neighbour search for cartesian maps (polar uv is already square-normalised)."""
        return self.template.uv_scale(structure) if self.params.mode == "cartesian" else None

    def _exactness(self, structure: str, pts: np.ndarray) -> float:
        try:
            if self.params.mode == "cartesian":
                got = CartesianWarp(pts, self.template.points[structure]).uv(pts, self.template, structure)
            else:
                got = PolarWarp(pts, self.template.points[structure]).uv(pts)
        except DegenerateShapeError:
            return float("nan")
        return float(np.abs(got - self._target_uv(structure)).max())

    def process(self, shard):
        number, rows = shard
        by_mask_shard = defaultdict(list)
        rejects, items_rows, index, errors, exact = [], [], [], [], []
        for r in rows:
            item = self.items[r]
            if item not in self.mask_shard:
                rejects.append((item, self.name, "no masks for this item"))
            else:
                by_mask_shard[self.mask_shard[item]].append(r)
        dtype = np.dtype(self.params.uv_dtype)
        for mask_path, group in sorted(by_mask_shard.items()):
            masks = read_mask_shard(mask_path, self.anatomy.structures, [self.items[r] for r in group])
            for r in group:
                item, flat = self.items[r], self.landmarks[r]
                crops, skipped = item_crops(masks[item], flat, self.template, self.params.mode, self.params.extrapolate)
                for s, reason in skipped.items():
                    if reason != "no landmarks" or masks[item][self.anatomy.index(s)].any():
                        rejects.append((item, self.name, f"{s}: {reason}"))
                if not crops:
                    continue
                per = split_structures(flat, self.anatomy)
                for s, crop in crops.items():
                    exact.append(self._exactness(s, per[s]))
                    stored = crop.uv.astype(dtype).astype(np.float32)
                    found = locate(
                        stored,
                        self._target_uv(s),
                        crop.mask,
                        self.extraction,
                        (crop.top, crop.left),
                        uv_scale=self._uv_scale(s),
                    )
                    errors.append(np.linalg.norm(found - per[s], axis=1))
                _, height, width = masks[item].shape
                items_rows.append(
                    cache.item_rows(item, height, width, crops, per, self.anatomy.structures, self.params.uv_dtype)
                )
                index.append({"item": item, "height": height, "width": width, "n_structures": len(crops)})
        name = f"shard-{number:04d}.parquet"
        groups = cache.write_shard(self.staging / name, items_rows) if items_rows else []
        for entry, group in zip(index, groups):
            entry.update(shard=name, row_group=group)
        if not items_rows:
            (self.staging / name).unlink(missing_ok=True)
        return index, rejects, errors, exact

    def finish(self, results) -> StageReport:
        index = [e for res in results for e in res[0]]
        rejects = pd.DataFrame([r for res in results for r in res[1]], columns=REJECTS.names)
        if not index:
            raise StageError(f"uvmaps@{self.variant}: no item produced a uv map ({len(rejects)} rejected)")
        cache.write_meta(self.staging, self.anatomy.name, self.params.mode, self.params.uv_dtype, index)
        errors = np.concatenate([e for res in results for e in res[2]])
        exact = np.asarray([x for res in results for x in res[3]])
        shard_bytes = sum(p.stat().st_size for p in self.staging.glob("shard-*.parquet"))
        commit_dir(self.staging, self.out_dir)
        exact_max = float(np.nanmax(exact)) if np.isfinite(exact).any() else float("nan")
        metrics = {
            "items": len(index),
            "structures_cached": int(sum(e["n_structures"] for e in index)),
            "rejected": len(rejects),
            "cache_bytes": shard_bytes,
            "cache_bytes_per_image": round(shard_bytes / len(index), 1),
            "exactness_max_uv_error": exact_max,
            "exactness_ok": bool(exact_max <= self.params.exactness_tol),
            "floor_median_px": float(np.nanmedian(errors)),
            "floor_p95_px": float(np.nanpercentile(errors, 95)),
            "floor_missing": int((~np.isfinite(errors)).sum()),
            "mode": self.params.mode,
            "uv_dtype": self.params.uv_dtype,
        }
        write_json_atomic(
            self.path(self.config.paths["metrics"]) / f"uvmaps-{self.variant or self.anatomy.name}.json", metrics
        )
        return StageReport(metrics=metrics, rejects=rejects)
