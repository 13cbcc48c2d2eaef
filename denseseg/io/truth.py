"""Readers of the phantom's truth contours (TRUTH_CONTOURS): dense atlas points per image and bone.

The points are (x, y) in original pixels of the stored image, in atlas order
(one row group per image and bone, grouped by filestem); only evaluation and
benchmarks read them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from denseseg.io.tables import TRUTH_CONTOURS, check_schema, read_table
from denseseg.preprocessing.working_frame import WorkingFrame


def read_truth_contours(path: str | os.PathLike, filestems: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """{filestem: {structure: (n, 2) float64}} for the given images, in atlas point order."""
    df = read_table(path, TRUTH_CONTOURS, filters=[("filestem", "in", list(filestems))])
    df = df.sort_values(["filestem", "structure", "point"], kind="stable")
    out: dict[str, dict[str, np.ndarray]] = {}
    for (stem, s), g in df.groupby(["filestem", "structure"], sort=False):
        out.setdefault(stem, {})[s] = g[["x", "y"]].to_numpy(np.float64)
    return out


def read_working_truth(
    path: str | os.PathLike, filestems: Sequence[str], frames: Mapping[str, WorkingFrame]
) -> dict[str, dict[str, np.ndarray]]:
    """``read_truth_contours`` mapped into each image's working frame (images without a frame are left out)."""
    truth = read_truth_contours(path, filestems) if len(filestems) else {}
    return {
        stem: {s: frames[stem].to_working(points) for s, points in parts.items()}
        for stem, parts in truth.items()
        if stem in frames
    }


def iter_truth_images(path: str | os.PathLike) -> Iterator[tuple[str, pd.DataFrame]]:
    """(filestem, its rows) for every image, streamed a row group at a time (memory flat in the images).

    Raises ``SchemaError`` for a table of another schema and ``ValueError`` when
    the rows of an image are not together.
    """
    done: set[str] = set()
    pending: list[pd.DataFrame] = []  # rows of the image that may continue in the next row group

    def emit(part: pd.DataFrame) -> tuple[str, pd.DataFrame]:
        stem = part["filestem"].iloc[0]
        if stem in done:
            raise ValueError(f"{path}: rows of {stem} are not together (truth must be grouped by filestem)")
        done.add(stem)
        return stem, part

    source = pq.ParquetFile(path)
    for g in range(source.num_row_groups):
        frame = check_schema(source.read_row_group(g), TRUTH_CONTOURS, str(path)).to_pandas()
        if frame.empty:
            continue
        if pending and frame["filestem"].iloc[0] != pending[0]["filestem"].iloc[0]:
            yield emit(pd.concat(pending, ignore_index=True))
            pending = []
        stems = frame["filestem"].to_numpy()
        starts = np.flatnonzero(np.r_[True, stems[1:] != stems[:-1]])
        bounds = np.r_[starts, len(stems)]
        for a, b in zip(bounds[:-1], bounds[1:]):
            part = frame.iloc[a:b]
            if b == len(stems):
                pending.append(part)
            else:
                if pending:
                    part = pd.concat([*pending, part], ignore_index=True)
                    pending = []
                yield emit(part)
    if pending:
        yield emit(pd.concat(pending, ignore_index=True))
