"""The Parquet uv cache: everything training reads, in one folder, random access by item.

Layout of a cache folder (format ``denseseg-uvcache/2``):

- ``cache.json``: format, anatomy, structures, mode, uv dtype, the landmark set
  (``landmarks``: all | fps, ``landmark_indices``: the cached landmarks' indices
  in the anatomy's full flat landmark order) and the image encoding
  (``image_dtype``, ``image_max``).
- ``shard-XXXX.parquet`` (zstd): a row per (item, structure) holding the crop
  offset and size, the uv crop (2, h, w) as raw little-endian bytes, the mask
  crop as packed bits and the structure's cached landmarks (float32 x, y). Each
  item is one row group, so one item is read without touching the others.
- ``images-XXXX.parquet`` (zstd): the working-resolution image of each item
  (uint16 little-endian, row-major, the values the ingest / jsrt PNG holds), one
  row group per item.
- ``index.parquet``: item -> split, mm per working pixel, shard and row group,
  image file and row group, height, width, structures cached.
- ``landmark_uv.parquet``: one row per landmark of the anatomy's FULL set
  (structure, index in the full flat order, u, v, used): the template uv value
  the stored maps take at that landmark, in this cache's uv frame; ``used``
  says whether the landmark built the maps (and is stored per item). A cache
  built from a subset still gives every landmark's uv, so a model trained on it
  can locate the others.

Image values: ``read`` divides the stored integers by ``image_max`` (65535 for
the wrist ingest, which keeps the radiograph's 16-bit values; 4095 for JSRT,
12-bit), so "image" is float32 in [0, 1]; the writer rejects larger values.

uv dtype: float32 by default. float16 halves the raw size but its spacing near
|uv| = 1 is 2**-11 ~ 4.9e-4, i.e. ~0.02-0.05 px for 40-100 px structures, and it
breaks the 1e-4 exactness guarantee at landmarks; pick it only when disk or I/O
bound (``uv_dtype: float16``). NaN marks mask pixels without a uv value and
pixels outside the mask.

``UVCacheDataset`` serves items as torch tensors to a DataLoader; Parquet
handles are opened lazily per process, so it works with worker processes.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from denseseg.anatomy import ANATOMIES, Anatomy
from denseseg.io.atomic import atomic_file, write_text_atomic
from denseseg.uv.cartesian import UVCrop

FORMAT = "denseseg-uvcache/2"
OLD_FORMATS = ("denseseg-uvcache/1",)
UV_DTYPES = ("float32", "float16")
IMAGE_DTYPE = "uint16"
SPLIT_NAMES = ("train", "val", "test")
LANDMARK_SETS = ("all", "fps")

UV_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("structure", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("top", pa.int32()),
        ("left", pa.int32()),
        ("crop_height", pa.int32()),
        ("crop_width", pa.int32()),
        ("uv", pa.binary()),  # (2, h, w) little-endian float32 or float16, row-major
        ("mask", pa.binary()),  # np.packbits of the (h, w) mask crop
        ("landmarks", pa.binary()),  # (n cached of the structure, 2) little-endian float32
    ]
)

IMAGE_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("pixels", pa.binary()),  # (H, W) little-endian uint16, row-major
    ]
)

INDEX_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("split", pa.string()),  # train | val | test
        ("mm_per_px", pa.float64()),  # mm per working pixel (NaN when the source has no spacing)
        ("shard", pa.string()),
        ("row_group", pa.int32()),
        ("image_file", pa.string()),
        ("image_row_group", pa.int32()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("n_structures", pa.int32()),
    ]
)

LANDMARK_UV_SCHEMA = pa.schema(
    [
        ("structure", pa.string()),
        ("index", pa.int32()),  # in the anatomy's full flat landmark order
        ("u", pa.float64()),
        ("v", pa.float64()),
        ("used", pa.bool_()),  # built the maps and is stored per item
    ]
)


class CacheError(ValueError):
    """A uv cache folder that is missing, incomplete or of another format."""


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


class UVCache:
    """Random-access reader of a uv cache folder (format ``denseseg-uvcache/2``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        meta_path = self.root / "cache.json"
        if not meta_path.exists():
            raise CacheError(f"{self.root}: not a uv cache (cache.json missing)")
        self.meta = json.loads(meta_path.read_text())
        found = self.meta.get("format")
        if found in OLD_FORMATS:
            raise CacheError(
                f"{meta_path}: uv cache format {found!r} is older than {FORMAT} (no images, splits, mm per pixel "
                f"or landmark uv table); re-run `dvc repro uvmaps@{self.root.name}`"
            )
        if found != FORMAT:
            raise CacheError(f"{meta_path}: format {found!r}, expected {FORMAT}")
        self.anatomy = ANATOMIES[self.meta["anatomy"]]
        self.structures = tuple(self.meta["structures"])
        for name in ("index.parquet", "landmark_uv.parquet"):
            if not (self.root / name).exists():
                raise CacheError(f"{self.root}: incomplete uv cache ({name} missing); re-run the uvmaps stage")
        index = pq.read_table(self.root / "index.parquet").to_pydict()
        missing = [c for c in INDEX_SCHEMA.names if c not in index]
        if missing:
            raise CacheError(f"{self.root / 'index.parquet'}: missing column(s) {', '.join(missing)}")
        self.items = list(index["item"])
        self._row = {it: {c: index[c][i] for c in INDEX_SCHEMA.names} for i, it in enumerate(self.items)}
        self._landmark_uv = pq.read_table(self.root / "landmark_uv.parquet").to_pandas()
        self.landmark_indices = np.asarray(self.meta["landmark_indices"], np.int64)
        used = np.flatnonzero(self._landmark_uv["used"].to_numpy())
        if not np.array_equal(used, self.landmark_indices):
            raise CacheError(f"{self.root}: landmark_uv.parquet's used rows differ from cache.json landmark_indices")
        # where each structure's cached landmarks sit in read()["landmarks"]
        structure_of = self._landmark_uv["structure"].to_numpy()[self.landmark_indices]
        self._slots = {s: np.flatnonzero(structure_of == s) for s in self.structures}
        self.image_max = float(self.meta["image_max"])
        # Parquet handles per (process, thread, file): a ParquetFile read from two threads at once can hang,
        # and handles must not be shared with a forked DataLoader worker
        self._files: dict[tuple[int, int, str], pq.ParquetFile] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"] = {}  # Parquet handles do not travel to worker processes
        return state

    def _file(self, name: str) -> pq.ParquetFile:
        key = (os.getpid(), threading.get_ident(), name)
        handle = self._files.get(key)
        if handle is None:
            handle = self._files[key] = pq.ParquetFile(self.root / name)
        return handle

    def _entry(self, item: str) -> dict:
        if item not in self._row:
            raise KeyError(f"{self.root}: item {item!r} not in the cache")
        return self._row[item]

    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.root.glob("*") if p.is_file())

    def items_of(self, split: str) -> list[str]:
        """Sorted items of one split (train, val or test); empty when the split has none here."""
        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r}; splits are {', '.join(SPLIT_NAMES)}")
        return [it for it in self.items if self._row[it]["split"] == split]

    def split_of(self, item: str) -> str:
        return self._entry(item)["split"]

    def mm_per_px(self, item: str) -> float:
        """mm per working pixel of the item (NaN when its source gave no pixel spacing)."""
        value = self._entry(item)["mm_per_px"]
        return float("nan") if value is None else float(value)

    def landmark_uv(self) -> pd.DataFrame:
        """Every landmark of the anatomy's full set: structure, index (full set), u, v, used."""
        return self._landmark_uv.copy()

    def landmark_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """(uv (n, 2) float32, structure index (n,) int64) of the cached landmarks, in ``read`` order.

        The landmark loss's ``landmark_uv`` and ``landmark_structure``.
        """
        rows = self._landmark_uv.iloc[self.landmark_indices]
        uv = rows[["u", "v"]].to_numpy(np.float32)
        structure = np.array([self.structures.index(s) for s in rows["structure"]], np.int64)
        return uv, structure

    def image(self, item: str) -> np.ndarray:
        """The working-resolution image, (1, H, W) float32 in [0, 1] (stored value / image_max)."""
        entry = self._entry(item)
        data = self._file(entry["image_file"]).read_row_group(entry["image_row_group"]).to_pydict()
        if data["item"] != [item]:
            raise CacheError(
                f"{self.root / entry['image_file']}: row group {entry['image_row_group']} holds {data['item']}, "
                f"not {item!r}"
            )
        h, w = data["height"][0], data["width"][0]
        if (h, w) != (entry["height"], entry["width"]):
            raise CacheError(f"{self.root}: image of {item!r} is {h}x{w}, its maps {entry['height']}x{entry['width']}")
        pixels = np.frombuffer(data["pixels"][0], "<u2").reshape(1, h, w)
        return pixels.astype(np.float32) / np.float32(self.image_max)

    def read(self, key: int | str) -> dict:
        """One item as dense arrays.

        Keys: item; image (1, H, W) float32 in [0, 1]; masks (S, H, W) bool;
        uv (S, 2, H, W) float32 (NaN outside); landmarks (n cached, 2) float32
        in ``landmark_indices`` order (NaN for structures without a crop);
        present (S,) bool; split str; mm_per_px float.
        """
        item = self.items[key] if isinstance(key, (int, np.integer)) else key
        entry = self._entry(item)
        shard, group, height, width = entry["shard"], entry["row_group"], entry["height"], entry["width"]
        data = self._file(shard).read_row_group(group).to_pydict()
        S = len(self.structures)
        masks = np.zeros((S, height, width), bool)
        uv = np.full((S, 2, height, width), np.nan, np.float32)
        landmarks = np.full((len(self.landmark_indices), 2), np.nan, np.float32)
        present = np.zeros(S, bool)
        dtype = np.dtype(self.meta["uv_dtype"]).newbyteorder("<")
        for i, s in enumerate(data["structure"]):
            if data["item"][i] != item:
                raise CacheError(f"{self.root / shard}: row group {group} holds {data['item'][i]!r}, not {item!r}")
            si = self.structures.index(s)
            top, left, h, w = data["top"][i], data["left"][i], data["crop_height"][i], data["crop_width"][i]
            crop = np.frombuffer(data["uv"][i], dtype).reshape(2, h, w)
            uv[si, :, top : top + h, left : left + w] = crop
            bits = np.frombuffer(data["mask"][i], np.uint8)
            masks[si, top : top + h, left : left + w] = np.unpackbits(bits, count=h * w).reshape(h, w).astype(bool)
            pts = np.frombuffer(data["landmarks"][i], "<f4").reshape(-1, 2)
            slots = self._slots[s]
            if len(pts) != len(slots):
                raise CacheError(f"{self.root / shard}: {item} {s} has {len(pts)} landmarks, cache.json {len(slots)}")
            landmarks[slots] = pts
            present[si] = True
        return {
            "item": item,
            "image": self.image(item),
            "masks": masks,
            "uv": uv,
            "landmarks": landmarks,
            "present": present,
            "split": entry["split"],
            "mm_per_px": self.mm_per_px(item),
        }


class UVCacheDataset:
    """A torch-style map dataset over a uv cache (tensors; safe with DataLoader workers).

    Items follow the model-phase item format: image (1, H, W) float32, masks
    (S, H, W) float32 0/1, uv (S, 2, H, W) float32, landmarks (n, 2) float32,
    present (S,) bool, item str.
    """

    def __init__(self, root: str | os.PathLike, items=None):
        self.cache = UVCache(root)
        self.items = list(self.cache.items if items is None else items)
        unknown = [it for it in self.items if it not in self.cache._row]
        if unknown:
            raise KeyError(f"{self.cache.root}: {len(unknown)} item(s) not in the cache, e.g. {unknown[0]!r}")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        import torch

        record = self.cache.read(self.items[index])
        return {
            "item": record["item"],
            "image": torch.from_numpy(record["image"]),
            "masks": torch.from_numpy(record["masks"].astype(np.float32)),
            "uv": torch.from_numpy(record["uv"]),
            "landmarks": torch.from_numpy(record["landmarks"]),
            "present": torch.from_numpy(record["present"]),
        }
