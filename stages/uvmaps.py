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
``paths.subsets`` only, in the full template's uv frame, and ``landmark_uv.parquet``
still lists every landmark, so a model trained on the subset can locate the
full set (docs/uvmaps.md, "Landmark subsets").

Metrics: items, bytes per image, the exactness check (continuous map at the
used landmarks vs template uv), the representation floor (used landmarks
extracted back from the stored maps, px) and, for a subset, the floor of the
unused landmarks located by their uv.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from denseseg.anatomy import ANATOMIES, AnatomyName
from denseseg.io import jsrt as jio
from denseseg.io.atomic import commit_dir, partial_dir
from denseseg.io.ingested import working_images
from denseseg.io.mask_store import read_mask_shard, shard_index
from denseseg.io.png import ImageError
from denseseg.io.subsets import read_used_mask
from denseseg.io.tables import LANDMARKS, MANIFEST, REJECTS, SPLITS, read_table
from denseseg.shape.landmark_table import landmark_array
from denseseg.shape.template import build_template
from denseseg.uv import cache
from denseseg.uv.cache_writer import cache_summary, read_cache_image, write_numbered_shard
from denseseg.uv.extraction import ExtractionParams
from denseseg.uv.floor import FloorScorer
from denseseg.uv.maps import MODES, item_maps, landmark_uv
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class UVMapsParams(StageParams):
    anatomy: AnatomyName
    source: Literal["pipeline", "jsrt"]  # pipeline: paths.landmarks/masks/splits/ingest; jsrt: paths.jsrt
    landmarks: Literal["all", "fps"]  # fps: only the farthest-point subset of paths.subsets builds the maps
    mode: Literal[MODES]  # cartesian | polar
    extrapolate: bool  # fill mask pixels outside the landmarks' hull (nearest triangle's affine map)
    procrustes: bool
    uv_dtype: Literal[cache.UV_DTYPES]  # float32 keeps 1e-4 exactness; float16 halves the size
    image_max: int = Field(ge=1, le=65535)  # stored image value that reads as 1.0
    shard_size: int = Field(ge=1)
    train_split: str
    exactness_tol: float
    extraction: ExtractionParams

    @model_validator(mode="after")
    def _fps_is_cartesian(self):
        if self.landmarks == "fps" and self.mode != "cartesian":
            raise ValueError("landmarks fps needs mode cartesian (polar uv of unused landmarks is undefined)")
        return self


@dataclass(frozen=True)
class UVShard:
    """One shard's index rows (one per cached item), rejected rows and representation-floor scores."""

    index: list[dict]
    rejects: list[tuple[str, str, str]]
    floor: FloorScorer


class UVMapsStage(Stage[UVMapsParams, UVShard]):
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
        return working_images(ingest, read_table(ingest / "manifest.parquet", MANIFEST))

    def prepare(self) -> None:
        p = self.params
        self.anatomy = ANATOMIES[p.anatomy]
        landmarks_path, masks_dir, splits_path = self._inputs()
        with stage_errors():
            landmarks = read_table(landmarks_path, LANDMARKS)
            splits = read_table(splits_path, SPLITS)
            self.items, self.landmarks = landmark_array(landmarks, self.anatomy)
            self.images = self._image_sources()
        self.split_of = dict(zip(splits["filestem"], splits["split"]))
        unknown = sorted(set(self.split_of.values()) - set(cache.SPLIT_NAMES))
        if unknown:
            raise StageError(f"{splits_path}: split name(s) {', '.join(unknown)}; expected {cache.SPLIT_NAMES}")
        train_rows = [i for i, item in enumerate(self.items) if self.split_of.get(item) == p.train_split]
        if not train_rows:
            raise StageError(f"{splits_path}: no item of split {p.train_split!r} has landmarks")
        with stage_errors("uvmaps: ", (ValueError,)):
            self.template = build_template(self.landmarks[train_rows], self.anatomy, p.procrustes)
        if p.landmarks == "fps":
            with stage_errors():  # SubsetsError
                self.used = read_used_mask(self.path(self.config.paths["subsets"]), self.anatomy)
        else:
            self.used = np.ones(self.anatomy.n_landmarks, bool)
        self.uv_full = landmark_uv(self.template, p.mode)
        with stage_errors():
            self.mask_shard = shard_index(masks_dir)
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
        with stage_errors(f"uvmaps.{self.variant}.image_max: ", (cache.CacheError,)):
            image = read_cache_image(path, shape, self.params.image_max)
        return image, jio.mm_per_px(shape[1]) if mm is None else mm  # jsrt: mm per px scales with the working size

    def _item_rejects(self, item: str) -> str | None:
        missing = {"no masks for this item": self.mask_shard, "not in the splits table": self.split_of,
                   "no working image (not in the ingest manifest)": self.images}  # fmt: skip
        return next((reason for reason, found in missing.items() if item not in found), None)

    def process(self, shard):
        number, rows = shard
        by_mask_shard = defaultdict(list)
        rejects, items_rows, images, index = [], [], [], []
        p = self.params
        floor = FloorScorer(self.template, p.mode, p.extraction, p.uv_dtype)
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
        write_numbered_shard(self.staging, number, items_rows, images, index)
        return UVShard(index, rejects, floor)

    def finish(self, results: list[UVShard]) -> StageReport:
        index = [entry for r in results for entry in r.index]
        rejects = pd.DataFrame([row for r in results for row in r.rejects], columns=REJECTS.names)
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
        commit_dir(self.staging, self.out_dir)
        floor = results[0].floor.merge(r.floor for r in results[1:])
        metrics = {
            **cache_summary(self.out_dir, index),
            "rejected": len(rejects),
            "landmarks": self.params.landmarks,
            "landmarks_cached": int(self.used.sum()),
            "mode": self.params.mode,
            "uv_dtype": self.params.uv_dtype,
        }
        metrics.update(floor.summary(self.params.exactness_tol))
        self.write_metrics(metrics, f"uvmaps-{self.variant or self.anatomy.name}")  # words: uvmaps-<variant>-info.json
        return StageReport(metrics=metrics, rejects=rejects)
