"""How well ingest finds collimator bands, against the phantom's blades known from its original pixels.

The phantom renders a blade as exactly 0 in the original 16-bit image (air and
tissue are never 0 there), so the true band of each side is the deepest run of
zeros from that side's edge along each pixel line; the blade's edge is a
straight line, fitted to the runs of the side's central lines (``--central``
of them, 0.6: an adjacent blade, at most 6 % deep, never reaches them), and
its deepest point over the whole side is the true inner depth. Mapped to working pixels
(the original's depth times the frame's scale; mirrored images swap left and
right), it is compared with the depth that ingest stored in the manifest
(``field_top`` ... ``field_right``, ``denseseg.preprocessing.field``).

Reads, under ``--root`` (default: this project), the ingest manifest
(``paths.ingest``) and the release it was made from (``paths.release_root``), so
``dvc repro ingest`` must have run.

Figures: ``sides`` (4 per image), ``true_bands`` (sides whose true band is at
least ``--min-px`` working px deep), ``found`` / ``missed`` among those,
``false_bands`` (a band found where the truth has less than ``--min-px``),
``depth_error_median_px`` and ``depth_error_max_px`` (|found - true| over the
true bands that were found), ``inner_share`` (share of those where the found
edge lies at or inside the true one, within 0.5 px: nothing beyond the blade
counts as exposed).

Usage: python benchmarks/collimation.py [--root DIR] [--min-px 1.0] [--central 0.6]
The last line printed is one JSON object with these figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from denseseg.io.grazpedwri import index_images
from denseseg.io.png import read_png
from denseseg.io.tables import FIELD_COLUMNS

PROJECT = Path(__file__).resolve().parents[1]
SIDES = ("top", "left", "bottom", "right")


def true_depths(original: np.ndarray, central: float) -> dict[str, float]:
    """Per side of an original phantom image, the true blade's inner depth (px): see the module docstring."""
    zero = np.asarray(original) == 0
    out = {}
    for side, lines in zip(SIDES, (zero, zero.T, zero[::-1], zero.T[::-1])):
        exposed = ~lines
        runs = np.where(exposed.any(0), np.argmax(exposed, axis=0), lines.shape[0]).astype(np.float64)
        n = runs.size
        lo, hi = int(n * (0.5 - central / 2)), int(n * (0.5 + central / 2))
        x = np.arange(lo, hi, dtype=np.float64)
        slope, offset = np.polyfit(x, runs[lo:hi], 1)  # a blade's edge is a straight line
        out[side] = float(max(offset, offset + slope * (n - 1), 0.0))  # its deepest point over the side
    return out


def compare(root: Path, min_px: float, central: float) -> pd.DataFrame:
    """One row per image and side: the true band (working px) and the one ingest found."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    paths = params["paths"]
    manifest = pd.read_parquet(root / paths["ingest"] / "manifest.parquet")
    images = index_images(root / paths["release_root"], params["ingest"]["image_folders"])
    rows = []
    for row in manifest.itertuples(index=False):
        truth = true_depths(read_png(images[row.filestem]), central)
        if row.flipped:  # the working image is the mirror of the stored one
            truth["left"], truth["right"] = truth["right"], truth["left"]
        found = dict(zip(SIDES, (float(getattr(row, c)) for c in FIELD_COLUMNS)))
        for side in SIDES:
            rows.append((row.filestem, side, truth[side] * float(row.scale), found[side]))
    out = pd.DataFrame(rows, columns=["filestem", "side", "true_px", "found_px"])
    out["true_band"] = out["true_px"] >= min_px
    out["found_band"] = out["found_px"] > 0
    return out


def figures(table: pd.DataFrame) -> dict:
    true, found = table["true_band"], table["found_band"]
    hits = table[true & found]
    error = (hits["found_px"] - hits["true_px"]).to_numpy()
    return {
        "images": int(table["filestem"].nunique()),
        "sides": len(table),
        "true_bands": int(true.sum()),
        "found": int((true & found).sum()),
        "missed": int((true & ~found).sum()),
        "false_bands": int((~true & found).sum()),
        "depth_error_median_px": float(np.median(np.abs(error))) if len(error) else float("nan"),
        "depth_error_max_px": float(np.abs(error).max()) if len(error) else float("nan"),
        "inner_share": float((error >= -0.5).mean()) if len(error) else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=PROJECT)
    parser.add_argument("--min-px", type=float, default=1.0, help="a true band at least this deep (working px)")
    parser.add_argument("--central", type=float, default=0.6, help="share of a side's lines the edge is fitted on")
    args = parser.parse_args()
    table = compare(args.root, args.min_px, args.central)
    out = figures(table)
    print(
        f"{out['images']} images, {out['sides']} sides: {out['true_bands']} true bands of at least {args.min_px} px, "
        f"{out['found']} found, {out['missed']} missed, {out['false_bands']} found where there is none"
    )
    print(
        f"depth error over the found bands: median {out['depth_error_median_px']:.2f} px, "
        f"max {out['depth_error_max_px']:.2f} px; found edge at or inside the true one: {out['inner_share']:.0%}"
    )
    missed = table[table["true_band"] & ~table["found_band"]].sort_values("true_px", ascending=False)
    if len(missed):
        print("\nthe deepest missed bands (working px):")
        print(missed.head(8).round(2).to_string(index=False))
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
