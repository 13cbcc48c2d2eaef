"""What real wrist radiographs carry besides anatomy: casts, metal, collimation, L/R markers.

Why: the real release is full of these (28 % casts, 3.5 % metal, burned-in
markers, black collimator borders), and ingest and segmentation must cope with
them. Each function draws one artefact into an attenuation map or the final
image, from explicit seeded parameters.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from denseseg.phantom.raster import polygon_mask


def cast_attenuation(
    outline_px: np.ndarray, shape: tuple[int, int], px_per_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """A plaster/fibreglass cast: a thick shell around the forearm, bright rim, woven texture."""
    mask = polygon_mask(outline_px, shape)
    if not mask.any():
        return np.zeros(shape, np.float32)
    depth_mm = ndimage.distance_transform_edt(mask).astype(np.float32) / px_per_mm
    shell = 0.35 + 0.9 * np.exp(-depth_mm / rng.uniform(2.0, 3.5))
    period = rng.uniform(1.6, 2.8) * px_per_mm
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    a = rng.uniform(0, np.pi)
    u = xx * np.cos(a) + yy * np.sin(a)
    v = -xx * np.sin(a) + yy * np.cos(a)
    weave = np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period)
    grain = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), 1.5)
    strength = rng.uniform(0.35, 0.6)
    return (mask * strength * shell * (1 + 0.10 * weave + 0.25 * grain)).astype(np.float32)


def metal_attenuation(
    anchor_px: np.ndarray, axis_deg: float, shape: tuple[int, int], px_per_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Osteosynthesis material near ``anchor_px`` (the distal radius): K-wires or a small plate with screws."""
    canvas = Image.new("F", (shape[1], shape[0]), 0.0)
    draw = ImageDraw.Draw(canvas)
    x0, y0 = float(anchor_px[0]), float(anchor_px[1])
    if rng.random() < 0.6:  # one or two crossed Kirschner wires
        for _ in range(int(rng.integers(1, 3))):
            ang = np.deg2rad(axis_deg + rng.uniform(-60, 60) - 90)
            length = rng.uniform(35, 60) * px_per_mm
            dx, dy = np.cos(ang) * length / 2, np.sin(ang) * length / 2
            ox, oy = rng.normal(0, 4, size=2) * px_per_mm
            draw.line(
                [(x0 + ox - dx, y0 + oy - dy), (x0 + ox + dx, y0 + oy + dy)],
                fill=1.0,
                width=max(2, int(round(1.6 * px_per_mm))),
            )
    else:  # a plate along the shaft with screws
        ang = np.deg2rad(axis_deg + 90)
        length, half_w = rng.uniform(30, 45) * px_per_mm, 3.5 * px_per_mm
        ux, uy = np.cos(ang), np.sin(ang)
        cx, cy = x0 + ux * length * 0.45, y0 + uy * length * 0.45
        corners = [
            (cx + sx * ux * length / 2 - sy * uy * half_w, cy + sx * uy * length / 2 + sy * ux * half_w)
            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
        draw.polygon(corners, fill=0.7)
        for t in np.linspace(-0.4, 0.4, int(rng.integers(3, 5))):
            sx, sy = cx + ux * t * length, cy + uy * t * length
            r = 1.8 * px_per_mm
            draw.ellipse([sx - r, sy - r, sx + r, sy + r], fill=1.0)
    return np.asarray(canvas, dtype=np.float32) * rng.uniform(4.0, 6.0)


def collimation_mask(shape: tuple[int, int], rng: np.random.Generator, p_visible: float = 0.75) -> np.ndarray:
    """True inside the exposed field; the collimator leaves black, slightly tilted borders."""
    h, w = shape
    if rng.random() >= p_visible:
        return np.ones(shape, bool)
    margins = rng.uniform(0.0, 0.06, size=4) * np.array([h, h, w, w])
    margins[rng.random(4) < 0.35] = 0.0
    tilt = np.deg2rad(rng.normal(0, 0.8))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    u = (xx - cx) * np.cos(tilt) + (yy - cy) * np.sin(tilt) + cx
    v = -(xx - cx) * np.sin(tilt) + (yy - cy) * np.cos(tilt) + cy
    return (v >= margins[0]) & (v <= h - 1 - margins[1]) & (u >= margins[2]) & (u <= w - 1 - margins[3])


def burn_marker(image: np.ndarray, letter: str, inside: np.ndarray, rng: np.random.Generator) -> None:
    """Burn a lead-marker letter ('L'/'R'), sometimes boxed, at full white into a corner of the field (in place)."""
    h, w = image.shape
    size = max(10, int(round(h * rng.uniform(0.045, 0.075))))
    font = ImageFont.load_default(size=size)
    pad = max(2, size // 5)
    tile = Image.new("L", (size + 2 * pad, int(size * 1.3) + 2 * pad), 0)
    draw = ImageDraw.Draw(tile)
    draw.text((pad, pad), letter, fill=255, font=font)
    if rng.random() < 0.5:
        draw.rectangle([0, 0, tile.width - 1, tile.height - 1], outline=255, width=max(1, size // 12))
    glyph = np.asarray(tile) > 127
    th, tw = glyph.shape
    rows, cols = np.nonzero(inside)
    if th >= h or tw >= w or rows.size == 0:
        return
    top = int(
        np.clip(rng.choice([rows.min() + 0.03 * h, rows.max() - th - 0.03 * h, h * rng.uniform(0.2, 0.7)]), 0, h - th)
    )
    side_left = rng.random() < 0.5
    left = int(np.clip(cols.min() + 0.02 * w if side_left else cols.max() - tw - 0.02 * w, 0, w - tw))
    region = image[top : top + th, left : left + tw]
    region[glyph] = np.iinfo(image.dtype).max
