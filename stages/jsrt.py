"""Stage ``jsrt``: the JSRT chest data of Table 1 in the pipeline's formats.

With ``images`` set, reads the real ``.IMG`` files (downsampled 2048 -> 256);
otherwise renders the chest phantom from the real landmark shapes. Landmarks
come from the shared CSV, a folder of per-organ ``.npy`` (RL, LL, H, RCLA,
LCLA) or a folder of flat ``(332,)`` ``.npy`` files; when ``landmarks`` does not
exist (a fresh checkout), from synthetic stand-in shapes
(``denseseg.phantom.chest_shapes``, logged and named in the metrics). Writes ``paths.jsrt``:
``images/<name>.png`` (uint16, 12-bit values, bone bright), ``masks/`` (mask
store shards), ``landmarks.parquet`` (LANDMARKS, working pixels) and
``splits.parquet`` (SPLITS: of the first ``n_train`` sorted names, a seeded draw
of ``n_val`` is val and the others train; the rest test). Val exists because
training picks its checkpoint on it, never on test; the test names do not
depend on ``n_val``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field

from denseseg.anatomy import JSRT
from denseseg.io import jsrt as jio
from denseseg.io.atomic import commit_dir, partial_dir
from denseseg.io.mask_store import mask_rows, write_mask_shard
from denseseg.io.png import write_png
from denseseg.io.tables import LANDMARKS, REJECTS, SPLITS, write_table
from denseseg.phantom.chest import render_chest
from denseseg.phantom.chest_shapes import synthetic_chest_landmarks
from denseseg.shape.landmark_table import landmark_frame
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class JSRTParams(StageParams):
    landmarks: str = "data/external/jsrt-landmarks.csv"  # CSV, per-organ folder or flat .npy folder
    synthetic_cases: int = Field(246, ge=1, description="stand-in cases when the landmarks are absent")
    images: str | None = None  # folder of real <name>.IMG; null renders the chest phantom
    size: int = Field(256, ge=32)
    n_train: int = Field(160, ge=1)
    n_val: int = Field(ge=0, description="carved from the n_train names (seeded), must be < n_train")
    limit: int | None = None  # only the first N sorted cases (demo / tests)
    shard_size: int = Field(64, ge=1)


@dataclass(frozen=True)
class JSRTShard:
    """One shard's cases: (name, working landmarks) of the written ones, and the rejected rows."""

    kept: list[tuple[str, np.ndarray]]
    rejects: list[tuple[str, str, str]]


class JSRTStage(Stage[JSRTParams, JSRTShard]):
    name = "jsrt"
    Params = JSRTParams

    def prepare(self) -> None:
        if self.params.n_val >= self.params.n_train:
            raise StageError(
                f"jsrt.n_val ({self.params.n_val}) must be smaller than jsrt.n_train ({self.params.n_train}): "
                "validation is carved out of the training names"
            )
        source = self.path(self.params.landmarks)
        if source.exists():
            with stage_errors(errors=(jio.JSRTFormatError,)):
                cases = jio.read_all_landmarks(source)
            self.source = str(self.params.landmarks)
        elif self.params.images is not None:
            raise StageError(f"{source}: JSRT landmarks not found; real images (jsrt.images) need their landmarks")
        else:
            # a fresh checkout has no JSRT landmarks: run the chain on stand-in shapes, and say so
            self.log.warning(
                "jsrt: no landmarks at %s; using %d synthetic stand-in chests (not anatomy; "
                "see data/external/README.md)",
                source,
                self.params.synthetic_cases,
            )
            cases = synthetic_chest_landmarks(self.params.synthetic_cases, self.seed)
            self.source = "synthetic stand-ins (denseseg.phantom.chest_shapes)"
        if not cases:
            raise StageError(f"{self.params.landmarks}: no JSRT landmarks found")
        names = sorted(cases)[: self.params.limit]
        self.cases = {n: cases[n] for n in names}
        self.out_dir = self.path(self.config.paths["jsrt"])
        self.staging = partial_dir(self.out_dir)
        (self.staging / "images").mkdir()
        (self.staging / "masks").mkdir()
        size = self.params.shard_size
        self._shards = [(i // size, names[i : i + size]) for i in range(0, len(names), size)]

    def shards(self):
        return self._shards

    def _image(self, name: str, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.params.images is None:
            return render_chest(landmarks, self.seed, name, self.params.size)
        raw = jio.read_img(self.path(self.params.images) / f"{name}.IMG", display=True)
        image = np.rint(jio.downsample(raw, self.params.size)).astype(np.uint16)
        return image, jio.polygon_masks(landmarks, self.params.size)

    def process(self, shard):
        number, names = shard
        rows, rejects, kept = [], [], []
        for name in names:
            landmarks = jio.to_working(self.cases[name], size=self.params.size)
            try:
                image, masks = self._image(name, landmarks)
            except jio.JSRTFormatError as err:
                rejects.append((name, self.name, str(err)))
                continue
            write_png(self.staging / "images" / f"{name}.png", image)
            rows.extend(mask_rows(name, masks, JSRT.structures))
            kept.append((name, landmarks))
        write_mask_shard(self.staging / "masks" / f"shard-{number:04d}.parquet", rows)
        return JSRTShard(kept, rejects)

    def finish(self, results: list[JSRTShard]) -> StageReport:
        kept = [k for r in results for k in r.kept]
        rejects = pd.DataFrame([row for r in results for row in r.rejects], columns=REJECTS.names)
        if not kept:
            raise StageError(f"jsrt: no usable case ({len(rejects)} rejected)")
        names = [n for n, _ in kept]
        frame = landmark_frame(names, np.stack([lm for _, lm in kept]), JSRT)
        write_table(frame, self.staging / "landmarks.parquet", LANDMARKS)
        ordered = sorted(names)
        with stage_errors("jsrt: ", (ValueError,)):
            split = jio.split_names(len(ordered), self.params.n_train, self.params.n_val, self.seed)
        write_table(
            pd.DataFrame({"filestem": ordered, "patient_id": ordered, "split": split}),
            self.staging / "splits.parquet",
            SPLITS,
        )
        commit_dir(self.staging, self.out_dir)
        metrics = {
            "cases": len(kept),
            "rejected": len(rejects),
            "train": split.count("train"),
            "val": split.count("val"),
            "test": split.count("test"),
            "source": "phantom" if self.params.images is None else "real",
            "landmarks": self.source,
            "mm_per_px": jio.MM_PER_PX_WORK * jio.WORK_SIZE / self.params.size,
        }
        self.write_metrics(metrics)  # the source and the landmarks file (words) go to jsrt-info.json
        return StageReport(metrics=metrics, rejects=rejects)
