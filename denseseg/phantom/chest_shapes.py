"""Synthetic chest landmarks: stand-ins for the JSRT shapes when the real ones are not at hand.

Why: the real JSRT landmarks (Gaggion et al.) live beside the project, not in it;
a fresh checkout must still run the whole chain (``make run``). These shapes are
simple on purpose (rounded lungs, an elliptic heart, slim tilted clavicles, in
the JSRT layout: patient's right on the image's left) with seeded per-case
variation: a global similarity, per-organ size, aspect and shift, and a smooth
displacement field, so landmark k means the same point in every case. They are
not anatomy; anything measured on them says that the pipeline works, not how well
it does on chests.
"""

from __future__ import annotations

import numpy as np

from denseseg.anatomy import JSRT

FRAME_PX = 1024  # the JSRT landmark frame (2048 px images at half resolution)

# organ -> (centre x, centre y, half-width, half-height, squareness exponent, tilt degrees)
_ORGANS = {
    "right_lung": (320.0, 540.0, 160.0, 350.0, 3.0, 0.0),
    "left_lung": (705.0, 540.0, 145.0, 340.0, 3.0, 0.0),
    "heart": (560.0, 700.0, 175.0, 135.0, 2.0, -8.0),
    "right_clavicle": (330.0, 150.0, 175.0, 16.0, 2.0, 10.0),
    "left_clavicle": (700.0, 150.0, 175.0, 16.0, 2.0, -10.0),
}


def _organ(name: str, n: int) -> np.ndarray:
    """``n`` points of one organ's mean outline (a tilted superellipse), from its top, turning clockwise."""
    cx, cy, a, b, p, tilt = _ORGANS[name]
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False) - 0.5 * np.pi
    c, s = np.cos(t), np.sin(t)
    x = a * np.sign(c) * np.abs(c) ** (2.0 / p)
    y = b * np.sign(s) * np.abs(s) ** (2.0 / p)
    ang = np.deg2rad(tilt)
    return np.column_stack([cx + x * np.cos(ang) - y * np.sin(ang), cy + x * np.sin(ang) + y * np.cos(ang)])


def synthetic_chest_landmarks(n_cases: int, seed: int) -> dict[str, np.ndarray]:
    """{"SYN0001": (166, 2) in the 1024-px JSRT frame, ...}, in JSRT anatomy order; same seed, same shapes."""
    out = {}
    for case in range(n_cases):
        rng = np.random.default_rng([int(seed), 7919, case])
        parts = []
        for name, count in JSRT.landmark_counts.items():
            pts = _organ(name, count)
            centre = pts.mean(0)
            scale, aspect = rng.normal(1.0, 0.06), rng.normal(1.0, 0.05)
            pts = centre + (pts - centre) * np.array([scale * aspect, scale / aspect]) + rng.normal(0, 10.0, 2)
            parts.append(pts)
        flat = np.vstack(parts)
        k = rng.uniform(2 * np.pi / 1000, 2 * np.pi / 600, size=(2, 2)) * rng.choice([-1, 1], size=(2, 2))
        flat = flat + 12.0 * np.sin(flat @ k.T + rng.uniform(0, 2 * np.pi, 2))
        ang = np.deg2rad(rng.normal(0.0, 3.0))
        rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
        middle = np.array([FRAME_PX / 2.0, FRAME_PX / 2.0])
        flat = (flat - middle) @ rot.T * rng.normal(1.0, 0.04) + middle + rng.normal(0, 20.0, 2)
        out[f"SYN{case + 1:04d}"] = np.clip(flat, 1.0, FRAME_PX - 2.0)
    return out
