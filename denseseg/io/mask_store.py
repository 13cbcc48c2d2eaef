"""Sparse multi-label mask store: per item and structure, the bounding-box crop as packed bits.

Masks of overlapping bones cannot live in one label image, and full
(structures, H, W) arrays waste space. A shard is one Parquet file with a row per
(item, structure): the crop's offset and size and ``np.packbits`` of the crop.
Reading one item filters on ``item`` without loading the whole shard.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from denseseg.io.atomic import atomic_file

MASK_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("structure", pa.string()),
        ("height", pa.int32()),  # full image size
        ("width", pa.int32()),
        ("top", pa.int32()),  # crop offset
        ("left", pa.int32()),
        ("crop_height", pa.int32()),
        ("crop_width", pa.int32()),
        ("bits", pa.binary()),  # np.packbits of the boolean crop, row-major
        ("confidence", pa.float32()),  # NaN when not applicable
    ]
)


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, left, bottom, right), inclusive, of a 2-D boolean mask; None when empty."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if len(rows) == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def mask_rows(item: str, masks: np.ndarray, structures: Sequence[str], confidence=None) -> list[dict]:
    """Encode a (S, H, W) boolean stack into rows; empty masks are omitted."""
    if masks.ndim != 3 or masks.shape[0] != len(structures):
        raise ValueError(f"{item}: masks of shape (S={len(structures)}, H, W) expected, got {masks.shape}")
    _, height, width = masks.shape
    rows = []
    for s, name in enumerate(structures):
        mask = masks[s].astype(bool, copy=False)
        box = mask_bbox(mask)
        if box is None:
            continue
        top, left, bottom, right = box
        crop = mask[top : bottom + 1, left : right + 1]
        rows.append(
            {
                "item": item,
                "structure": name,
                "height": height,
                "width": width,
                "top": int(top),
                "left": int(left),
                "crop_height": crop.shape[0],
                "crop_width": crop.shape[1],
                "bits": np.packbits(crop).tobytes(),
                "confidence": float("nan") if confidence is None else float(confidence[s]),
            }
        )
    return rows


def write_mask_shard(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    """Write rows (from ``mask_rows``) atomically as one zstd Parquet shard."""
    table = pa.Table.from_pylist(list(rows), schema=MASK_SCHEMA)
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def decode_rows(table: pa.Table, structures: Sequence[str]) -> dict[str, np.ndarray]:
    """Decode rows into {item: (S, H, W) bool}; structures without a row are empty."""
    out: dict[str, np.ndarray] = {}
    data = table.to_pydict()
    for i, item in enumerate(data["item"]):
        name = data["structure"][i]
        if name not in structures:
            raise ValueError(f"mask row for item {item!r}: unknown structure {name!r}")
        if item not in out:
            out[item] = np.zeros((len(structures), data["height"][i], data["width"][i]), bool)
        h, w = data["crop_height"][i], data["crop_width"][i]
        bits = np.frombuffer(data["bits"][i], np.uint8)
        crop = np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool)
        top, left = data["top"][i], data["left"][i]
        out[item][structures.index(name), top : top + h, left : left + w] = crop
    return out


def read_mask_shard(path: str | os.PathLike, structures: Sequence[str], items=None) -> dict[str, np.ndarray]:
    """Read all (or the given) items of one shard."""
    filters = None if items is None else [("item", "in", list(items))]
    table = pq.read_table(Path(path), filters=filters, schema=MASK_SCHEMA)
    return decode_rows(table, list(structures))


def read_confidences(path: str | os.PathLike) -> pa.Table:
    """The (item, structure, confidence) columns of a shard, without the bits."""
    return pq.read_table(Path(path), columns=["item", "structure", "confidence"])


def write_item_subset(source: str | os.PathLike, dest: str | os.PathLike, items, structures: Sequence[str]) -> bool:
    """Copy the rows of ``items`` from one shard to ``dest`` (no decoding), sorted by item and structure order.

    Structures not in ``structures`` sort last. Nothing is written when the shard
    holds none of the items; returns whether ``dest`` was written.
    """
    order = {s: i for i, s in enumerate(structures)}
    table = pq.read_table(source, schema=MASK_SCHEMA)
    table = table.filter(pc.is_in(table["item"], value_set=pa.array(sorted(items), pa.string())))
    if table.num_rows == 0:
        return False
    rank = np.lexsort(
        (
            np.array([order.get(s, len(order)) for s in table["structure"].to_pylist()]),
            np.array(table["item"].to_pylist(), dtype=object).astype(str),
        )
    )
    table = table.take(pa.array(rank)).replace_schema_metadata(None)
    pq.write_table(table, dest, compression="zstd")
    return True


def shard_index(folder: str | os.PathLike) -> dict[str, Path]:
    """{item: the first ``shard-*.parquet`` of ``folder`` holding it}; ``FileNotFoundError`` when there is none."""
    shards = sorted(Path(folder).glob("shard-*.parquet"))
    if not shards:
        raise FileNotFoundError(f"{folder}: no mask shards (did the stage that writes masks run?)")
    index: dict[str, Path] = {}
    for shard in shards:
        for item in pq.read_table(shard, columns=["item"]).column("item").to_pylist():
            index.setdefault(item, shard)
    return index
