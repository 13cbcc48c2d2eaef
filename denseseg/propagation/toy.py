"""A toy segmentation problem with a known answer: bright ellipses on a noisy background.

Tests and benchmarks of label propagation need images whose true masks are
known and that a small network learns in seconds; one ellipse per structure on
a grid, jittered per image, is such a problem.
"""

from __future__ import annotations

import numpy as np


def toy_case(
    n: int, height: int = 48, width: int = 64, n_structures: int = 3, seed: int = 0, noise: float = 0.08
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint16 images (n, H, W) and their boolean masks (n, S, H, W)."""
    rng = np.random.default_rng(seed)
    cols = int(np.ceil(np.sqrt(n_structures * width / height)))
    rows = int(np.ceil(n_structures / cols))
    cell_h, cell_w = height / rows, width / cols
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    images = np.empty((n, height, width), np.uint16)
    masks = np.zeros((n, n_structures, height, width), bool)
    for i in range(n):
        img = 0.15 + 0.1 * (yy / height) + noise * rng.standard_normal((height, width))
        for s in range(n_structures):
            r, c = divmod(s, cols)
            cy = (r + 0.5) * cell_h + rng.uniform(-0.12, 0.12) * cell_h
            cx = (c + 0.5) * cell_w + rng.uniform(-0.12, 0.12) * cell_w
            ay = rng.uniform(0.25, 0.38) * cell_h
            ax = rng.uniform(0.25, 0.38) * cell_w
            inside = ((yy - cy) / ay) ** 2 + ((xx - cx) / ax) ** 2 <= 1.0
            masks[i, s] = inside
            img[inside] += 0.45 + 0.05 * s / max(n_structures - 1, 1)
        images[i] = np.clip(img * 40000, 0, 65535).astype(np.uint16)
    return images, masks
