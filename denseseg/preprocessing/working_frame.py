"""The map between an original radiograph and its working-resolution image.

Ingest mirrors right hands to left, scales isotropically so the image fits the
working size, and pads the rest (letterbox). Keeping one isotropic scale means a
distance in working pixels converts to mm with one factor. Coordinates are
(x, y) = (column, row) with pixel centres at integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class WorkingFrame:
    orig_height: int
    orig_width: int
    height: int
    width: int
    flipped: bool
    scale: float  # working px per original px
    pad_top: float
    pad_left: float
    # collimator bands found by ingest (``denseseg.preprocessing.field``): depth in working px per side
    # (top, left, bottom, right); 0 where the radiograph is exposed up to its edge
    field: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)

    @classmethod
    def fit(cls, orig_height: int, orig_width: int, height: int, width: int, flipped: bool) -> WorkingFrame:
        """The largest isotropic scale that fits, centred."""
        if min(orig_height, orig_width, height, width) <= 0:
            raise ValueError(f"image sizes must be positive: {orig_height}x{orig_width} -> {height}x{width}")
        scale_y, scale_x = height / orig_height, width / orig_width
        scale = min(scale_y, scale_x)
        # The constraining axis has no padding, exactly (no rounding residue).
        pad_top = 0.0 if scale == scale_y else (height - orig_height * scale) / 2.0
        pad_left = 0.0 if scale == scale_x else (width - orig_width * scale) / 2.0
        return cls(orig_height, orig_width, height, width, bool(flipped), float(scale), float(pad_top), float(pad_left))

    @classmethod
    def from_row(cls, row) -> WorkingFrame:
        """From a manifest row (mapping or namedtuple with the manifest columns)."""
        get = row.__getitem__ if hasattr(row, "__getitem__") else lambda k: getattr(row, k)
        return cls(
            int(get("orig_height")),
            int(get("orig_width")),
            int(get("height")),
            int(get("width")),
            bool(get("flipped")),
            float(get("scale")),
            float(get("pad_top")),
            float(get("pad_left")),
            tuple(float(get(f"field_{side}")) for side in ("top", "left", "bottom", "right")),
        )

    @property
    def mm_per_px_factor(self) -> float:
        """Multiply by the original pixel spacing to get mm per working pixel."""
        return 1.0 / self.scale

    def to_working(self, points: np.ndarray) -> np.ndarray:
        """Original (x, y) -> working (x, y); works on (..., 2) arrays."""
        p = np.asarray(points, dtype=np.float64).copy()
        if self.flipped:
            p[..., 0] = (self.orig_width - 1) - p[..., 0]
        p[..., 0] = (p[..., 0] + 0.5) * self.scale - 0.5 + self.pad_left
        p[..., 1] = (p[..., 1] + 0.5) * self.scale - 0.5 + self.pad_top
        return p

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Working (x, y) -> original (x, y); the inverse of ``to_working``."""
        p = np.asarray(points, dtype=np.float64).copy()
        p[..., 0] = (p[..., 0] + 0.5 - self.pad_left) / self.scale - 0.5
        p[..., 1] = (p[..., 1] + 0.5 - self.pad_top) / self.scale - 0.5
        if self.flipped:
            p[..., 0] = (self.orig_width - 1) - p[..., 0]
        return p

    def warp_image(self, image: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Resample an original image (2-D) to the working frame as float32, with area averaging."""
        if image.shape != (self.orig_height, self.orig_width):
            raise ValueError(
                f"image of shape {image.shape} does not match the frame's {(self.orig_height, self.orig_width)}"
            )
        src = np.ascontiguousarray(image[:, ::-1] if self.flipped else image, dtype=np.float32)
        pil = Image.fromarray(src, mode="F")
        # Reduce first with a box filter (anti-aliasing), then place with an exact affine.
        factor = int(max(1, np.floor(1.0 / self.scale)))
        if factor > 1:
            pil = pil.reduce(factor)
        # PIL rounds the reduced size up, so reduced coordinates are exactly original / factor.
        inv = 1.0 / (self.scale * factor)
        coeffs = (inv, 0.0, -self.pad_left * inv, 0.0, inv, -self.pad_top * inv)
        out = pil.transform(
            (self.width, self.height),
            Image.Transform.AFFINE,
            coeffs,
            resample=Image.Resampling.BILINEAR,
            fillcolor=fill,
        )
        return np.asarray(out, dtype=np.float32)

    def footprint_box(self) -> tuple[float, float, float, float]:
        """(top, left, bottom, right) pixel edges of the working pixels the original covers.

        Taken from the resampled footprint (``warp_mask`` of the whole original), the
        very pixels an image or mask can occupy, so an outline cut there runs exactly
        along the box.
        """
        footprint = self.warp_mask(np.ones((self.orig_height, self.orig_width), dtype=bool))
        rows, cols = np.flatnonzero(footprint.any(1)), np.flatnonzero(footprint.any(0))
        if not len(rows):
            return (-0.5, -0.5, self.height - 0.5, self.width - 0.5)
        return (rows[0] - 0.5, cols[0] - 0.5, rows[-1] + 0.5, cols[-1] + 0.5)

    def view_box(self) -> tuple[float, float, float, float]:
        """(top, left, bottom, right) pixel edges of the working pixels that show the exposed radiograph.

        Why: a bone cut by the radiograph's edge ends at this box, not at the working
        frame's edge: the footprint (inside any letterbox padding) less the collimator
        bands that ingest found (``field``).
        """
        top, left, bottom, right = self.footprint_box()
        band_top, band_left, band_bottom, band_right = self.field
        return (top + band_top, left + band_left, bottom - band_bottom, right - band_right)

    def warp_mask(self, mask: np.ndarray) -> np.ndarray:
        """Resample a boolean original-resolution mask to the working frame (area fraction >= 0.5)."""
        return self.warp_image(mask.astype(np.float32)) >= 0.5
