"""Landmark repairs after a fit: landmarks without evidence, and landmarks that coincide.

Template landmarks that a cut bone carries out of view (or that snap onto the cut)
are laid evenly, in order, along the cut edge (``spread_off_view``), and landmarks
that snapped onto one outline point are parted (``separate_coincident``): piled up,
they gave polygons with repeated vertices, which have no uv map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from denseseg.shape.polyline import arc_parameter, cumulative_length, nearest_vertex, point_at_arc_parameter
from denseseg.shape.view_box import inside_box


def separate_coincident(landmarks: np.ndarray, outline: np.ndarray, min_gap: float = 0.05) -> np.ndarray:
    """Part consecutive landmarks that snapped onto the same outline point (arc-length gap < ``min_gap`` px).

    Why: two carried landmarks can project onto one vertex of the outline (a corner,
    the tip of a mask that stops short); a landmark polygon with a repeated vertex
    has no uv map. Each such group is laid evenly, in landmark order, between the
    midpoints to its neighbours, so no landmark moves more than half a spacing.
    """
    n = len(landmarks)
    if n < 3:
        return landmarks
    length = cumulative_length(outline)[-1]
    s = arc_parameter(landmarks, outline)
    step = np.mod(np.roll(s, -1) - s + 0.5 * length, length) - 0.5 * length  # to the next landmark, signed
    same = np.abs(step) < min_gap
    if not same.any() or same.all():
        return _nudge_apart(landmarks, outline, min_gap)
    out = landmarks.copy()
    for run in _circular_runs(same):
        group = run + [(run[-1] + 1) % n]  # same[i]: landmark i meets landmark i + 1
        before = s[(group[0] - 1) % n]
        after = s[(group[-1] + 1) % n]
        lo = 0.5 * np.mod(before - s[group[0]] + 0.5 * length, length) - 0.25 * length  # half-way back (<= 0)
        hi = 0.5 * np.mod(after - s[group[0]] + 0.5 * length, length) - 0.25 * length  # half-way on (>= 0)
        if hi - lo < min_gap * len(group):
            continue
        placed = s[group[0]] + lo + (hi - lo) * (np.arange(len(group)) + 0.5) / len(group)
        out[group] = point_at_arc_parameter(outline, placed)
    return _nudge_apart(out, outline, min_gap)


def _circular_runs(flags: np.ndarray) -> list[list[int]]:
    """Index runs of consecutive True in a circular array (a run may wrap past the end); some flag must be False."""
    n = len(flags)
    start = int(np.flatnonzero(~flags)[0]) + 1  # just after a False: no run is cut in two
    runs: list[list[int]] = []
    for step in range(n):
        i = (start + step) % n
        if flags[i]:
            if runs and runs[-1][-1] == (i - 1) % n:
                runs[-1].append(i)
            else:
                runs.append([i])
    return runs


def _nudge_apart(landmarks: np.ndarray, outline: np.ndarray, min_gap: float) -> np.ndarray:
    """Last resort for landmarks that coincide without being neighbours (the fit folded their order):
    each one closer than ``min_gap`` to the one before it along the outline moves on to ``min_gap``."""
    s = arc_parameter(landmarks, outline)
    order = np.argsort(s, kind="stable")
    ss = s[order]
    if len(ss) < 2 or np.diff(ss).min() >= min_gap:
        return landmarks
    for k in range(1, len(ss)):
        if ss[k] - ss[k - 1] < min_gap:
            ss[k] = ss[k - 1] + min_gap
    out = landmarks.copy()
    moved = ss != s[order]
    out[order[moved]] = point_at_arc_parameter(outline, ss[moved])
    return out


def spread_off_view(landmarks: np.ndarray, off: np.ndarray, outline: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Lay the landmarks that the registration carried out of view evenly, in order, along the cut.

    Why: snapped to the nearest outline point, the landmarks of a shaft's hidden
    part pile up on the corners of the cut (a polygon with repeated vertices: no uv
    map, a folded QC polygon). ``off``: carried out of view, or snapped onto the cut.
    Each run of consecutive off-view landmarks takes the stretch of image edge
    (``border`` points of the outline) between its in-view neighbours, spaced
    evenly and in landmark order; they stay unscored and are counted as landmarks
    without evidence. Runs without edge points between their neighbours are left
    as they are.
    """
    off = np.asarray(off, dtype=bool)
    n = len(landmarks)
    if not off.any() or off.all():
        return landmarks
    out = landmarks.copy()
    cum = cumulative_length(outline)
    length = cum[-1]
    edge_s = cum[:-1][np.asarray(border, dtype=bool)]
    s = arc_parameter(landmarks, outline)
    for run in _circular_runs(off):
        s_prev, s_next = s[(run[0] - 1) % n], s[(run[-1] + 1) % n]
        span = np.mod(s_next - s_prev, length)
        rel = np.mod(edge_s - s_prev, length)
        inside = rel[(rel > 0) & (rel < span)]
        if len(inside):
            lo, hi = inside.min(), inside.max()
            m = len(run)
            placed = s_prev + lo + (hi - lo) * (np.arange(m) + 0.5) / m
            out[run] = point_at_arc_parameter(outline, placed)
    return out


def evidence_mask(
    landmarks: np.ndarray, outline: np.ndarray, border: np.ndarray | None, shape: Sequence[float] | None, margin: float
) -> np.ndarray:
    """True for registered landmarks that carry evidence: inside the image by ``margin`` and not
    snapped onto the artificial edge segment of a cut outline (nearest outline point flagged)."""
    valid = np.ones(len(landmarks), dtype=bool)
    if border is not None and np.any(border):
        valid &= ~np.asarray(border, dtype=bool)[nearest_vertex(landmarks, outline)]
    if shape is not None:
        valid &= inside_box(landmarks, shape, margin)
    return valid
