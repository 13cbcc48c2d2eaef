"""Target registration error (TRE) of landmarks, and which structure each landmark belongs to.

TRE is the Euclidean distance between a predicted landmark and its reference,
in pixels of the working resolution; times the image's mm per px it is in mm.
The paper's wrist figures are pixels (Table 2 says so, Fig. 4 calls them mm),
so the rows carry both.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from denseseg.anatomy import Anatomy


def _points(name: str, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} landmarks must be (N, 2) (x, y), got shape {points.shape}")
    return points


def tre(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Distance (px) between each predicted landmark and its reference; NaN where either is NaN."""
    pred, true = _points("predicted", pred), _points("reference", true)
    if pred.shape != true.shape:
        raise ValueError(f"predicted {pred.shape} and reference {true.shape} landmarks differ in number")
    return np.hypot(*(pred - true).T)


def landmark_structures(anatomy: Anatomy) -> np.ndarray:
    """Index of each landmark's structure in the flat landmark order, shape (N,)."""
    return np.repeat(np.arange(len(anatomy.structures)), list(anatomy.landmark_counts.values()))


def subset_anatomy(anatomy: Anatomy, keep: np.ndarray, name: str | None = None) -> Anatomy:
    """The anatomy restricted to the landmarks where ``keep`` (N,) is True (same structures and groups).

    For a method trained on a subset (HeatReg on 178 landmarks): its
    predictions are (sum(keep), 2) in the same order, and so are the
    reference's ``landmarks[keep]``.
    """
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (anatomy.n_landmarks,):
        raise ValueError(f"keep must be ({anatomy.n_landmarks},) for {anatomy.name}, got {keep.shape}")
    owner = landmark_structures(anatomy)
    counts = {s: int(keep[owner == i].sum()) for i, s in enumerate(anatomy.structures)}
    return Anatomy(
        name=name or f"{anatomy.name}{int(keep.sum())}",
        landmark_counts=MappingProxyType(counts),
        groups=anatomy.groups,
    )
