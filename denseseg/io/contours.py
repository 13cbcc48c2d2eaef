"""Contour shards (CONTOURS schema): outline point clouds per image and bone, with edge flags.

One shard per mask shard, of the same name and items, so that a stage can pair a
contour shard with its mask shard. Points are working-frame (x, y) in outline
order (see ``denseseg.shape.contours``); ``border`` flags the points where the
radiograph's edge cut the bone.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from denseseg.io.tables import CONTOURS, read_table

Outlines = dict[str, dict[str, np.ndarray]]  # filestem -> structure -> (n, 2) float64
Borders = dict[str, dict[str, np.ndarray]]  # filestem -> structure -> (n,) bool


def contour_frame(
    filestem: str, outlines: Mapping[str, np.ndarray], borders: Mapping[str, np.ndarray], structures: Sequence[str]
) -> pd.DataFrame:
    """The CONTOURS rows of one image, in ``structures`` order (structures without an outline are left out)."""
    parts = [
        pd.DataFrame(
            {
                "filestem": filestem,
                "structure": s,
                "point": np.arange(len(outlines[s]), dtype=np.int32),
                "x": outlines[s][:, 0].astype(np.float32),
                "y": outlines[s][:, 1].astype(np.float32),
                "border": borders[s],
            }
        )
        for s in structures
        if s in outlines
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=CONTOURS.names)


def read_contour_shard(path: str | os.PathLike, structures: Sequence[str] | None = None) -> tuple[Outlines, Borders]:
    """(outlines, edge flags) of every image in one shard, in point order (only ``structures`` when given)."""
    df = read_table(path, CONTOURS).sort_values(["filestem", "structure", "point"], kind="stable")
    outlines: Outlines = {}
    borders: Borders = {}
    for (stem, s), g in df.groupby(["filestem", "structure"], sort=False):
        if structures is None or s in structures:
            outlines.setdefault(stem, {})[s] = g[["x", "y"]].to_numpy(np.float64)
            borders.setdefault(stem, {})[s] = g["border"].to_numpy(bool)
    return outlines, borders


def shard_filestems(path: str | os.PathLike) -> list[str]:
    """The sorted filestems of one contour shard (reads that column only)."""
    return sorted(set(pq.read_table(path, columns=["filestem"]).column(0).to_pylist()))


def contour_filestems(shards: Sequence[Path], known: Collection[str]) -> dict[Path, list[str]]:
    """{shard: its filestems}; ValueError when the shards hold no image or one that ``known`` (the images
    ingest framed) lacks: contours and ingest then come from different runs."""
    stems = {shard: shard_filestems(shard) for shard in shards}
    every = sorted(s for part in stems.values() for s in part)
    folder = Path(shards[0]).parent if shards else Path(".")
    if not every:
        raise ValueError(f"{folder}: contour shards hold no image")
    unknown = sorted(set(every) - set(known))
    if unknown:
        raise ValueError(f"{folder}: {len(unknown)} image(s) not in the ingest manifest, e.g. {unknown[0]}")
    return stems
