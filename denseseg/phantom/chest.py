"""Chest phantom: the real JSRT shapes with a synthetic radiograph texture.

The JSRT images may not be redistributed, but the Gaggion et al. landmarks
may. This renders each case's real lungs, heart and clavicles (from the shared
landmarks CSV, scaled to 256 x 256) into a radiograph-like image: a soft-tissue
thorax, dark lungs with rib shadows, a bright heart and clavicles, a smooth
exposure field and noise. The masks are the landmark polygons, so the uv maps,
segmentations and landmarks of Table 1's pipeline all have exact ground truth.
Deterministic: each case's random state is seeded by (seed, crc32(name)).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np
from scipy.ndimage import gaussian_filter

from denseseg.io.jsrt import WORK_SIZE, polygon_masks, read_landmarks_csv, to_working


def render_chest(landmarks: np.ndarray, seed: int, name: str, size: int = WORK_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """(image uint16 in 0..4095 with bone bright, masks (5, size, size)) for (166, 2) working-pixel landmarks."""
    rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
    masks = polygon_masks(landmarks, size)
    rl, ll, heart, rcla, lcla = masks
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    lungs = rl | ll
    cy, cx = np.argwhere(lungs).mean(0) / size if lungs.any() else (0.5, 0.5)
    body = ((xx - cx) / 0.46) ** 2 + ((yy - cy - 0.05) / 0.62) ** 2 < 1.0
    image = np.where(body, 0.55, 0.08).astype(np.float32)
    image = gaussian_filter(image, 4.0)
    # lungs: dark, darker towards the outside; ribs as curved bright bands
    image -= 0.32 * lungs * (0.8 + 0.2 * np.abs(xx - cx) / 0.5)
    freq, phase, bend = rng.uniform(38, 46), rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 2.5)
    ribs = np.clip(np.sin(freq * (yy - bend * (xx - cx) ** 2) + phase), 0, None) ** 2
    image += 0.10 * ribs * lungs
    image = np.where(heart, image * 0.4 + 0.42, image)
    image = np.where(rcla | lcla, image * 0.3 + 0.55, image)
    image = gaussian_filter(image, rng.uniform(0.8, 1.3))
    field = gaussian_filter(rng.normal(0, 1, (size, size)).astype(np.float32), 24)
    image *= 1.0 + 0.08 * field / (np.abs(field).max() + 1e-6)
    image += rng.normal(0, 0.015, image.shape).astype(np.float32)
    return np.clip(image * 4095, 0, 4095).astype(np.uint16), masks


def chest_cases(
    csv_path, seed: int, limit: int | None = None, size: int = WORK_SIZE
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, image, masks, landmarks (166, 2) in working pixels) for the cases of the CSV, sorted by name."""
    cases = read_landmarks_csv(csv_path)
    for name in sorted(cases)[:limit]:
        landmarks = to_working(cases[name], size=size)
        image, masks = render_chest(landmarks, seed, name, size)
        yield name, image, masks, landmarks
