"""Stage ``uvmaps`` (foreach: ``uvmaps@wrist``, ``uvmaps@wrist178``, ``uvmaps@jsrt``): template + Parquet uv cache.

Reads landmarks, masks (mask store shards), the split and the working-resolution
images: the wrist variants from the pipeline's ``paths.landmarks`` /
``paths.masks`` / ``paths.splits`` and the ingest folder (``manifest.parquet``
and its images), the jsrt variant from the ``jsrt`` stage's folder. Builds the
train template (always from the full landmark set), then per image and
structure the uv map crop, and writes ``paths.uvmaps/<variant>/`` atomically:
``template.json`` and the uv cache (``denseseg/uv/cache.py``: ``cache.json``,
``index.parquet``, ``landmark_uv.parquet``, ``shard-XXXX.parquet``,
``images-XXXX.parquet``), so that training reads everything from one folder.

``landmarks: fps`` builds the maps from the farthest-point subset of
``paths.subsets`` only (exact at those landmarks, piecewise-affine between
them, the nearest hull triangle's affine map outside their hull). The uv frame
stays the full template's: each structure's uv is normalised by the bounding box
of ALL its template landmarks (a subset's box is smaller, so a subset template
would give other uv values). Hence the used landmarks keep the values they have
in the full variant, and every other landmark's template uv is where the subset
map sends its true position whenever the shape is an affine image of the
template (exactly), close to it otherwise: ``landmark_uv.parquet`` lists all of
them, so a model trained on the subset can still locate the full set.

Metrics: items, bytes per image, the exactness check (continuous map at the
used landmarks vs template uv), the representation floor (used landmarks
extracted back from the stored maps, px) and, for a subset, the floor of the
unused landmarks located by their uv.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import Field

from denseseg.anatomy import ANATOMIES
from denseseg.io import jsrt as jio
from denseseg.io.atomic import commit_dir, partial_dir
from denseseg.io.mask_store import read_mask_shard
from denseseg.io.png import ImageError, read_png
from denseseg.io.subsets import SubsetsError, read_used_mask
from denseseg.io.tables import LANDMARKS, MANIFEST, REJECTS, SPLITS, read_table
from denseseg.shape.landmark_table import landmark_array
from denseseg.shape.template import build_template
from denseseg.uv import cache
from denseseg.uv.extraction import ExtractionParams
from denseseg.uv.floor import FloorScorer
from denseseg.uv.maps import MODES, item_maps, landmark_uv
from stages.base import Stage, StageError, StageParams, StageReport


class UVMapsParams(StageParams):
    anatomy: str
    source: Literal["pipeline", "jsrt"]  # pipeline: paths.landmarks/masks/splits/ingest; jsrt: paths.jsrt
    landmarks: Literal["all", "fps"]  # fps: only the farthest-point subset of paths.subsets builds the maps
    mode: str  # cartesian | polar
    extrapolate: bool  # fill mask pixels outside the landmarks' hull (nearest triangle's affine map)
    procrustes: bool
    uv_dtype: str  # float32 keeps 1e-4 exactness; float16 halves the size
    image_max: int = Field(ge=1, le=65535)  # stored image value that reads as 1.0
    shard_size: int = Field(ge=1)
    train_split: str
    exactness_tol: float
    extraction: dict


class UVMapsStage(Stage[UVMapsParams]):
    name = "uvmaps"
    Params = UVMapsParams

    def _inputs(self) -> tuple[Path, Path, Path]:
        paths = self.config.paths
        if self.params.source == "pipeline":
            return self.path(paths["landmarks"]), self.path(paths["masks"]), self.path(paths["splits"])
        root = self.path(paths["jsrt"])
        return root / "landmarks.parquet", root / "masks", root / "splits.parquet"

    def _image_sources(self) -> dict[str, tuple[Path, float | None]]:
        """{item: (working image PNG, mm per working px or None = from the image width (jsrt))}."""
        if self.params.source == "jsrt":
            images = self.path(self.config.paths["jsrt"]) / "images"
            return {item: (images / f"{item}.png", None) for item in self.items}
        ingest = self.path(self.config.paths["ingest"])
        manifest = read_table(ingest / "manifest.parquet", MANIFEST)
        # the working frame scales isotropically by ``scale`` working px per original px
        mm = manifest["pixel_spacing_mm"].to_numpy(np.float64) / manifest["scale"].to_numpy(np.float64)
        return {
            stem: (ingest / rel, float(m) if np.isfinite(m) and m > 0 else float("nan"))
            for stem, rel, m in zip(manifest["filestem"], manifest["image_path"], mm)
        }

    def prepare(self) -> None:
        p = self.params
        where = f"uvmaps.{self.variant}"
        if p.anatomy not in ANATOMIES:
            raise StageError(f"{where}.anatomy: unknown anatomy {p.anatomy!r}")
        if p.mode not in MODES or p.uv_dtype not in cache.UV_DTYPES:
            raise StageError(f"{where}: mode {p.mode!r} / uv_dtype {p.uv_dtype!r} not supported")
        if p.landmarks == "fps" and p.mode != "cartesian":
            raise StageError(f"{where}: landmarks fps needs mode cartesian (polar uv of unused landmarks is undefined)")
        try:
            self.extraction = ExtractionParams(**p.extraction)
        except (TypeError, ValueError) as err:
            raise StageError(f"{where}.extraction: {err}") from None
        self.anatomy = ANATOMIES[p.anatomy]
        landmarks_path, masks_dir, splits_path = self._inputs()
        try:
            landmarks = read_table(landmarks_path, LANDMARKS)
            splits = read_table(splits_path, SPLITS)
            self.items, self.landmarks = landmark_array(landmarks, self.anatomy)
            self.images = self._image_sources()
        except (FileNotFoundError, ValueError) as err:
            raise StageError(str(err).replace("\n", " ")) from None
        self.split_of = dict(zip(splits["filestem"], splits["split"]))
        unknown = sorted(set(self.split_of.values()) - set(cache.SPLIT_NAMES))
        if unknown:
            raise StageError(f"{splits_path}: split name(s) {', '.join(unknown)}; expected {cache.SPLIT_NAMES}")
        train_rows = [i for i, item in enumerate(self.items) if self.split_of.get(item) == p.train_split]
        if not train_rows:
            raise StageError(f"{splits_path}: no item of split {p.train_split!r} has landmarks")
        try:
            self.template = build_template(self.landmarks[train_rows], self.anatomy, p.procrustes)
        except ValueError as err:
            raise StageError(f"uvmaps: {err}") from None
        if p.landmarks == "fps":
            try:
                self.used = read_used_mask(self.path(self.config.paths["subsets"]), self.anatomy)
            except SubsetsError as err:
                raise StageError(str(err)) from None
        else:
            self.used = np.ones(self.anatomy.n_landmarks, bool)
        self.uv_full = landmark_uv(self.template, p.mode)
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

    def _image(self, item: str, shape: tuple[int, int]) -> tuple[np.ndarray, float]:
        """(uint16 image, mm per px); ImageError for a missing / unreadable / mis-sized image."""
        path, mm = self.images[item]
        pixels = read_png(path)
        if pixels.shape != shape:
            raise ImageError(f"{path}: image of {pixels.shape[0]}x{pixels.shape[1]} px, masks {shape[0]}x{shape[1]}")
        if mm is None:  # jsrt: square working images, mm per px scales with the working size
            mm = jio.MM_PER_PX_WORK * jio.WORK_SIZE / pixels.shape[1]
        try:
            return cache.image_pixels(pixels, self.params.image_max, str(path)), mm
        except cache.CacheError as err:
            raise StageError(f"uvmaps.{self.variant}.image_max: {err}") from None

    def _item_rejects(self, item: str) -> str | None:
        if item not in self.mask_shard:
            return "no masks for this item"
        if item not in self.split_of:
            return "not in the splits table"
        if item not in self.images:
            return "no working image (not in the ingest manifest)"
        return None

    def process(self, shard):
        number, rows = shard
        by_mask_shard = defaultdict(list)
        rejects, items_rows, images, index = [], [], [], []
        p = self.params
        floor = FloorScorer(self.template, p.mode, self.extraction, p.uv_dtype)
        for r in rows:
            reason = self._item_rejects(self.items[r])
            if reason:
                rejects.append((self.items[r], self.name, reason))
            else:
                by_mask_shard[self.mask_shard[self.items[r]]].append(r)
        for mask_path, group in sorted(by_mask_shard.items()):
            masks = read_mask_shard(mask_path, self.anatomy.structures, [self.items[r] for r in group])
            for r in group:
                item = self.items[r]
                _, height, width = masks[item].shape
                try:
                    image, mm_per_px = self._image(item, (height, width))
                except ImageError as err:
                    rejects.append((item, self.name, str(err)))
                    continue
                maps = item_maps(
                    item, masks[item], self.landmarks[r], self.template, mode=p.mode, extrapolate=p.extrapolate,
                    used=self.used, uv_dtype=p.uv_dtype, floor=floor,
                )  # fmt: skip
                rejects += [(item, self.name, problem) for problem in maps.problems]
                if not maps.rows:
                    continue
                items_rows.append(maps.rows)
                images.append((item, image))
                split = self.split_of[item]
                index.append(dict(item=item, split=split, mm_per_px=mm_per_px, height=height, width=width,
                                  n_structures=maps.n_structures))  # fmt: skip
        name, image_name = f"shard-{number:04d}.parquet", f"images-{number:04d}.parquet"
        if items_rows:
            groups = cache.write_shard(self.staging / name, items_rows)
            image_groups = cache.write_images(self.staging / image_name, images)
            for entry, group, image_group in zip(index, groups, image_groups):
                entry.update(shard=name, row_group=group, image_file=image_name, image_row_group=image_group)
        else:
            (self.staging / name).unlink(missing_ok=True)
            (self.staging / image_name).unlink(missing_ok=True)
        return index, rejects, floor

    def finish(self, results) -> StageReport:
        index = [e for res in results for e in res[0]]
        rejects = pd.DataFrame([r for res in results for r in res[1]], columns=REJECTS.names)
        if not index:
            raise StageError(f"uvmaps@{self.variant}: no item produced a uv map ({len(rejects)} rejected)")
        cache.write_meta(
            self.staging,
            anatomy=self.anatomy.name,
            mode=self.params.mode,
            uv_dtype=self.params.uv_dtype,
            index_rows=index,
            landmark_uv=cache.landmark_uv_frame(self.anatomy, self.uv_full, self.used),
            landmarks=self.params.landmarks,
            image_max=self.params.image_max,
        )
        shard_bytes = sum(p.stat().st_size for p in self.staging.glob("shard-*.parquet"))
        image_bytes = sum(p.stat().st_size for p in self.staging.glob("images-*.parquet"))
        commit_dir(self.staging, self.out_dir)
        floor = results[0][2].merge(res[2] for res in results[1:])
        mm = np.array([e["mm_per_px"] for e in index], np.float64)
        metrics = {
            "items": len(index),
            **{f"{s}_items": sum(e["split"] == s for e in index) for s in cache.SPLIT_NAMES},
            "structures_cached": int(sum(e["n_structures"] for e in index)),
            "rejected": len(rejects),
            "landmarks": self.params.landmarks,
            "landmarks_cached": int(self.used.sum()),
            "cache_bytes": shard_bytes,
            "cache_bytes_per_image": round(shard_bytes / len(index), 1),
            "image_bytes_per_image": round(image_bytes / len(index), 1),
            "mm_per_px_median": float(np.nanmedian(mm)) if np.isfinite(mm).any() else float("nan"),
            "mm_per_px_missing": int((~np.isfinite(mm)).sum()),
            "mode": self.params.mode,
            "uv_dtype": self.params.uv_dtype,
        }
        metrics.update(floor.summary(self.params.exactness_tol))
        self.write_metrics(metrics, f"uvmaps-{self.variant or self.anatomy.name}")  # words: uvmaps-<variant>-info.json
        return StageReport(metrics=metrics, rejects=rejects)
