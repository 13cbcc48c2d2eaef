"""Farthest-point subsets of each structure's template landmarks.

The paper evaluates a sparse, evenly spread subset of the dense annotations:
per structure ``round(fraction * n)`` landmarks (Python's round, half to even,
which gives 178 of 710 on the wrist at 25 %), at least ``minimum``. Sampling
is greedy farthest-point on the template, starting from the landmark farthest
from the structure's centroid (lowest index on ties), so the subset is fully
deterministic. The result is an index mask into the flat landmark order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from denseseg.anatomy import Anatomy


def farthest_point_sampling(points: np.ndarray, k: int) -> np.ndarray:
    """Indices (selection order) of ``k`` farthest points; deterministic start (farthest from centroid)."""
    points = np.asarray(points, np.float64)
    n = len(points)
    if not 0 < k <= n:
        raise ValueError(f"farthest-point sampling: k={k} must be in 1..{n}")
    if not np.isfinite(points).all():
        raise ValueError("farthest-point sampling: points contain NaN")
    start = int(np.argmax(((points - points.mean(0)) ** 2).sum(1)))
    chosen = [start]
    dist = ((points - points[start]) ** 2).sum(1)
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))  # argmax returns the lowest index on ties
        chosen.append(nxt)
        dist = np.minimum(dist, ((points - points[nxt]) ** 2).sum(1))
    return np.asarray(chosen, np.int64)


def subset_count(n: int, fraction: float, minimum: int = 4) -> int:
    """round(fraction * n) (half to even), at least ``minimum``, at most ``n``."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction {fraction} must be in (0, 1]")
    return int(min(n, max(minimum, round(fraction * n))))


def subset_counts(
    anatomy: Anatomy, fraction: float = 0.25, minimum: int = 4, fractions: Mapping[str, float] | None = None
) -> dict[str, int]:
    """Landmarks kept per structure; ``fractions`` overrides the fraction of named structures."""
    fractions = dict(fractions or {})
    unknown = sorted(set(fractions) - set(anatomy.structures))
    if unknown:
        raise KeyError(f"fractions: unknown {anatomy.name} structure(s) {', '.join(unknown)}")
    return {s: subset_count(n, fractions.get(s, fraction), minimum) for s, n in anatomy.landmark_counts.items()}


def fps_subsets(
    template_points: Mapping[str, np.ndarray],
    anatomy: Anatomy,
    fraction: float = 0.25,
    minimum: int = 4,
    fractions: Mapping[str, float] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """({structure: sorted indices within the structure}, boolean mask over the flat landmark order)."""
    counts = subset_counts(anatomy, fraction, minimum, fractions)
    offsets = anatomy.landmark_offsets()
    mask = np.zeros(anatomy.n_landmarks, bool)
    per_structure = {}
    for s, k in counts.items():
        pts = np.asarray(template_points[s])
        if len(pts) != anatomy.landmark_counts[s]:
            raise ValueError(f"template {s!r}: {len(pts)} points, anatomy says {anatomy.landmark_counts[s]}")
        idx = np.sort(farthest_point_sampling(pts, k))
        per_structure[s] = idx
        mask[offsets[s] + idx] = True
    return per_structure, mask
