"""Wrist shape sets with exact ground truth for tests and benchmarks of the uv maps.

Uses the phantom's atlas bones (dense contours, 8 per design landmark) and
varies them per case: a global similarity, a per-bone similarity jitter and a
smooth normal perturbation of each contour. Masks are the dense contour
polygons at pixel centres and the landmarks every 8th dense point, exactly as
the phantom defines its truth. Not the phantom's renderer: no image, no growth
model, just shapes, so it is fast and independent of the release writer.
"""

from __future__ import annotations

import numpy as np
from skimage.draw import polygon2mask

from denseseg.anatomy import WRIST
from denseseg.phantom.atlas import DENSE_PER_LANDMARK


def _rotation(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def wrist_cases(n: int, seed: int, height: int = 384, width: int = 224):
    """Yield (name, masks (17, H, W) bool, landmarks (710, 2)) for ``n`` varied wrists."""
    from denseseg.phantom.atlas import atlas

    bones = atlas()
    allp = np.concatenate([bones[b].points for b in WRIST.structures])
    lo, hi = allp.min(0), allp.max(0)
    px_per_mm = 0.9 * min(height / (hi[1] - lo[1]), width / (hi[0] - lo[0]))
    centre_mm, centre_px = (lo + hi) / 2, np.array([width, height]) / 2 - 0.5
    for case in range(n):
        rng = np.random.default_rng([seed, case])
        g_rot, g_scale = _rotation(rng.uniform(-4, 4)), rng.uniform(0.93, 1.03)
        g_shift = rng.uniform(-4, 4, 2)
        masks = np.zeros((len(WRIST.structures), height, width), bool)
        landmarks = []
        for i, name in enumerate(WRIST.structures):
            dense = bones[name].points
            c = dense.mean(0)
            local = (dense - c) @ _rotation(rng.uniform(-4, 4)).T * rng.uniform(0.95, 1.05) + c
            t = np.linspace(0, 2 * np.pi, len(dense), endpoint=False)
            tangent = np.roll(local, -1, 0) - np.roll(local, 1, 0)
            normal = np.stack([tangent[:, 1], -tangent[:, 0]], 1)
            normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
            bump = sum(rng.normal(0, 0.25) * np.sin(k * t + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4))
            local = local + bump[:, None] * normal + rng.uniform(-1, 1, 2)
            px = ((local - centre_mm) @ g_rot.T * g_scale) * px_per_mm + centre_px + g_shift
            masks[i] = polygon2mask((height, width), px[:, ::-1])
            landmarks.append(px[::DENSE_PER_LANDMARK])
        yield f"wrist{case:04d}", masks, np.concatenate(landmarks)
