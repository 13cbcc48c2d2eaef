"""The masks propagation starts from, streamed into mask-store shards: the seed annotations and the truth.

Both are written shard by shard as they are read (``ShardWriter``), so memory
stays flat in the number of images, and come back as ``ShardMasks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from denseseg.io.seed_annotations import read_seed_annotations
from denseseg.io.truth import iter_truth_images
from denseseg.phantom.truth_masks import truth_masks
from denseseg.preprocessing.working_frame import WorkingFrame
from denseseg.propagation.store import ShardMasks, ShardWriter


def seed_shards(
    folder: Path,
    frames: Mapping[str, WorkingFrame],
    structures: Sequence[str],
    readable: set[str],
    work: Path,
    shard_size: int,
    shape: tuple[int, int],
) -> tuple[ShardMasks, list[tuple[str, str]]]:
    """(seed masks in the working frame, confidence 1 where a bone is drawn; (filestem, reason) of the rejected).

    ``SeedAnnotationError`` for a folder that cannot be read at all; ``ValueError`` when no seed is usable.
    """
    writer = ShardWriter(work, list(structures), shard_size, prefix="seeds")
    rejects = []
    for annotated in read_seed_annotations(folder, frames, list(structures), readable):
        if annotated.masks is None:
            rejects.append((annotated.filestem, annotated.reason))
        else:
            present = annotated.masks.reshape(len(structures), -1).any(1)
            writer.add(annotated.filestem, annotated.masks, np.where(present, 1.0, np.nan))
    seeds = ShardMasks(writer.close(), list(structures), shape)
    if not len(seeds):
        first = rejects[0][1] if rejects else "none given"
        raise ValueError(f"{folder}: no usable seed annotation ({len(rejects)} rejected: {first})")
    return seeds, rejects


def truth_shards(
    contours: Path,
    frames: Mapping[str, WorkingFrame],
    structures: Sequence[str],
    readable: set[str],
    work: Path,
    shard_size: int,
    shape: tuple[int, int],
) -> ShardMasks:
    """The true masks of the ``readable`` images, rasterised from the phantom's contours in their working frames."""
    writer = ShardWriter(work, list(structures), shard_size, prefix="truth")
    for stem, rows in iter_truth_images(contours):
        if stem in readable:
            writer.add(stem, truth_masks(rows, frames[stem], list(structures)))
    return ShardMasks(writer.close(), list(structures), shape, cache_shards=8)
