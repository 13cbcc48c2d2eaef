"""Phantom truth in the working frame: true landmarks and bone masks per PA image.

Why: benchmarks and evaluations compare against the phantom's exact truth, which
is stored as dense contours in ORIGINAL pixels of the stored image (right hands
mirrored, like their images). This module maps it the way ingest maps images
(``WorkingFrame``: mirror right hands back, isotropic scale, letterbox), takes the
true landmarks (every ``DENSE_PER_LANDMARK``-th dense point from point 0) and
rasterises each bone's dense polygon in the working frame, clipped to the
footprint of the original image (the letterbox padding holds no image).

Strictly, a bone is evaluated only when it is present (ossified) and all its
landmarks lie inside the footprint; otherwise its ``landmarks`` are NaN, its
``masks`` channel is empty and its status says why (``absent``, or ``outside``:
a cropped view or a shaft running out of the field, which on the phantom is
the case for the radius, ulna and metacarpals in nearly every image). For the
bones that leave the image, ``landmarks_all`` still holds every true landmark
(the truth is known outside the field), ``inside`` flags those on the image and
``masks_all`` the polygon clipped to the footprint, so a caller can build the
map from the whole shape and evaluate only the landmarks on the image.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from denseseg.anatomy import WRIST, Anatomy
from denseseg.io.tables import TRUTH_CONTOURS, TRUTH_IMAGES, read_table
from denseseg.phantom.atlas import DENSE_PER_LANDMARK
from denseseg.phantom.raster import polygon_mask
from denseseg.preprocessing.working_frame import WorkingFrame

OK, ABSENT, OUTSIDE = "ok", "absent", "outside"


@dataclass
class TruthItem:
    filestem: str
    frame: WorkingFrame
    landmarks: np.ndarray  # (N, 2) float64 working (x, y); NaN for bones not evaluated
    masks: np.ndarray  # (S, H, W) bool in anatomy order; empty for bones not evaluated
    status: dict[str, str] = field(default_factory=dict)  # bone -> ok | absent | outside
    info: dict = field(default_factory=dict)  # age, bone_age, sex, laterality, cast, metal
    landmarks_all: np.ndarray | None = None  # (N, 2) every present bone's landmarks, also off the image
    inside: np.ndarray | None = None  # (N,) bool: landmark present and on the image's footprint
    masks_all: np.ndarray | None = None  # (S, H, W) every present bone's polygon clipped to the footprint

    def count(self, status: str) -> int:
        return sum(1 for v in self.status.values() if v == status)


def footprint(frame: WorkingFrame) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the original image's extent in working coordinates (pixel edges)."""
    x0 = frame.pad_left - 0.5
    y0 = frame.pad_top - 0.5
    return x0, x0 + frame.orig_width * frame.scale, y0, y0 + frame.orig_height * frame.scale


def footprint_mask(frame: WorkingFrame) -> np.ndarray:
    """(H, W) bool: working pixels whose centre lies on the original image."""
    x0, x1, y0, y1 = footprint(frame)
    cols = np.arange(frame.width)
    rows = np.arange(frame.height)
    return ((rows >= y0) & (rows <= y1))[:, None] & ((cols >= x0) & (cols <= x1))[None, :]


def working_truth(
    contours: Mapping[str, np.ndarray],
    frame: WorkingFrame,
    anatomy: Anatomy = WRIST,
    filestem: str = "",
    info: dict | None = None,
) -> TruthItem:
    """Truth of one image from its dense contours (bone -> (n, 2) original (x, y) of the stored file)."""
    offsets = anatomy.landmark_offsets()
    landmarks = np.full((anatomy.n_landmarks, 2), np.nan)
    landmarks_all = np.full((anatomy.n_landmarks, 2), np.nan)
    inside = np.zeros(anatomy.n_landmarks, bool)
    masks = np.zeros((len(anatomy.structures), frame.height, frame.width), bool)
    masks_all = np.zeros_like(masks)
    inside_image = footprint_mask(frame)
    x0, x1, y0, y1 = footprint(frame)
    status = {}
    for s_idx, bone in enumerate(anatomy.structures):
        dense = contours.get(bone)
        if dense is None or len(dense) == 0:
            status[bone] = ABSENT
            continue
        n = anatomy.landmark_counts[bone]
        if len(dense) != n * DENSE_PER_LANDMARK:
            raise ValueError(f"{filestem}: {bone} has {len(dense)} dense points, expected {n * DENSE_PER_LANDMARK}")
        pts = frame.to_working(np.asarray(dense, np.float64))
        lm = pts[::DENSE_PER_LANDMARK]
        sl = slice(offsets[bone], offsets[bone] + n)
        on_image = (lm[:, 0] >= x0) & (lm[:, 0] <= x1) & (lm[:, 1] >= y0) & (lm[:, 1] <= y1)
        landmarks_all[sl], inside[sl] = lm, on_image
        masks_all[s_idx] = polygon_mask(pts, (frame.height, frame.width)) & inside_image
        if not on_image.all():
            status[bone] = OUTSIDE
            continue
        masks[s_idx] = masks_all[s_idx]
        landmarks[sl] = lm
        status[bone] = OK
    return TruthItem(
        filestem,
        frame,
        landmarks,
        masks,
        status=status,
        info=dict(info or {}),
        landmarks_all=landmarks_all,
        inside=inside,
        masks_all=masks_all,
    )


def read_truth_items(
    truth_dir: str | Path, height: int = 384, width: int = 224, anatomy: Anatomy = WRIST, filestems=None
) -> Iterator[TruthItem]:
    """Yield the working-frame truth of every PA image in ``truth_dir`` (images.parquet order)."""
    truth_dir = Path(truth_dir)
    images = read_table(truth_dir / "images.parquet", TRUTH_IMAGES)
    if filestems is not None:
        wanted = set(filestems)
        images = images[images.filestem.isin(wanted)]
    contours = read_table(truth_dir / "contours.parquet", TRUTH_CONTOURS)
    groups = {key: g for key, g in contours.groupby(["filestem", "structure"], sort=False)}
    for row in images.itertuples(index=False):
        frame = WorkingFrame.fit(int(row.height), int(row.width), height, width, flipped=row.laterality == "R")
        if bool(row.flipped) != frame.flipped:
            raise ValueError(f"{row.filestem}: flipped={row.flipped} but laterality={row.laterality!r}")
        dense = {}
        for bone in anatomy.structures:
            g = groups.get((row.filestem, bone))
            if g is not None:
                dense[bone] = g.sort_values("point")[["x", "y"]].to_numpy(np.float64)
        info = {
            "age": float(row.age),
            "bone_age": float(row.bone_age),
            "sex": row.sex,
            "laterality": row.laterality,
            "cast": bool(row.cast),
            "metal": bool(row.metal),
        }
        yield working_truth(dense, frame, anatomy, row.filestem, info)
