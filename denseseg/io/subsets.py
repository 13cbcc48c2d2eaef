"""The farthest-point landmark subsets file (``subsets.json``, written by the subsample stage), read back."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from denseseg.anatomy import Anatomy
from denseseg.shape.landmark_table import split_structures


class SubsetsError(ValueError):
    """A subsets file that is missing, malformed or does not fit the anatomy (one line, naming the file)."""


def read_used_mask(path: str | os.PathLike, anatomy: Anatomy) -> np.ndarray:
    """(N,) bool over the anatomy's flat landmark order: the landmarks of the subset.

    Each structure must keep at least 3 landmarks (a triangle), so that maps can be built from them.
    """
    path = Path(path)
    if not path.exists():
        raise SubsetsError(f"{path}: landmark subsets not found (did the subsample stage run?)")
    try:
        subsets = json.loads(path.read_text())
        found, flat = subsets["anatomy"], subsets["flat_indices"]
    except (ValueError, KeyError, TypeError) as err:
        raise SubsetsError(f"{path}: not a subsets file ({type(err).__name__}: {err})") from None
    if found != anatomy.name:
        raise SubsetsError(f"{path}: subsets of anatomy {found!r}, this variant is {anatomy.name!r}")
    idx = np.asarray(flat, np.int64)
    if idx.ndim != 1 or len(idx) == 0 or idx.min() < 0 or idx.max() >= anatomy.n_landmarks:
        raise SubsetsError(f"{path}: flat_indices must be indices in 0..{anatomy.n_landmarks - 1}")
    used = np.zeros(anatomy.n_landmarks, bool)
    used[idx] = True
    for structure, keep in split_structures(used, anatomy).items():
        if keep.sum() < 3:
            raise SubsetsError(f"{path}: structure {structure!r} keeps {int(keep.sum())} landmark(s); maps need 3")
    return used
