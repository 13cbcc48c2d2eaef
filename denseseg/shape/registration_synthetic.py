"""Synthetic wrist-like outlines with known dense correspondence, for registration tests and benchmarks.

The phantom is the pipeline's real test bed; this is its small, fast cousin for
the registration code alone: 17 smooth closed outlines laid out roughly like a
left wrist, each image a seeded similarity transform plus a smooth non-rigid warp
of the same atlas, so every atlas point's true position is known in every image.
Coordinates are working pixels, (x, y); ``scale`` shrinks the 384 x 224 layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denseseg.anatomy import WRIST
from denseseg.phantom.atlas import DENSE_PER_LANDMARK
from denseseg.shape.quality import rasterise_polygon

# centre (x, y) and semi-axes (a, b) at 384 x 224, in WRIST order
_LAYOUT = {
    "radius": ((150, 330), (34, 48)),
    "ulna": ((68, 335), (20, 44)),
    "radius_epiphysis": ((148, 270), (36, 8)),
    "ulna_epiphysis": ((72, 276), (15, 6)),
    "scaphoid": ((160, 225), (14, 10)),
    "lunate": ((125, 235), (12, 11)),
    "triquetrum": ((95, 225), (11, 10)),
    "pisiform": ((85, 205), (8, 8)),
    "trapezium": ((182, 190), (12, 10)),
    "trapezoid": ((158, 188), (9, 9)),
    "capitate": ((130, 195), (12, 16)),
    "hamate": ((100, 190), (12, 14)),
    "metacarpal_1": ((190, 135), (9, 34)),
    "metacarpal_2": ((160, 120), (9, 45)),
    "metacarpal_3": ((130, 115), (9, 47)),
    "metacarpal_4": ((102, 122), (8, 42)),
    "metacarpal_5": ((75, 132), (8, 38)),
}


def atlas(scale: float = 1.0) -> dict[str, np.ndarray]:
    """The atlas outline of each bone: dense points (8 per design landmark), fixed shapes."""
    out = {}
    for k, name in enumerate(WRIST.structures):
        (cx, cy), (a, b) = _LAYOUT[name]
        n = DENSE_PER_LANDMARK * WRIST.landmark_counts[name]
        th = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
        rng = np.random.default_rng(1000 + k)  # fixed per bone, not per call
        r = 1.0 + 0.08 * np.cos(2 * th + rng.uniform(0, 6.3)) + 0.05 * np.cos(3 * th + rng.uniform(0, 6.3))
        pts = np.column_stack([cx + a * r * np.cos(th), cy - b * r * np.sin(th)])
        out[name] = pts * scale
    return out


@dataclass(frozen=True)
class SyntheticImage:
    masks: np.ndarray  # (17, H, W) bool
    truth: dict[str, np.ndarray]  # dense outline per bone, same point order as the atlas


def warp_points(points: np.ndarray, params: dict, centre: np.ndarray) -> np.ndarray:
    q = points - centre
    for amp, kx, ky, ph, axis in params["waves"]:  # smooth field: a few long-wavelength sinusoids
        q[:, axis] += amp * np.sin(kx * q[:, 0] + ky * q[:, 1] + ph)
    c, s = np.cos(params["angle"]), np.sin(params["angle"])
    rot = np.array([[c, -s], [s, c]])
    return params["scale"] * q @ rot.T + centre + params["shift"]


def random_warp(rng: np.random.Generator, scale: float = 1.0, amplitude: float = 2.0) -> dict:
    waves = []
    for axis in (0, 0, 1, 1):
        wavelength = rng.uniform(120, 220) * scale
        direction = rng.uniform(0, np.pi)
        k = 2 * np.pi / wavelength
        waves.append(
            (
                rng.uniform(0.5, 1.0) * amplitude * scale,
                k * np.cos(direction),
                k * np.sin(direction),
                rng.uniform(0, 2 * np.pi),
                axis,
            )
        )
    return {
        "angle": np.radians(rng.uniform(-6, 6)),
        "scale": rng.uniform(0.92, 1.08),
        "shift": rng.uniform(-6, 6, size=2) * scale,
        "waves": waves,
    }


def synthetic_image(seed: int, scale: float = 1.0, amplitude: float = 2.0) -> SyntheticImage:
    """One image: the atlas under a seeded similarity and smooth warp, with its masks."""
    rng = np.random.default_rng(seed)
    height, width = int(round(384 * scale)), int(round(224 * scale))
    params = random_warp(rng, scale, amplitude)
    centre = np.array([width / 2.0, height / 2.0])
    truth, masks = {}, np.zeros((len(WRIST.structures), height, width), bool)
    for s, (name, pts) in enumerate(atlas(scale).items()):
        warped = warp_points(pts.copy(), params, centre)
        truth[name] = warped
        masks[s] = rasterise_polygon(warped, (height, width))
    return SyntheticImage(masks, truth)


def write_synthetic_inputs(
    images: dict[str, SyntheticImage],
    mask_dir,
    manifest_path,
    truth_path,
    patients: dict[str, str] | None = None,
    shard_size: int = 4,
) -> None:
    """Write images as the pipeline's inputs: mask-store shards, a manifest, truth contours.

    The frames are the identity (working = original pixels), so truth needs no mapping.
    Paths are given by the caller; this knows no project layout.
    """
    import pandas as pd

    from denseseg.io.mask_store import mask_rows, write_mask_shard
    from denseseg.io.tables import FIELD_COLUMNS, MANIFEST, TRUTH_CONTOURS, write_table

    stems = sorted(images)
    for k in range(0, len(stems), shard_size):
        rows = [r for s in stems[k : k + shard_size] for r in mask_rows(s, images[s].masks, WRIST.structures)]
        write_mask_shard(Path(mask_dir) / f"shard-{k // shard_size:04d}.parquet", rows)
    manifest = []
    for i, s in enumerate(stems):
        h, w = images[s].masks.shape[1:]
        manifest.append(
            {
                "filestem": s,
                "patient_id": (patients or {}).get(s, f"{i:04d}"),
                "study_number": 1,
                "age": 12.0,
                "sex": "M",
                "laterality": "L",
                "flipped": False,
                "projection": 1,
                "cast": False,
                "metal": False,
                "fracture_visible": False,
                "osteopenia": False,
                "ao_classification": "",
                "device_manufacturer": "synthetic",
                "pixel_spacing_mm": 0.144,
                "orig_height": h,
                "orig_width": w,
                "height": h,
                "width": w,
                "scale": 1.0,
                "pad_top": 0.0,
                "pad_left": 0.0,
                **dict.fromkeys(FIELD_COLUMNS, 0.0),
                "image_path": f"images/{s}.png",
            }
        )
    write_table(pd.DataFrame(manifest), manifest_path, MANIFEST)
    truth = [
        pd.DataFrame(
            {
                "filestem": s,
                "structure": b,
                "point": np.arange(len(p), dtype=np.int32),
                "x": p[:, 0].astype(np.float32),
                "y": p[:, 1].astype(np.float32),
            }
        )
        for s in stems
        for b, p in images[s].truth.items()
    ]
    write_table(pd.concat(truth, ignore_index=True), truth_path, TRUTH_CONTOURS)
