"""Anatomical atlas of the 17 wrist bones of an adult LEFT hand, PA view.

Why: the phantom needs a known shape for every bone so that its ground truth
(dense point correspondence) is exact. Each bone is a smooth closed curve (a
periodic cubic spline through hand-placed control points) in atlas millimetres,
in image orientation: x to the image right, y DOWN (towards the elbow). In a
left-hand PA view the radius and the thumb (metacarpal_1) are on the image's
right, the ulna and the little finger on its left.

Dense contour convention (the contract of ``data/truth/contours.parquet``):
``DENSE_PER_LANDMARK`` points per design landmark, evenly spaced by arc length
on the atlas curve, counter-clockwise as seen on screen (negative shoelace area
in (column, row) coordinates), point 0 where the ray from the bone's centroid in
its distal direction (long bones: along the shaft towards the fingers; all other
bones: straight up in the atlas) meets the contour.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.interpolate import splev, splprep

from denseseg.anatomy import WRIST

DENSE_PER_LANDMARK = 8
_FINE = 4096  # samples of the spline before arc-length resampling


def dense_count(bone: str) -> int:
    """Number of dense truth points of ``bone`` (8 per design landmark: radius -> 640)."""
    return WRIST.landmark_counts[bone] * DENSE_PER_LANDMARK if bone in WRIST.landmark_counts else _unknown(bone)


def _unknown(bone: str) -> int:
    raise KeyError(f"unknown wrist bone {bone!r}; known: {', '.join(WRIST.structures)}")


def dense_counts() -> dict[str, int]:
    return {bone: dense_count(bone) for bone in WRIST.structures}


@dataclass(frozen=True)
class BoneTemplate:
    """One atlas bone: its dense contour (N, 2) in atlas mm and its distal direction."""

    name: str
    points: np.ndarray  # (N, 2) float64, x right, y down, screen-counter-clockwise
    distal: np.ndarray  # unit vector (2,)
    long_bone: bool

    @property
    def centroid(self) -> np.ndarray:
        return polygon_centroid(self.points)


def signed_area(points: np.ndarray) -> float:
    """Shoelace area in (x, y) as given; NEGATIVE for screen-counter-clockwise when y points down."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def polygon_centroid(points: np.ndarray) -> np.ndarray:
    x, y = points[:, 0], points[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area = cross.sum() / 2.0
    if abs(area) < 1e-12:
        return points.mean(axis=0)
    cx = ((x + np.roll(x, -1)) * cross).sum() / (6 * area)
    cy = ((y + np.roll(y, -1)) * cross).sum() / (6 * area)
    return np.array([cx, cy])


def _long_bone(p0, p1, left, right, cap_prox=3.0, cap_dist=2.0, tilt=0.0) -> np.ndarray:
    """Control points of a long bone: axis p0 (proximal) -> p1 (distal), half-widths along it.

    ``left``/``right`` are half-widths (mm) at evenly spaced stations from p0 to p1,
    seen with the distal end up; caps bulge by ``cap_*`` mm; ``tilt`` slants the
    distal cap (positive: its right side is more distal).
    """
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = (p1 - p0) / np.linalg.norm(p1 - p0)
    perp = np.array([-axis[1], axis[0]])  # screen-right of an upward axis (y down)
    if perp[0] < 0:
        perp = -perp
    t = np.linspace(0.0, 1.0, len(left))
    stations = p0[None] + t[:, None] * (p1 - p0)[None]
    right_side = stations + np.asarray(right)[:, None] * perp[None]
    left_side = stations - np.asarray(left)[:, None] * perp[None]
    phi = np.linspace(0, np.pi, 9)[1:-1]
    lat = np.where(np.cos(phi) > 0, right[-1] * np.cos(phi), left[-1] * np.cos(phi))
    dist_cap = p1[None] + lat[:, None] * perp[None] + (cap_dist * np.sin(phi) + tilt * lat)[:, None] * axis[None]
    # proximal cap runs from the left side back to the right side
    prox_cap = (
        p0[None]
        + (-np.where(np.cos(phi) > 0, left[0], right[0]) * np.cos(phi))[:, None] * perp[None]
        - (cap_prox * np.sin(phi))[:, None] * axis[None]
    )
    return np.concatenate([right_side, dist_cap, left_side[::-1], prox_cap])


def _blob(centre, a, b, angle_deg=0.0, harmonics=()) -> np.ndarray:
    """Control points of a rounded bone: ellipse (a along the tilted vertical, b across) with harmonics.

    ``harmonics``: (k, amplitude, phase) radial modulations, amplitude relative.
    """
    th = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    r = np.ones_like(th)
    for k, amp, phase in harmonics:
        r = r + amp * np.cos(k * th + phase)
    u = b * np.sin(th) * r  # across
    v = a * np.cos(th) * r  # along (distal = +v = up on screen)
    ang = np.deg2rad(angle_deg)  # positive tilts the distal end to the image right
    x = u * np.cos(ang) + v * np.sin(ang)
    y = u * np.sin(ang) - v * np.cos(ang)
    return np.stack([x + centre[0], y + centre[1]], axis=1)


# Adult (about 16 years) atlas, mm. Origin near the centre of the distal radius physis.
_CONTROL: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}


def _define() -> None:
    up = np.array([0.0, -1.0])
    C = _CONTROL
    C["radius"] = (
        _long_bone(
            (12, 100),
            (12, 2.5),
            left=[6.5, 6.5, 6.6, 7.0, 8.3, 10.3, 11.5],
            right=[6.8, 6.8, 7.0, 7.8, 9.6, 11.8, 12.6],
            cap_prox=4,
            cap_dist=0.6,
            tilt=0.07,
        ),
        None,
    )
    C["ulna"] = (
        _long_bone(
            (-11, 100),
            (-11, 5.5),
            left=[4.4, 4.4, 4.5, 4.7, 5.3, 6.0, 6.4],
            right=[4.4, 4.4, 4.4, 4.5, 4.9, 5.5, 5.8],
            cap_prox=3,
            cap_dist=1.2,
        ),
        None,
    )
    C["radius_epiphysis"] = (
        np.array(
            [
                [1.0, 1.2],
                [4.0, 0.7],
                [8.0, 0.2],
                [12.0, -0.2],
                [16.0, -0.7],
                [20.0, -1.2],
                [23.5, -1.2],
                [25.6, -2.0],
                [26.0, -5.0],
                [25.4, -8.5],
                [24.2, -11.8],
                [22.0, -10.0],
                [19.0, -7.6],
                [15.0, -6.3],
                [11.0, -5.6],
                [7.0, -5.5],
                [3.5, -5.9],
                [1.0, -5.2],
                [0.0, -3.0],
                [0.0, -0.5],
            ]
        ),
        up,
    )
    C["ulna_epiphysis"] = (
        np.array(
            [
                [-5.2, 3.0],
                [-8.0, 3.4],
                [-11.0, 3.5],
                [-14.0, 3.6],
                [-16.8, 3.4],
                [-18.6, 1.5],
                [-19.4, -1.5],
                [-19.0, -4.6],
                [-17.2, -4.0],
                [-14.5, -2.6],
                [-11.0, -2.4],
                [-7.5, -2.0],
                [-5.4, -1.0],
                [-4.6, 1.0],
            ]
        ),
        up,
    )
    C["scaphoid"] = (_blob((15.5, -16.5), 11.0, 5.6, 38, [(2, -0.05, 0.0), (3, 0.06, 0.6)]), up)
    C["lunate"] = (_blob((1.0, -14.0), 6.6, 7.2, -5, [(3, 0.07, np.pi), (2, 0.04, 0.3)]), up)
    C["triquetrum"] = (_blob((-12.0, -18.5), 5.2, 6.0, -35, [(3, 0.06, 0.2)]), up)
    C["pisiform"] = (_blob((-14.5, -16.0), 4.2, 3.9, -20, [(2, 0.04, 0.5)]), up)
    C["trapezium"] = (_blob((21.0, -30.0), 6.3, 6.8, 32, [(3, 0.07, 0.9), (4, 0.03, 0.1)]), up)
    C["trapezoid"] = (_blob((11.5, -33.0), 5.8, 4.9, 8, [(4, 0.05, 0.0), (3, 0.03, 0.4)]), up)
    C["capitate"] = (_blob((1.5, -31.0), 10.2, 6.0, 2, [(2, -0.04, 0.0), (3, 0.05, np.pi)]), up)
    C["hamate"] = (_blob((-9.5, -29.5), 8.6, 6.4, -12, [(3, 0.09, 0.0), (2, 0.03, 0.7)]), up)
    mc = {
        "metacarpal_1": (
            (25.5, -39),
            (42, -71),
            [5.5, 4.0, 3.6, 3.5, 3.8, 4.7, 5.2],
            [5.8, 4.2, 3.7, 3.5, 3.9, 4.8, 5.3],
        ),
        "metacarpal_2": (
            (11.5, -44),
            (17, -107),
            [5.2, 3.8, 3.1, 3.0, 3.3, 4.5, 5.0],
            [5.6, 4.0, 3.2, 3.0, 3.4, 4.6, 5.0],
        ),
        "metacarpal_3": (
            (1.5, -46),
            (1.0, -106),
            [5.0, 3.7, 3.0, 2.9, 3.2, 4.4, 4.9],
            [5.3, 3.9, 3.1, 2.9, 3.2, 4.4, 4.9],
        ),
        "metacarpal_4": (
            (-9.0, -44),
            (-14, -99),
            [4.4, 3.2, 2.7, 2.6, 2.9, 4.0, 4.4],
            [4.6, 3.4, 2.8, 2.6, 2.9, 4.0, 4.4],
        ),
        "metacarpal_5": (
            (-17.5, -40),
            (-28, -89),
            [4.8, 3.6, 2.9, 2.8, 3.1, 4.1, 4.6],
            [4.6, 3.4, 2.8, 2.8, 3.1, 4.1, 4.5],
        ),
    }
    for name, (p0, p1, left, right) in mc.items():
        C[name] = (_long_bone(p0, p1, left, right, cap_prox=1.8, cap_dist=3.5), None)


def _closed_spline(control: np.ndarray, n: int) -> np.ndarray:
    pts = np.vstack([control, control[:1]])
    tck, _ = splprep([pts[:, 0], pts[:, 1]], s=0.0, per=1, k=3)
    x, y = splev(np.linspace(0, 1, n, endpoint=False), tck)
    return np.stack([x, y], axis=1)


def resample_closed(fine: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """``n`` points evenly spaced by arc length on the closed polyline ``fine``, from ``fine[start]``."""
    ring = np.roll(fine, -start, axis=0)
    closed = np.vstack([ring, ring[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    targets = np.linspace(0.0, s[-1], n, endpoint=False)
    x = np.interp(targets, s, closed[:, 0])
    y = np.interp(targets, s, closed[:, 1])
    return np.stack([x, y], axis=1)


def _start_index(fine: np.ndarray, distal: np.ndarray) -> int:
    """Index of the fine point where the ray from the centroid along ``distal`` leaves the curve."""
    c = polygon_centroid(fine)
    rel = fine - c
    along = rel @ distal
    across = rel @ np.array([-distal[1], distal[0]])
    # points near the ray on its positive side; take the farthest such crossing
    candidates = np.where(along > 0)[0]
    best = candidates[np.argmin(np.abs(across[candidates]) - 1e-6 * along[candidates])]
    return int(best)


def _build(name: str) -> BoneTemplate:
    control, distal = _CONTROL[name]
    long_bone = distal is None
    fine = _closed_spline(control, _FINE)
    if signed_area(fine) > 0:  # make it screen-counter-clockwise (negative area with y down)
        fine = fine[::-1].copy()
    if long_bone:
        axis = _long_axis(fine)  # the shaft axis, oriented towards the fingers (up)
        distal = axis if axis[1] < 0 else -axis
    distal = np.asarray(distal, float) / np.linalg.norm(distal)
    start = _start_index(fine, distal)
    points = resample_closed(fine, dense_count(name), start)
    return BoneTemplate(name=name, points=points, distal=distal, long_bone=long_bone)


def _long_axis(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return vt[0] / np.linalg.norm(vt[0])


@lru_cache(maxsize=1)
def atlas() -> dict[str, BoneTemplate]:
    """The adult left-hand atlas, bone order = ``WRIST.structures`` (cached, read-only arrays)."""
    if not _CONTROL:
        _define()
    bones = {}
    for name in WRIST.structures:
        template = _build(name)
        template.points.setflags(write=False)
        bones[name] = template
    return bones
