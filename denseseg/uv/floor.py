"""The representation floor of a uv cache: how well the stored maps give their own landmarks back.

Two checks per cached structure crop, accumulated over items and then reduced
(in the manner of MONAI's metric classes: ``add`` per crop, ``merge`` across
shards, ``summary`` at the end):

- exactness: the largest |continuous map - template uv| at the landmarks that
  built the map (0 up to rounding for an exact map; NaN for a degenerate shape);
- the floor: each landmark located again in the *stored* map (after the cache's
  dtype) by its template uv, and its distance in px to where it really is; for
  a map built from a landmark subset, the landmarks that did not build it are
  reported apart (``floor_unused_*``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from denseseg.shape.template import Template
from denseseg.shape.umeyama import DegenerateShapeError
from denseseg.uv.cartesian import CartesianWarp, UVCrop
from denseseg.uv.extraction import ExtractionParams, locate
from denseseg.uv.polar import PolarWarp


class FloorScorer:
    """Accumulates exactness and floor distances of one cache's crops; see the module docstring.

    Args:
        template: the cache's template.
        mode: ``cartesian`` or ``polar`` (the maps' mode).
        extraction: the estimator that locates landmarks in the stored maps.
        uv_dtype: the cache's uv dtype (the maps are rounded through it before locating).
    """

    def __init__(self, template: Template, mode: str, extraction: ExtractionParams, uv_dtype: str):
        self.template, self.mode, self.extraction = template, mode, extraction
        self.dtype = np.dtype(uv_dtype)
        self.exact: list[float] = []
        self.used: list[np.ndarray] = []
        self.unused: list[np.ndarray] = []

    def add(self, structure: str, crop: UVCrop, points: np.ndarray, keep: np.ndarray, target: np.ndarray) -> None:
        """One crop: the structure's true landmarks ``points`` (n, 2), which of them built the map (``keep``)
        and every landmark's template uv ``target`` (n, 2)."""
        self.exact.append(self._exactness(structure, points[keep], keep, target[keep]))
        stored = crop.uv.astype(self.dtype).astype(np.float32)
        scale = self.template.uv_scale(structure) if self.mode == "cartesian" else None  # polar uv is square
        found = locate(stored, target, crop.mask, self.extraction, (crop.top, crop.left), scale)
        distance = np.linalg.norm(found - points, axis=1)
        self.used.append(distance[keep])
        self.unused.append(distance[~keep])

    def _exactness(self, structure: str, points: np.ndarray, keep: np.ndarray, target: np.ndarray) -> float:
        template_points = self.template.points[structure][keep]
        try:
            if self.mode == "cartesian":
                got = CartesianWarp(points, template_points).uv(points, self.template, structure)
            else:
                got = PolarWarp(points, template_points).uv(points)
        except DegenerateShapeError:
            return float("nan")
        return float(np.abs(got - target).max())

    def merge(self, others: Iterable[FloorScorer]) -> FloorScorer:
        """This scorer with the crops of ``others`` (e.g. one per shard) appended, in order."""
        for other in others:
            self.exact += other.exact
            self.used += other.used
            self.unused += other.unused
        return self

    def summary(self, exactness_tol: float) -> dict[str, float | int | bool]:
        """Exactness (max, and whether it is within ``exactness_tol``) and the floor's median, p95 and missing
        count in px; the same three for the landmarks that did not build the maps, when there are any."""
        exact = np.asarray(self.exact, np.float64)
        exact_max = float(np.nanmax(exact)) if np.isfinite(exact).any() else float("nan")
        out = {"exactness_max_uv_error": exact_max, "exactness_ok": bool(exact_max <= exactness_tol)}
        out.update(_floor(np.concatenate(self.used) if self.used else np.zeros(0), "floor"))
        unused = np.concatenate(self.unused) if self.unused else np.zeros(0)
        if len(unused):
            out.update(_floor(unused, "floor_unused"))
        return out


def _floor(distances: np.ndarray, prefix: str) -> dict[str, float | int]:
    return {
        f"{prefix}_median_px": float(np.nanmedian(distances)),
        f"{prefix}_p95_px": float(np.nanpercentile(distances, 95)),
        f"{prefix}_missing": int((~np.isfinite(distances)).sum()),
    }
