"""Reader of ingest's output folder: the manifest's working frames and a check of its images.

The folder holds ``manifest.parquet`` (MANIFEST: one row per kept image, with the
map from original to working pixels) and the working-resolution PNGs it names.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from denseseg.io.png import ImageError, read_png
from denseseg.io.tables import MANIFEST, read_table
from denseseg.preprocessing.working_frame import WorkingFrame


def working_frames(manifest: pd.DataFrame) -> dict[str, WorkingFrame]:
    """{filestem: its working frame} of every manifest row."""
    return {row["filestem"]: WorkingFrame.from_row(row) for row in manifest.to_dict("records")}


def read_working_frames(manifest_path: str | os.PathLike) -> dict[str, WorkingFrame]:
    """The working frames of ingest's ``manifest.parquet``; FileNotFoundError naming it when it is missing."""
    path = Path(manifest_path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; the image frames (letterbox padding) come from ingest")
    return working_frames(read_table(path, MANIFEST))


def working_images(folder: str | os.PathLike, manifest: pd.DataFrame) -> dict[str, tuple[Path, float]]:
    """{filestem: (its working PNG, mm per working px)}; NaN mm where the manifest has no pixel spacing.

    The working frame scales isotropically by ``scale`` working px per original px,
    so a working pixel spans ``pixel_spacing_mm / scale`` mm.
    """
    folder = Path(folder)
    mm = manifest["pixel_spacing_mm"].to_numpy(np.float64) / manifest["scale"].to_numpy(np.float64)
    return {
        stem: (folder / rel, float(m) if np.isfinite(m) and m > 0 else float("nan"))
        for stem, rel, m in zip(manifest["filestem"], manifest["image_path"], mm)
    }


def check_images(
    folder: str | os.PathLike, manifest: pd.DataFrame
) -> tuple[list[str], tuple[int, int], list[tuple[str, str]]]:
    """(readable filestems, their working size, (filestem, reason) of the others): every image decoded once.

    An image is readable when it decodes and has the manifest's size; ``ValueError``
    when none is, or when the readable ones differ in size (ingest must be re-run).
    """
    folder = Path(folder)
    readable, sizes, rejects = [], set(), []
    for row in manifest.itertuples(index=False):
        path = folder / row.image_path
        try:
            pixels = read_png(path)
        except ImageError as err:
            rejects.append((row.filestem, f"ingested image unreadable: {err}"))
            continue
        if pixels.shape != (row.height, row.width):
            rejects.append(
                (row.filestem, f"{path}: size {pixels.shape} differs from the manifest's {(row.height, row.width)}")
            )
            continue
        sizes.add(pixels.shape)
        readable.append(row.filestem)
    if len(sizes) > 1:
        raise ValueError(f"{folder}: images of several working sizes {sorted(sizes)}; re-run ingest")
    if not readable:
        raise ValueError(f"{folder}: no readable ingested image")
    return readable, sizes.pop(), rejects
