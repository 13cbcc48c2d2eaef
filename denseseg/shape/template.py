"""The deformation-free template: per structure, the mean training shape and its uv values.

Paper 2.1.1: the template is the mean of the training split's landmarks. Its uv
values normalise each structure's template to [-1, 1] along each axis of that
structure's own bounding box (u along x = columns, v along y = rows), so every
landmark, and any other template point, has a fixed uv address. Optionally the
shapes are first aligned by generalised Procrustes (similarity), which removes
pose variation from the mean; the result stays in the plain mean's frame so the
template still overlays the images. Stored as JSON (exact float repr, stable
bytes).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from denseseg.anatomy import ANATOMIES, Anatomy
from denseseg.io.atomic import write_text_atomic
from denseseg.shape.umeyama import DegenerateShapeError, umeyama

FORMAT = "denseseg-template/1"


@dataclass(frozen=True)
class Template:
    anatomy: str
    points: dict  # structure -> (N_s, 2) float64 template positions (x, y)
    procrustes: bool = False
    n_shapes: dict = field(default_factory=dict)  # structure -> shapes averaged

    @property
    def structures(self) -> tuple[str, ...]:
        return tuple(self.points)

    def bbox(self, structure: str) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the structure's template points."""
        pts = self.points[structure]
        return (*pts.min(0), *pts.max(0))

    def to_uv(self, structure: str, xy: np.ndarray) -> np.ndarray:
        """Template positions -> uv ([-1, 1] inside the structure's template bbox)."""
        x0, y0, x1, y1 = self.bbox(structure)
        lo, span = np.array([x0, y0]), np.array([x1 - x0, y1 - y0])
        return 2.0 * (np.asarray(xy, np.float64) - lo) / span - 1.0

    def from_uv(self, structure: str, uv: np.ndarray) -> np.ndarray:
        """uv -> template positions (inverse of ``to_uv``)."""
        x0, y0, x1, y1 = self.bbox(structure)
        lo, span = np.array([x0, y0]), np.array([x1 - x0, y1 - y0])
        return (np.asarray(uv, np.float64) + 1.0) * 0.5 * span + lo

    def uv_scale(self, structure: str) -> np.ndarray:
        """Template units per uv unit, per axis: uv * uv_scale is isotropic (template pixels).

        u and v are normalised independently, so raw uv distances stretch the
        shorter axis of an elongated bone (an ulna's box is about 6:1);
        neighbour searches should run in these units.
        """
        x0, y0, x1, y1 = self.bbox(structure)
        return 0.5 * np.array([x1 - x0, y1 - y0])

    def landmark_uv(self, structure: str) -> np.ndarray:
        return self.to_uv(structure, self.points[structure])

    def flat_points(self) -> np.ndarray:
        return np.concatenate([self.points[s] for s in self.structures])

    def flat_uv(self) -> np.ndarray:
        return np.concatenate([self.landmark_uv(s) for s in self.structures])

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "anatomy": self.anatomy,
            "procrustes": self.procrustes,
            "uv_convention": "u = x (columns), v = y (rows); [-1, 1] per axis of each structure's template bbox",
            "structures": {
                s: {
                    "n_shapes": int(self.n_shapes.get(s, 0)),
                    "bbox": [float(v) for v in self.bbox(s)],
                    "points": [[float(x), float(y)] for x, y in self.points[s]],
                    "uv": [[float(u), float(v)] for u, v in self.landmark_uv(s)],
                }
                for s in self.structures
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> Template:
        if data.get("format") != FORMAT:
            raise ValueError(f"not a template ({FORMAT} expected, got {data.get('format')!r})")
        anatomy = ANATOMIES[data["anatomy"]]
        points, n_shapes = {}, {}
        for s in anatomy.structures:
            entry = data["structures"][s]
            points[s] = np.asarray(entry["points"], np.float64).reshape(-1, 2)
            n_shapes[s] = entry["n_shapes"]
        return cls(data["anatomy"], points, bool(data["procrustes"]), n_shapes)

    def save(self, path: str | os.PathLike) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Template:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"{path}: template not found (did the uvmaps stage run?)")
        return cls.from_dict(json.loads(path.read_text()))


def generalised_procrustes(shapes: np.ndarray, iterations: int = 50, tol: float = 1e-10) -> np.ndarray:
    """Mean of (n, N, 2) shapes after iterative similarity alignment, in the plain mean's frame."""
    reference = shapes.mean(0)
    mean = reference
    for _ in range(iterations):
        aligned = np.stack([umeyama(s, mean).apply(s) for s in shapes])
        new = aligned.mean(0)
        new = umeyama(new, reference).apply(new)  # fix the gauge: pose and size of the plain mean
        done = np.abs(new - mean).max() < tol * max(1.0, np.abs(reference).max())
        mean = new
        if done:
            break
    return mean


def build_template(landmarks: np.ndarray, anatomy: Anatomy, procrustes: bool = False) -> Template:
    """Template from (n_items, anatomy.n_landmarks, 2) training landmarks (NaN = absent structure)."""
    landmarks = np.asarray(landmarks, np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (anatomy.n_landmarks, 2):
        raise ValueError(f"landmarks of shape (n, {anatomy.n_landmarks}, 2) expected, got {landmarks.shape}")
    offsets = anatomy.landmark_offsets()
    points, counts = {}, {}
    for s, n in anatomy.landmark_counts.items():
        block = landmarks[:, offsets[s] : offsets[s] + n]
        complete = block[np.isfinite(block).all(axis=(1, 2))]
        if procrustes:
            usable = []
            for shape in complete:
                try:
                    umeyama(shape, shape)
                    usable.append(shape)
                except DegenerateShapeError:
                    pass
            complete = np.asarray(usable).reshape(-1, n, 2)
        if len(complete) == 0:
            raise ValueError(f"template: no complete training shape of {anatomy.name} structure {s!r}")
        mean = generalised_procrustes(complete) if procrustes and len(complete) > 1 else complete.mean(0)
        x0, y0 = mean.min(0)
        x1, y1 = mean.max(0)
        if x1 - x0 <= 0 or y1 - y0 <= 0:
            raise ValueError(f"template: structure {s!r} has a flat bounding box")
        points[s], counts[s] = mean, len(complete)
    return Template(anatomy.name, points, procrustes, counts)
