"""Closed polylines (bone outlines, truth contours): projection, positions along them, distances.

A closed polyline is an (n, 2) array of vertices; segment i runs from vertex i to
vertex i + 1, the last one back to vertex 0 (the closing point is not repeated).
A point on it is named by one of two parameters:

- the vertex parameter in [0, n): segment index plus the fraction along it (the
  phantom's truth contours have one vertex per atlas point, so this is an atlas
  identity, see ``denseseg.evaluation.correspondence``);
- the arc-length parameter in [0, length): the distance along the polyline from
  vertex 0 (registration moves landmarks along an outline by it).

Every projection of points onto a polyline goes through ``project``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Projection:
    """The nearest point of a closed polyline to each of P points."""

    segment: np.ndarray  # (P,) int: index of the nearest segment
    fraction: np.ndarray  # (P,) in [0, 1]: where along that segment
    points: np.ndarray  # (P, 2): the projected points


def project(points: np.ndarray, outline: np.ndarray) -> Projection:
    """Orthogonal projection of each point onto the nearest segment of the closed ``outline``.

    Ties (two segments equally near) go to the lower segment index; a segment of
    zero length projects onto its vertex.
    """
    points = np.asarray(points, dtype=np.float64)
    a = np.asarray(outline, dtype=np.float64)
    ab = np.roll(a, -1, axis=0) - a
    len2 = (ab * ab).sum(1)
    len2[len2 == 0] = 1.0
    ap = points[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab[None]).sum(2) / len2[None], 0.0, 1.0)
    proj = a[None] + t[..., None] * ab[None]
    best = ((points[:, None, :] - proj) ** 2).sum(2).argmin(1)
    rows = np.arange(len(points))
    return Projection(best, t[rows, best], proj[rows, best])


def snap_to_outline(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Each point moved to its nearest point of the closed ``outline``."""
    return project(points, outline).points


def cumulative_length(outline: np.ndarray) -> np.ndarray:
    """Arc length at each vertex of a closed polyline, the closing segment included (n + 1 values)."""
    seg = np.linalg.norm(np.roll(outline, -1, axis=0) - outline, axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def vertex_parameter(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Vertex parameter in [0, n) of each point's projection onto the closed ``outline``."""
    p = project(points, outline)
    return p.segment + p.fraction


def point_at_vertex_parameter(outline: np.ndarray, param: np.ndarray) -> np.ndarray:
    """The points of the closed ``outline`` at vertex parameters ``param`` (taken modulo n)."""
    outline = np.asarray(outline, dtype=np.float64)
    n = len(outline)
    param = np.mod(np.asarray(param, dtype=np.float64), n)
    i0 = np.floor(param).astype(int) % n
    frac = (param - np.floor(param))[:, None]
    return (1.0 - frac) * outline[i0] + frac * outline[(i0 + 1) % n]


def arc_parameter(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Arc-length parameter of each point's projection onto the closed ``outline``."""
    p = project(points, outline)
    cum = cumulative_length(np.asarray(outline, dtype=np.float64))
    return cum[p.segment] + p.fraction * (cum[p.segment + 1] - cum[p.segment])


def point_at_arc_parameter(outline: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The points of the closed ``outline`` at arc-length parameters ``s`` (taken modulo its length)."""
    cum = cumulative_length(outline)
    s = np.mod(s, cum[-1]) if cum[-1] > 0 else np.zeros_like(s)
    k = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(outline) - 1)
    frac = (s - cum[k]) / np.maximum(cum[k + 1] - cum[k], 1e-12)
    nxt = np.roll(outline, -1, axis=0)
    return outline[k] + frac[:, None] * (nxt[k] - outline[k])


def closest_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each point of ``a``, the distance to the nearest point (vertex) of ``b``."""
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(d2.min(1), 0.0))


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric mean closest-point distance between two point sets."""
    return 0.5 * float(closest_distances(a, b).mean() + closest_distances(b, a).mean())


def nearest_vertex(points: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Index of the nearest vertex of ``outline`` for each point."""
    return ((points[:, None, :] - outline[None]) ** 2).sum(2).argmin(1)


def order_reversals(points: np.ndarray, outline: np.ndarray) -> int:
    """How many consecutive pairs of ``points`` step backwards along the closed ``outline``.

    Points in outline order (landmark k, then k + 1, ...) step forwards by less than
    half the perimeter each; a step of more than half is a reversal: the fit folded
    the order there. Coincident points (a zero step) are not reversals.
    """
    s = arc_parameter(np.asarray(points, dtype=np.float64), outline)
    length = cumulative_length(np.asarray(outline, dtype=np.float64))[-1]
    if len(s) < 3 or length <= 0:
        return 0
    steps = np.mod(np.roll(s, -1) - s, length)
    return int((steps > 0.5 * length).sum())
