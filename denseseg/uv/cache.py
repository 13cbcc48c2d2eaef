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
import pyarrow.parquet as pq

from denseseg.anatomy import ANATOMIES
from denseseg.uv.cache_format import (  # noqa: F401  (the format's names, read here and by the cache's users)
    FORMAT,
    IMAGE_DTYPE,
    IMAGE_SCHEMA,
    INDEX_SCHEMA,
    LANDMARK_SETS,
    LANDMARK_UV_SCHEMA,
    OLD_FORMATS,
    SPLIT_NAMES,
    UV_DTYPES,
    UV_SCHEMA,
    CacheError,
)
from denseseg.uv.cache_writer import (  # noqa: F401  (one import for writers: cache.write_shard, ...)
    image_pixels,
    item_rows,
    landmark_uv_frame,
    write_images,
    write_meta,
    write_shard,
)


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
