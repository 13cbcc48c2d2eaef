"""Physics-flavoured rendering of a posed anatomy into a radiograph.

Why: downstream networks must learn from images that look like X-rays, not
from flat masks. Each bone is a tube seen side-on (a dense cortical shell
around a textured trabecular medulla, so long bones show a bright rim around a
darker marrow cavity), soft tissue a smooth ellipsoidal thickness; overlaps
add. Attenuation becomes brightness through a random exposure, scatter, heel
effect, gamma, the detector's edge-enhancing processing and quantum noise.
Bone is bright, air dark, as in the release. The output is float, about
[0, 1], before collimation and markers. ``benchmarks/realism.py`` measures how
far the result is from real radiographs.
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
    scatter: float = 0.0  # share of the signal scattered into a broad glow
    enhance: float = 0.0  # gain of the detector's unsharp-mask processing (0: none)
    enhance_mm: float = 3.0  # its kernel (Gaussian sigma, mm)

    @classmethod
    def draw(cls, rng: np.random.Generator, imaging: str) -> Exposure:
        """Draw one acquisition; ``imaging`` "v1" (flat chain: no scatter, no processing) or "v2"."""
        noise = (0.008, 0.02) if imaging == "v1" else (0.006, 0.016)
        common = (
            float(rng.uniform(0.9, 1.5)),
            float(rng.uniform(0.75, 1.25)),
            float(rng.uniform(0.05, 0.22)),
            float(rng.uniform(0.0, 0.18)),
            float(rng.uniform(0, 2 * np.pi)),
            float(rng.uniform(*noise)),
        )
        if imaging == "v1":
            return cls(*common)
        return cls(*common, float(rng.uniform(0.05, 0.2)), float(rng.uniform(0.6, 1.2)), float(rng.uniform(2.0, 4.0)))


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


def local_half_width(depth_px: np.ndarray) -> np.ndarray:
    """Half-width of the bone around each pixel (px): the deepest depth within one maximal radius of it.

    For a pixel of a shaft this is the shaft's own radius (its centre line lies within reach), also
    where the bone widens elsewhere, so that a narrow shaft keeps its marrow cavity.
    """
    reach = max(int(np.ceil(float(depth_px.max()))), 1)
    return np.maximum(ndimage.maximum_filter(depth_px, size=2 * reach + 1), 1e-3)


def tube_profile(depth: np.ndarray, half_width: np.ndarray, cortex: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projected chord lengths through a tube: (cortical shell, medulla), both relative to the half-width.

    A bone of local half-width ``w`` seen side-on is a cylinder: at depth ``d`` from its outline the ray
    crosses ``2 sqrt(d (2w - d))`` of bone, of which the medulla of radius ``w - t`` (cortex ``t``)
    takes ``2 sqrt((w - t)^2 - (w - d)^2)``. The shell's chord peaks just inside the outline, which is
    why real long bones show a bright rim around a darker marrow cavity.
    """
    d = np.minimum(depth, half_width)
    outer = np.sqrt(np.clip(d * (2 * half_width - d), 0, None))
    inner_r = np.clip(half_width - cortex, 0, None)
    inner = np.sqrt(np.clip(inner_r**2 - (half_width - d) ** 2, 0, None))
    return (outer - inner) / half_width, inner / half_width


def bone_attenuation(
    bones_px: dict[str, np.ndarray],
    density: dict[str, float],
    shape: tuple[int, int],
    px_per_mm: float,
    texture: np.ndarray,
    long_bones: set[str],
    tube: bool,
) -> np.ndarray:
    """Sum of every bone's projected attenuation (overlaps add up, as in a real projection).

    ``tube`` False is the first phantom's profile (``imaging: v1``): a rounded chord with a thin
    bright rim, near-uniform inside. With ``tube`` each bone is a tube (``tube_profile``): a dense
    cortical shell, about a quarter of the half-width thick in the long bones and a thin shell in the
    carpals, around a medulla of trabecular bone at about a fifth of the cortex's density, whose
    ``texture`` modulates it.
    """
    out = np.zeros(shape, np.float32)
    for name, pts in bones_px.items():
        crop = polygon_crop(pts, shape)
        if crop is None:
            continue
        mask, (r0, c0) = crop
        padded = np.pad(mask, 1, mode="edge")  # a bone cut by the image edge continues beyond it
        depth_px = ndimage.distance_transform_edt(padded)[1:-1, 1:-1].astype(np.float32)
        depth = depth_px / px_per_mm
        tex = texture[r0 : r0 + mask.shape[0], c0 : c0 + mask.shape[1]]
        if tube:
            half_width = local_half_width(depth_px) / px_per_mm
            share = 0.28 if name in long_bones else 0.14
            cortex = np.maximum(share * half_width, 0.35)
            shell, medulla = tube_profile(depth, half_width, cortex)
            value = density[name] * (0.8 * shell + 0.15 * medulla * np.clip(1 + 0.45 * tex, 0.2, None))
        else:
            chord = np.sqrt(np.clip(depth / max(float(depth.max()), 0.5), 0, 1))
            rim = np.exp(-depth / (0.9 if name in long_bones else 0.5))
            value = density[name] * (0.3 * chord * (1 + 0.1 * tex) + 0.4 * rim)
        out[r0 : r0 + mask.shape[0], c0 : c0 + mask.shape[1]] += np.where(mask, value, 0).astype(np.float32)
    return ndimage.gaussian_filter(out, 0.6)


def expose(attenuation: np.ndarray, exposure: Exposure, px_per_mm: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness (bone bright, about 0..1) from total attenuation.

    The chain: attenuation to signal, scatter (a broad glow of the signal, brightest next to the
    limb), heel effect, gamma, the detector's unsharp-mask processing (real radiographs are shown
    strongly edge-enhanced: ``raw + gain (raw - blur(raw))`` with a kernel of a few mm lifts
    structure at the scale of trabeculae and cortices and compresses the range between soft
    tissue and bone), then quantum noise that grows with the signal.
    """
    h, w = attenuation.shape
    signal = 1.0 - np.exp(-exposure.mu * attenuation)
    if exposure.scatter > 0:
        signal = signal + exposure.scatter * ndimage.gaussian_filter(signal, 12.0 * px_per_mm, mode="nearest")
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (xx / w - 0.5) * np.cos(exposure.heel_angle) + (yy / h - 0.5) * np.sin(exposure.heel_angle)
    raw = exposure.background + (1 - exposure.background) * signal
    raw = raw * (1 + exposure.heel * ramp)
    raw = np.clip(raw, 0, None) ** exposure.gamma
    if exposure.enhance > 0:
        blur = ndimage.gaussian_filter(raw, exposure.enhance_mm * px_per_mm, mode="nearest")
        raw = np.clip(raw + exposure.enhance * (raw - blur), 0, None)
    noise = rng.standard_normal((h, w)).astype(np.float32)
    raw = raw + exposure.noise * np.sqrt(np.clip(raw, 0, None) + 0.05) * noise
    return np.clip(raw, 0, None).astype(np.float32)
