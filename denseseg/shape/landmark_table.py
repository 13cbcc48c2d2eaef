"""Convert between the LANDMARKS table (long rows) and dense (items, N, 2) arrays.

Shape maths works on arrays in the anatomy's flat landmark order; a structure an
item lacks is NaN there, so that missing bones never shift other bones' indices.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from denseseg.anatomy import Anatomy


def landmark_array(df: pd.DataFrame, anatomy: Anatomy, items=None) -> tuple[list[str], np.ndarray]:
    """(sorted or given items, float64 array (n_items, anatomy.n_landmarks, 2), NaN where absent)."""
    offsets = anatomy.landmark_offsets()
    unknown = sorted(set(df["structure"]) - set(offsets))
    if unknown:
        raise ValueError(f"landmarks: unknown {anatomy.name} structure(s) {', '.join(unknown)}")
    items = sorted(df["filestem"].unique()) if items is None else list(items)
    row_of = {item: i for i, item in enumerate(items)}
    out = np.full((len(items), anatomy.n_landmarks, 2), np.nan)
    keep = df["filestem"].isin(row_of)
    sub = df[keep]
    if len(sub):
        rows = sub["filestem"].map(row_of).to_numpy()
        start = sub["structure"].map(offsets).to_numpy()
        counts = sub["structure"].map(dict(anatomy.landmark_counts)).to_numpy()
        index = sub["index"].to_numpy().astype(np.int64)
        if (index < 0).any() or (index >= counts).any():
            bad = sub[(index < 0) | (index >= counts)].iloc[0]
            raise ValueError(
                f"landmarks: index {bad['index']} out of range for {bad['structure']} of {bad['filestem']}"
            )
        out[rows, start + index, 0] = sub["x"].to_numpy()
        out[rows, start + index, 1] = sub["y"].to_numpy()
    return items, out


def landmark_frame(items, array: np.ndarray, anatomy: Anatomy) -> pd.DataFrame:
    """Inverse of ``landmark_array``: long rows, structures with any NaN point are dropped."""
    records = []
    offsets = anatomy.landmark_offsets()
    for i, item in enumerate(items):
        for structure, count in anatomy.landmark_counts.items():
            pts = array[i, offsets[structure] : offsets[structure] + count]
            if not np.isfinite(pts).all():
                continue
            records.append(
                pd.DataFrame(
                    {
                        "filestem": item,
                        "structure": structure,
                        "index": np.arange(count, dtype=np.int16),
                        "x": pts[:, 0].astype(np.float32),
                        "y": pts[:, 1].astype(np.float32),
                    }
                )
            )
    if not records:
        return pd.DataFrame({"filestem": [], "structure": [], "index": [], "x": [], "y": []})
    return pd.concat(records, ignore_index=True)


def split_structures(flat: np.ndarray, anatomy: Anatomy) -> dict[str, np.ndarray]:
    """Flat (N, 2) points in anatomy order -> {structure: (N_s, 2)} views."""
    offsets = anatomy.landmark_offsets()
    return {s: flat[offsets[s] : offsets[s] + n] for s, n in anatomy.landmark_counts.items()}


COLUMNS = ["filestem", "structure", "index", "x", "y"]


def structure_rows(filestem: str, structure: str, points: np.ndarray) -> pd.DataFrame:
    """LANDMARKS rows of one item and structure: points in order, index from 0, float32 (x, y)."""
    return pd.DataFrame(
        {
            "filestem": filestem,
            "structure": structure,
            "index": np.arange(len(points), dtype=np.int16),
            "x": points[:, 0].astype(np.float32),
            "y": points[:, 1].astype(np.float32),
        }
    )


def sorted_rows(parts: list[pd.DataFrame], structures) -> pd.DataFrame:
    """LANDMARKS rows concatenated and sorted by item, structure (in ``structures`` order) and index."""
    order = {s: i for i, s in enumerate(structures)}
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    return table.sort_values(
        ["filestem", "structure", "index"],
        key=lambda c: c.map(order) if c.name == "structure" else c,
        kind="stable",
        ignore_index=True,
    )


def index_ranges(indices) -> str:
    """Sorted landmark indices as ranges, e.g. ``[0, 1, 2, 7]`` -> ``"0-2, 7"`` (and back: ``parse_ranges``)."""
    values = sorted(int(i) for i in indices)
    parts: list[str] = []
    start = prev = None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            parts.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = prev = v
    if start is not None:
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ", ".join(parts)


def parse_ranges(text: str) -> list[int]:
    """The indices of an ``index_ranges`` string."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out
