"""The Pareto front of a multi-objective study and the compromise pick.

Pick rule (documented in docs/tuning.md): on the front, normalise every
objective to [0, 1] by its range over the front (0 = the best value on the
front, 1 = the worst), and take the trial closest, in Euclidean distance, to the
utopia point (0, ..., 0). Why: the objectives are in different units (pixels,
uv units, Dice), so a raw distance would let the one with the largest numbers
decide; min-max normalising over the front makes the pick invariant to units
and offsets, gives every objective equal weight, and needs no hand-set weights.
Ties go to the lowest trial number, so the pick is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DIRECTIONS = ("minimize", "maximize")


def _as_costs(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """Values turned into costs (smaller is better for every column)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(directions):
        raise ValueError(f"values must be (n_trials, {len(directions)}), got {values.shape}")
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad:
        raise ValueError(f"directions {bad}: expected 'minimize' or 'maximize'")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite (pruned or failed trials have no place on the front)")
    sign = np.array([1.0 if d == "minimize" else -1.0 for d in directions])
    return values * sign


def pareto_mask(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """(n,) bool: True for the trials no other trial dominates (at least as good everywhere, better somewhere).

    Duplicates of a non-dominated point are all kept.
    """
    costs = _as_costs(values, directions)
    n = len(costs)
    mask = np.ones(n, bool)
    for i in range(n):
        no_worse = (costs <= costs[i]).all(axis=1)
        better = (costs < costs[i]).any(axis=1)
        mask[i] = not (no_worse & better).any()
    return mask


def normalised_distances(values: np.ndarray, directions: Sequence[str]) -> np.ndarray:
    """(n,) distance of each point to the utopia point after min-max normalising each objective over ``values``.

    An objective that is constant over the points contributes 0 (it cannot tell them apart).
    """
    costs = _as_costs(values, directions)
    low, high = costs.min(axis=0), costs.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = (costs - low) / span
    return np.sqrt((scaled**2).sum(axis=1))


def pick_compromise(values: np.ndarray, directions: Sequence[str]) -> int:
    """Index (into ``values``) of the front's trial closest to the utopia point; see the module docstring.

    ``values`` may hold dominated trials too: only the front is normalised and searched.
    """
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        raise ValueError("no completed trial: nothing to pick")
    front = np.flatnonzero(pareto_mask(values, directions))
    distances = normalised_distances(values[front], directions)
    return int(front[int(np.argmin(distances))])  # argmin takes the first of equal distances
