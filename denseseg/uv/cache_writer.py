"""Writing a uv cache (format: ``denseseg.uv.cache``): an item's rows, a shard of maps, a shard of images,
the index and ``cache.json``. A stage writes into a ``*.partial`` folder and swaps it in whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from denseseg.anatomy import ANATOMIES, Anatomy
from denseseg.io.atomic import atomic_file, write_text_atomic
from denseseg.io.png import ImageError, read_png
from denseseg.uv.cache_format import (
    FORMAT,
    IMAGE_DTYPE,
    IMAGE_SCHEMA,
    INDEX_SCHEMA,
    LANDMARK_SETS,
    LANDMARK_UV_SCHEMA,
    SPLIT_NAMES,
    UV_DTYPES,
    UV_SCHEMA,
    CacheError,
)
from denseseg.uv.cartesian import UVCrop


def item_rows(
    item: str,
    height: int,
    width: int,
    crops: dict[str, UVCrop],
    landmarks: dict[str, np.ndarray],
    structures,
    uv_dtype: str = "float32",
) -> list[dict]:
    """Rows of one item, in structure order; structures without a crop are omitted.

    Args:
        item: the item's name (filestem).
        height: working image height.
        width: working image width.
        crops: {structure: uv crop}.
        landmarks: {structure: (n, 2) cached landmarks of that structure}, in the cache's landmark order.
        structures: the anatomy's structure order.
        uv_dtype: float32 or float16.
    """
    if uv_dtype not in UV_DTYPES:
        raise ValueError(f"uv dtype {uv_dtype!r}; choose one of {', '.join(UV_DTYPES)}")
    dtype = np.dtype(uv_dtype).newbyteorder("<")
    rows = []
    for s in structures:
        crop = crops.get(s)
        if crop is None:
            continue
        h, w = crop.mask.shape
        rows.append(
            {
                "item": item,
                "structure": s,
                "height": height,
                "width": width,
                "top": crop.top,
                "left": crop.left,
                "crop_height": h,
                "crop_width": w,
                "uv": np.ascontiguousarray(crop.uv, dtype=dtype).tobytes(),
                "mask": np.packbits(crop.mask).tobytes(),
                "landmarks": np.ascontiguousarray(landmarks[s], dtype="<f4").tobytes(),
            }
        )
    return rows


def write_shard(path: str | os.PathLike, items: list[list[dict]]) -> list[int]:
    """Write items (each a list of ``item_rows``) as one shard, one row group each; returns their row groups."""
    groups = []
    with atomic_file(path) as tmp:
        with pq.ParquetWriter(tmp, UV_SCHEMA, compression="zstd") as writer:
            for rows in items:
                if not rows:
                    raise ValueError("an item without any structure cannot be cached")
                writer.write_table(pa.Table.from_pylist(rows, schema=UV_SCHEMA))
                groups.append(len(groups))
    return groups


def image_pixels(image: np.ndarray, image_max: int, source: str) -> np.ndarray:
    """A 2-D integer image as the cache stores it (uint16), checked against ``image_max``.

    Values above ``image_max`` would read back above 1.0, so they are an error
    naming ``source`` (the image's file): the variant's ``image_max`` is wrong.
    """
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype.kind not in "ui":
        raise CacheError(f"{source}: a 2-D integer image expected, got {image.dtype} of shape {image.shape}")
    if not 0 < image_max <= np.iinfo(np.uint16).max:
        raise CacheError(f"image_max {image_max} must lie in 1..65535")
    low, high = (int(image.min()), int(image.max())) if image.size else (0, 0)
    if low < 0 or high > image_max:
        raise CacheError(f"{source}: pixel values {low}..{high} exceed image_max {image_max} of this uv cache")
    return image.astype(np.uint16)


def read_cache_image(path: Path, shape: tuple[int, int], image_max: int) -> np.ndarray:
    """A working image PNG as the cache stores it; ``ImageError`` when unreadable or not ``shape`` (the masks'),
    ``CacheError`` when its values exceed ``image_max``."""
    pixels = read_png(path)
    if pixels.shape != tuple(shape):
        raise ImageError(f"{path}: image of {pixels.shape[0]}x{pixels.shape[1]} px, masks {shape[0]}x{shape[1]}")
    return image_pixels(pixels, image_max, str(path))


def write_images(path: str | os.PathLike, images: list[tuple[str, np.ndarray]]) -> list[int]:
    """Write (item, uint16 (H, W) image) pairs as one images file, one row group each; returns their row groups."""
    groups = []
    with atomic_file(path) as tmp:
        with pq.ParquetWriter(tmp, IMAGE_SCHEMA, compression="zstd") as writer:
            for item, image in images:
                if image.dtype != np.uint16 or image.ndim != 2:
                    raise ValueError(f"{item}: a 2-D uint16 image expected (see image_pixels), got {image.dtype}")
                row = {
                    "item": item,
                    "height": image.shape[0],
                    "width": image.shape[1],
                    "pixels": np.ascontiguousarray(image, dtype="<u2").tobytes(),
                }
                writer.write_table(pa.Table.from_pylist([row], schema=IMAGE_SCHEMA))
                groups.append(len(groups))
    return groups


def write_numbered_shard(
    root: Path, number: int, items: list[list[dict]], images: list[tuple[str, np.ndarray]], index_rows: list[dict]
) -> None:
    """Write ``shard-<number>.parquet`` and ``images-<number>.parquet`` of a shard's items (none: no files) and
    set each item's index row (``shard``, ``row_group``, ``image_file``, ``image_row_group``) in place."""
    name, image_name = f"shard-{number:04d}.parquet", f"images-{number:04d}.parquet"
    if not items:
        (root / name).unlink(missing_ok=True)
        (root / image_name).unlink(missing_ok=True)
        return
    groups = write_shard(root / name, items)
    image_groups = write_images(root / image_name, images)
    for entry, group, image_group in zip(index_rows, groups, image_groups):
        entry.update(shard=name, row_group=group, image_file=image_name, image_row_group=image_group)


def landmark_uv_frame(anatomy: Anatomy, uv: np.ndarray, used: np.ndarray) -> pd.DataFrame:
    """The ``landmark_uv.parquet`` table from (N, 2) uv of the full set and an (N,) used mask."""
    uv = np.asarray(uv, np.float64)
    used = np.asarray(used, bool)
    n = anatomy.n_landmarks
    if uv.shape != (n, 2) or used.shape != (n,):
        raise ValueError(f"{anatomy.name}: uv (N, 2) and used (N,) with N = {n} expected, got {uv.shape}, {used.shape}")
    if not np.isfinite(uv).all():
        raise ValueError(f"{anatomy.name}: landmark uv values must be finite")
    names = np.repeat(np.array(anatomy.structures, dtype=object), list(anatomy.landmark_counts.values()))
    return pd.DataFrame(
        {"structure": names, "index": np.arange(n, dtype=np.int32), "u": uv[:, 0], "v": uv[:, 1], "used": used}
    )


def write_meta(
    root: str | os.PathLike,
    *,
    anatomy: str,
    mode: str,
    uv_dtype: str,
    index_rows: list[dict],
    landmark_uv: pd.DataFrame,
    landmarks: str,
    image_max: int,
) -> None:
    """Write ``landmark_uv.parquet``, ``index.parquet`` and ``cache.json`` (call last: they make the cache readable).

    Args:
        root: the cache folder (its shards and images files already written).
        anatomy: anatomy name.
        mode: cartesian | polar.
        uv_dtype: float32 | float16, as the shards store uv.
        index_rows: one dict per item with the INDEX_SCHEMA columns.
        landmark_uv: ``landmark_uv_frame`` of the full landmark set; its ``used`` rows are the cached landmarks.
        landmarks: all | fps, how the used landmarks were chosen.
        image_max: the stored value that reads as 1.0.
    """
    root = Path(root)
    anat = ANATOMIES[anatomy]
    if landmarks not in LANDMARK_SETS:
        raise ValueError(f"landmark set {landmarks!r}; choose one of {', '.join(LANDMARK_SETS)}")
    table = pa.Table.from_pandas(landmark_uv, preserve_index=False)
    if table.column_names != LANDMARK_UV_SCHEMA.names or len(table) != anat.n_landmarks:
        raise ValueError(f"landmark_uv: columns {LANDMARK_UV_SCHEMA.names} and {anat.n_landmarks} rows expected")
    table = table.cast(LANDMARK_UV_SCHEMA)
    if table.column("index").to_pylist() != list(range(anat.n_landmarks)):
        raise ValueError("landmark_uv: rows must be the full landmark set in flat order")
    used = np.asarray(table.column("used").to_pylist(), bool)
    if not used.any():
        raise ValueError("landmark_uv: no landmark is marked used")
    for row in index_rows:
        if row.get("split") not in SPLIT_NAMES:
            split, item = row.get("split"), row.get("item")
            raise ValueError(f"index: item {item!r} has split {split!r}, not one of {', '.join(SPLIT_NAMES)}")
    with atomic_file(root / "landmark_uv.parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    index = pa.Table.from_pylist(sorted(index_rows, key=lambda r: r["item"]), schema=INDEX_SCHEMA)
    with atomic_file(root / "index.parquet") as tmp:
        pq.write_table(index, tmp, compression="zstd")
    meta = {
        "format": FORMAT,
        "anatomy": anatomy,
        "structures": list(anat.structures),
        "mode": mode,
        "uv_dtype": uv_dtype,
        "landmarks": landmarks,
        "n_landmarks_full": anat.n_landmarks,
        "landmark_indices": [int(i) for i in np.flatnonzero(used)],
        "image_dtype": IMAGE_DTYPE,
        "image_max": int(image_max),
        "image_normalisation": "image = stored value / image_max (float32 in [0, 1])",
    }
    write_text_atomic(root / "cache.json", json.dumps(meta, indent=1) + "\n")


def cache_summary(root: str | os.PathLike, index_rows: list[dict]) -> dict[str, int | float]:
    """Counts and sizes of a written cache folder: items per split, structures, bytes (per image)."""
    root = Path(root)
    shard_bytes = sum(p.stat().st_size for p in root.glob("shard-*.parquet"))
    image_bytes = sum(p.stat().st_size for p in root.glob("images-*.parquet"))
    n = max(len(index_rows), 1)
    mm = np.array([row["mm_per_px"] for row in index_rows], np.float64)
    return {
        "items": len(index_rows),
        **{f"{s}_items": sum(row["split"] == s for row in index_rows) for s in SPLIT_NAMES},
        "structures_cached": int(sum(row["n_structures"] for row in index_rows)),
        "cache_bytes": shard_bytes,
        "cache_bytes_per_image": round(shard_bytes / n, 1),
        "image_bytes_per_image": round(image_bytes / n, 1),
        "mm_per_px_median": float(np.nanmedian(mm)) if np.isfinite(mm).any() else float("nan"),
        "mm_per_px_missing": int((~np.isfinite(mm)).sum()),
    }
