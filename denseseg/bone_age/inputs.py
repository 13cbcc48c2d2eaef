"""The inputs of the bone-age experiment, read and checked: ages, the working size, landmark tables.

Each reader raises ``ValueError`` naming the file and the item that is wrong,
so that the stage can say it in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from denseseg.anatomy import Anatomy
from denseseg.io.tables import LANDMARKS, MANIFEST, TRUTH_IMAGES, read_table
from denseseg.shape.landmark_table import landmark_array


def chronological_ages(manifest_path: Path, items: list[str]) -> tuple[int, int, dict[str, float]]:
    """(height, width, {item: chronological age in months}) from the ingest manifest; one working size only."""
    manifest = read_table(manifest_path, MANIFEST).drop_duplicates("filestem").set_index("filestem")
    for item in items:
        if item not in manifest.index or not np.isfinite(manifest.at[item, "age"]):
            raise ValueError(f"{manifest_path}: no chronological age for item {item!r}")
    frames = set(zip(manifest.loc[items, "height"], manifest.loc[items, "width"]))
    if len(frames) != 1:
        raise ValueError(f"{manifest_path}: the items come in several working sizes {sorted(frames)}")
    ((height, width),) = frames
    return int(height), int(width), {it: 12.0 * float(manifest.at[it, "age"]) for it in items}


def bone_ages(truth_images: Path, items: list[str]) -> dict[str, float]:
    """{item: bone age in months} from the phantom truth's images table."""
    truth = read_table(truth_images, TRUTH_IMAGES).drop_duplicates("filestem").set_index("filestem")
    for item in items:
        if item not in truth.index or not np.isfinite(truth.at[item, "bone_age"]):
            raise ValueError(f"{truth_images}: no bone age for item {item!r} (is the truth of another release?)")
    return {it: 12.0 * float(truth.at[it, "bone_age"]) for it in items}


def landmarks_of(path: Path, items: list[str], anatomy: Anatomy, required: bool) -> dict[str, np.ndarray]:
    """{item: (N, 2) landmarks} of a LANDMARKS table; with ``required`` every item must have some."""
    table = read_table(path, LANDMARKS)
    try:
        stems, points = landmark_array(table[table["filestem"].isin(items)], anatomy, items)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    found = np.isfinite(points).any(axis=(1, 2))
    if required and not found.all():
        raise ValueError(f"{path}: no landmarks for item {stems[int(np.argmin(found))]!r}")
    return {stem: points[i] for i, stem in enumerate(stems) if found[i]}
