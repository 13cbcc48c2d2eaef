"""uv maps of one image, all structures, in either mode, sparse (crops) or dense.

The per-item entry point the stage and the benchmark call: a structure without
a mask or with missing / degenerate landmarks gets no crop and is reported, so
that one bad bone never sinks an image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denseseg.anatomy import ANATOMIES
from denseseg.shape.landmark_table import split_structures
from denseseg.shape.template import Template
from denseseg.shape.umeyama import DegenerateShapeError
from denseseg.uv.cartesian import UVCrop, cartesian_crop
from denseseg.uv.polar import polar_crop, polar_landmark_uv

MODES = ("cartesian", "polar")


def landmark_uv(template: Template, mode: str = "cartesian") -> np.ndarray:
    """Flat (N, 2) uv values of the template landmarks in the given mode."""
    if mode == "cartesian":
        return template.flat_uv()
    if mode == "polar":
        return np.concatenate([polar_landmark_uv(template.points[s]) for s in template.structures])
    raise ValueError(f"unknown uv mode {mode!r}; modes: {', '.join(MODES)}")


def item_crops(
    masks: np.ndarray,
    landmarks: np.ndarray,
    template: Template,
    mode: str = "cartesian",
    extrapolate: bool = False,
    used: np.ndarray | None = None,
) -> tuple[dict[str, UVCrop], dict[str, str]]:
    """({structure: crop}, {structure: reason skipped}) for (S, H, W) masks and flat (N, 2) landmarks.

    ``used`` (N,) bool builds the cartesian maps from those landmarks only (an FPS subset), in the
    full template's uv frame: exact at the used landmarks, interpolated between them.
    """
    if mode not in MODES:
        raise ValueError(f"unknown uv mode {mode!r}; modes: {', '.join(MODES)}")
    if used is not None and mode != "cartesian":
        raise ValueError("maps from a landmark subset are cartesian only")
    anatomy = ANATOMIES[template.anatomy]
    per = split_structures(np.asarray(landmarks, np.float64), anatomy)
    keep = None if used is None else split_structures(np.asarray(used, bool), anatomy)
    crops, skipped = {}, {}
    for s_idx, s in enumerate(anatomy.structures):
        pts = per[s] if keep is None else per[s][keep[s]]
        if not np.isfinite(pts).all():
            skipped[s] = "no landmarks"
            continue
        if not masks[s_idx].any():
            skipped[s] = "empty mask"
            continue
        try:
            if mode == "cartesian":
                crop = cartesian_crop(masks[s_idx], pts, template, s, extrapolate, None if keep is None else keep[s])
            else:
                crop = polar_crop(masks[s_idx], pts, template.points[s])
        except DegenerateShapeError as err:
            skipped[s] = f"degenerate landmarks: {err}"
            continue
        crops[s] = crop
    return crops, skipped


def dense_uv(crops: dict[str, UVCrop], structures, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(uv (S, 2, H, W) float32 with NaN outside, masks (S, H, W) bool) from crops."""
    uv = np.full((len(structures), 2, height, width), np.nan, np.float32)
    masks = np.zeros((len(structures), height, width), bool)
    for s_idx, s in enumerate(structures):
        crop = crops.get(s)
        if crop is None:
            continue
        h, w = crop.mask.shape
        uv[s_idx, :, crop.top : crop.top + h, crop.left : crop.left + w] = crop.uv
        masks[s_idx, crop.top : crop.top + h, crop.left : crop.left + w] = crop.mask
    return uv, masks


@dataclass(frozen=True)
class ItemMaps:
    """One image's cache rows (``cache.item_rows``; empty when no structure got a map) and what was refused."""

    rows: list[dict]
    problems: list[str]  # "<structure>: <reason>" for each structure that has a mask but no map

    @property
    def n_structures(self) -> int:
        return len(self.rows)


def item_maps(
    item: str,
    masks: np.ndarray,
    landmarks: np.ndarray,
    template: Template,
    *,
    mode: str,
    extrapolate: bool,
    used: np.ndarray,
    uv_dtype: str,
    floor=None,
) -> ItemMaps:
    """The uv cache rows of one image: its crops (``item_crops``), each scored by ``floor`` (a
    ``denseseg.uv.floor.FloorScorer``) when given. ``used`` (N,) bool: the landmarks that build the maps
    (all, or an FPS subset); the cache stores those. A structure without landmarks and without a mask is
    simply absent; any other skipped structure is a problem."""
    from denseseg.uv.cache_writer import item_rows

    anatomy = ANATOMIES[template.anatomy]
    subset = None if used.all() else used
    crops, skipped = item_crops(masks, landmarks, template, mode, extrapolate, subset)
    problems = [
        f"{s}: {reason}" for s, reason in skipped.items() if reason != "no landmarks" or masks[anatomy.index(s)].any()
    ]
    if not crops:
        return ItemMaps([], problems)
    per = split_structures(landmarks, anatomy)  # as given: the cache stores them in their own dtype
    keep = split_structures(used, anatomy)
    if floor is not None:
        targets = split_structures(landmark_uv(template, mode), anatomy)
        for s, crop in crops.items():
            floor.add(s, crop, per[s], keep[s], targets[s])
    height, width = masks.shape[-2:]
    cached = {s: per[s][keep[s]] for s in crops}
    return ItemMaps(item_rows(item, height, width, crops, cached, anatomy.structures, uv_dtype), problems)
