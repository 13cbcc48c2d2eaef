"""Physics-flavoured rendering of a posed anatomy into a radiograph.

Why: downstream networks must learn from images that look like X-rays, not
from flat masks. Each bone contributes a projected thickness (rounded profile,
brighter cortical rim, trabecular texture), soft tissue a smooth ellipsoidal
thickness; attenuation is turned into brightness with a random exposure,
gamma, heel effect and quantum noise. Bone is bright, air dark, as in the
release. The output is float in [0, 1] before collimation and markers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from denseseg.phantom.raster import polygon_crop, polygon_mask


@dataclass(frozen=True)
class Exposure:
    """Random acquisition settings of one image."""

    mu: float  # attenuation scale (kV / dose)
    gamma: float
    background: float  # brightness of air
    heel: float  # linear brightness gradient across the field
    heel_angle: float
    noise: float

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Exposure:
        return cls(
            float(rng.uniform(0.9, 1.5)),
            float(rng.uniform(0.75, 1.25)),
            float(rng.uniform(0.05, 0.22)),
            float(rng.uniform(0.0, 0.18)),
            float(rng.uniform(0, 2 * np.pi)),
            float(rng.uniform(0.008, 0.02)),
        )


def band_noise(shape: tuple[int, int], fine_px: float, coarse_px: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean unit-variance band-pass noise (trabecular texture)."""
    white = rng.standard_normal(shape).astype(np.float32)
    band = ndimage.gaussian_filter(white, max(fine_px, 0.5)) - ndimage.gaussian_filter(white, coarse_px)
    return band / max(float(band.std()), 1e-6)


def tissue_thickness(outline_px: np.ndarray, shape: tuple[int, int], px_per_mm: float) -> np.ndarray:
    """Projected soft-tissue thickness (0..1): elliptical cross-section inside the limb outline."""
    mask = polygon_mask(outline_px, shape)
    depth = ndimage.distance_transform_edt(mask).astype(np.float32) / (14.0 * px_per_mm)
    return np.sqrt(np.clip(depth * (2 - np.minimum(depth, 1.0)), 0.0, 1.0))


def bone_attenuation(
    bones_px: dict[str, np.ndarray],
    density: dict[str, float],
    shape: tuple[int, int],
    px_per_mm: float,
    texture: np.ndarray,
    long_bones: set[str],
) -> np.ndarray:
    """Sum of every bone's projected attenuation (overlaps add up, as in a real projection)."""
    out = np.zeros(shape, np.float32)
    for name, pts in bones_px.items():
        crop = polygon_crop(pts, shape)
        if crop is None:
            continue
        mask, (r0, c0) = crop
        padded = np.pad(mask, 1, mode="edge")  # a bone cut by the image edge continues beyond it
        depth = ndimage.distance_transform_edt(padded)[1:-1, 1:-1].astype(np.float32) / px_per_mm
        radius = max(float(depth.max()), 0.5)
        chord = np.sqrt(np.clip(depth / radius, 0, 1))
        cortex = 0.9 if name in long_bones else 0.5
        rim = np.exp(-depth / cortex)
        tex = texture[r0 : r0 + mask.shape[0], c0 : c0 + mask.shape[1]]
        value = density[name] * (0.3 * chord * (1 + 0.1 * tex) + 0.4 * rim)
        out[r0 : r0 + mask.shape[0], c0 : c0 + mask.shape[1]] += np.where(mask, value, 0).astype(np.float32)
    return ndimage.gaussian_filter(out, 0.6)


def expose(attenuation: np.ndarray, exposure: Exposure, rng: np.random.Generator) -> np.ndarray:
    """Brightness in [0, 1] (bone bright) from total attenuation, with heel effect and quantum noise."""
    h, w = attenuation.shape
    signal = 1.0 - np.exp(-exposure.mu * attenuation)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx / w - 0.5) * np.cos(exposure.heel_angle) + (yy / h - 0.5) * np.sin(exposure.heel_angle)
    raw = exposure.background + (1 - exposure.background) * signal
    raw = raw * (1 + exposure.heel * ramp)
    raw = np.clip(raw, 0, None) ** exposure.gamma
    noise = rng.standard_normal((h, w)).astype(np.float32)
    raw = raw + exposure.noise * np.sqrt(np.clip(raw, 0, None) + 0.05) * noise
    return np.clip(raw, 0, None).astype(np.float32)
