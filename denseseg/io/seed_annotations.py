"""Reader of seed annotations: manual 8-bit masks per image and bone, listed in ``annotations.csv``.

Layout of a seed folder: ``annotations.csv`` with the columns ``filestem``,
``structure`` and ``mask_path`` (relative to the folder), one row per annotated
bone, and the masks as PNGs at the original image's size (non-zero = bone). A
seed image is used only when every one of its rows is usable; otherwise it is
rejected with every problem named and propagated as an unlabelled image.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from denseseg.io.png import ImageError, read_png
from denseseg.preprocessing.working_frame import WorkingFrame

COLUMNS = ("filestem", "structure", "mask_path")


class SeedAnnotationError(ValueError):
    """The annotation list itself cannot be read; the message is one line naming the file."""


@dataclass(frozen=True)
class SeedImage:
    """One annotated image: its masks in the working frame, or the reason it cannot be used."""

    filestem: str
    masks: np.ndarray | None  # (S, H, W) bool in ``structures`` order; None when rejected
    reason: str | None = None  # why the image's annotation is not used


def read_seed_annotations(
    folder: str | os.PathLike,
    frames: Mapping[str, WorkingFrame],
    structures: Sequence[str],
    readable: Container[str] | None = None,
) -> Iterator[SeedImage]:
    """Every annotated image, in filestem order, with its masks mapped into its working frame.

    Args:
        folder: the seed folder (``annotations.csv`` and the masks).
        frames: the working frame of every ingested image (from the ingest manifest).
        structures: the anatomy's structures, the order of the mask channels.
        readable: the images whose working image decodes (None: all in ``frames``).
    """
    folder = Path(folder)
    csv = folder / "annotations.csv"
    if not csv.exists():
        raise SeedAnnotationError(f"{csv}: seed annotations not found")
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except Exception as err:  # malformed CSV
        raise SeedAnnotationError(f"{csv}: cannot read ({type(err).__name__}: {err})".replace("\n", " ")) from None
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise SeedAnnotationError(
            f"{csv}: missing column(s) {', '.join(sorted(missing))}; found {', '.join(table.columns)}"
        )
    root = folder.resolve()
    structures = list(structures)
    for stem, rows in table.groupby("filestem", sort=True):
        if stem not in frames:
            yield SeedImage(
                stem, None, "seed annotation: image not in the ingest manifest (not ingested or rejected by ingest)"
            )
            continue
        if readable is not None and stem not in readable:
            yield SeedImage(stem, None, "seed annotation: its ingested image is unreadable")
            continue
        masks, problems = _image_masks(folder, root, rows, frames[stem], structures)
        if problems:
            reason = "seed annotation unusable, image propagated as unlabelled: " + "; ".join(problems)
            yield SeedImage(stem, None, reason)
        else:
            yield SeedImage(stem, masks)


def _image_masks(
    folder: Path, root: Path, rows: pd.DataFrame, frame: WorkingFrame, structures: list[str]
) -> tuple[np.ndarray, list[str]]:
    """The working-frame masks of one image's rows and the problems of the rows that failed."""
    masks = np.zeros((len(structures), frame.height, frame.width), bool)
    problems = []
    for row in rows.itertuples(index=False):
        where = f"{row.structure} ({row.mask_path})"
        if row.structure not in structures:
            problems.append(f"unknown structure {row.structure!r}")
            continue
        s = structures.index(row.structure)
        if masks[s].any():
            problems.append(f"{row.structure} annotated twice")
            continue
        path = (folder / row.mask_path).resolve()
        if not path.is_relative_to(root):
            problems.append(f"{where}: mask path outside the seed folder")
            continue
        try:
            mask = read_png(path) > 0
        except ImageError as err:
            problems.append(f"{where}: {err}")
            continue
        if mask.shape != (frame.orig_height, frame.orig_width):
            size = (frame.orig_height, frame.orig_width)
            problems.append(f"{where}: size {mask.shape} differs from the image's {size}")
            continue
        if not mask.any():
            problems.append(f"{where}: empty mask")
            continue
        warped = frame.warp_mask(mask)
        if not warped.any():
            problems.append(f"{where}: mask vanishes at working resolution")
            continue
        masks[s] = warped
    return masks, problems
