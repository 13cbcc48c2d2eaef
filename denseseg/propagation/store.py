"""Streaming access to masks and images during label propagation.

Label propagation touches every image of the dataset in every round, so
nothing that grows with the number of images may stay in memory: images are
read when a batch needs them, masks (seeds, pseudo-labels, the previous
round's predictions, the truth) live in mask-store shards on disk
(``denseseg.io.mask_store``) and are decoded one item at a time.

- ``ShardMasks``: a read-only mapping item -> (S, H, W) bool over mask-store
  shards, keeping a few decoded shard tables (packed bits) in an LRU cache;
- ``ShardWriter``: collects mask rows and writes a shard every ``size`` items,
  remembering which shard holds which item;
- ``LazyImages``: a read-only mapping item -> image that calls a loader on access;
- ``LRUCache``: the small cache both use;
- ``write_row_shard``: a shard from rows copied out of other shards (no decoding);
  ``write_item_shards`` shards many items so.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from denseseg.io.atomic import atomic_file
from denseseg.io.mask_store import MASK_SCHEMA, decode_rows, mask_rows, write_mask_shard


class LRUCache:
    """At most ``capacity`` values, the least recently used dropped first (capacity 0: no cache)."""

    def __init__(self, capacity: int):
        self.capacity = max(int(capacity), 0)
        self._data: OrderedDict = OrderedDict()

    def get(self, key: Hashable, load: Callable[[], object]):
        if key in self._data:
            self._data.move_to_end(key)
            return self._data[key]
        value = load()
        if self.capacity:
            self._data[key] = value
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()


class _ShardTable:
    """One shard's rows (packed bits) and where each item's rows start and stop."""

    def __init__(self, path: Path):
        table = pq.read_table(path, schema=MASK_SCHEMA).combine_chunks()
        self.table = table.replace_schema_metadata(None)
        items = table.column("item").to_pylist()
        self.spans: dict[str, tuple[int, int]] = {}
        for i, item in enumerate(items):
            start, _ = self.spans.get(item, (i, i))
            self.spans[item] = (start, i + 1)

    def rows(self, item: str) -> pa.Table:
        start, stop = self.spans.get(item, (0, 0))
        return self.table.slice(start, stop - start)


class ShardMasks(Mapping):
    """item -> (S, H, W) bool masks read from the shard ``index[item]``; an item without rows is all empty."""

    def __init__(
        self,
        index: Mapping[str, str | os.PathLike],
        structures: Sequence[str],
        shape: tuple[int, int],
        cache_shards: int = 4,
    ):
        self.index = dict(index)
        self.structures = list(structures)
        self.shape = (int(shape[0]), int(shape[1]))
        self._tables = LRUCache(max(cache_shards, 1))

    def _table(self, item: str) -> _ShardTable:
        path = Path(self.index[item])
        return self._tables.get(path, lambda: _ShardTable(path))

    def rows(self, item: str) -> pa.Table:
        """The item's stored rows (structure order), ready to copy into another shard."""
        return self._table(item).rows(item)

    def __getitem__(self, item: str) -> np.ndarray:
        if item not in self.index:
            raise KeyError(item)
        decoded = decode_rows(self.rows(item), self.structures)
        if item in decoded:
            return decoded[item]
        return np.zeros((len(self.structures), *self.shape), bool)

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, item) -> bool:
        return item in self.index


class ShardWriter:
    """Write mask rows to ``folder/<prefix>-XXXX.parquet``, ``size`` items per shard, in the order added."""

    def __init__(self, folder: str | os.PathLike, structures: Sequence[str], size: int, prefix: str = "chunk"):
        if size < 1:
            raise ValueError(f"shard size must be positive, got {size}")
        self.folder = Path(folder)
        self.structures = list(structures)
        self.size = int(size)
        self.prefix = prefix
        self.index: dict[str, Path] = {}
        self._rows: list[dict] = []
        self._items = 0
        self._shards = 0

    def add(self, item: str, masks: np.ndarray, confidence=None) -> None:
        self._rows.extend(mask_rows(item, masks, self.structures, confidence))
        self.index[item] = self.folder / f"{self.prefix}-{self._shards:04d}.parquet"
        self._items += 1
        if self._items == self.size:
            self.flush()

    def flush(self) -> None:
        if self._items:
            write_mask_shard(self.folder / f"{self.prefix}-{self._shards:04d}.parquet", self._rows)
            self._rows, self._items = [], 0
            self._shards += 1

    def close(self) -> dict[str, Path]:
        self.flush()
        return self.index


def write_row_shard(path: str | os.PathLike, tables: Iterable[pa.Table]) -> None:
    """One shard from row tables (copied from other shards), written like ``write_mask_shard``."""
    tables = [t for t in tables]
    table = pa.concat_tables(tables) if tables else MASK_SCHEMA.empty_table()
    table = table.cast(MASK_SCHEMA).combine_chunks().replace_schema_metadata(None)
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_item_shards(folder: str | os.PathLike, items: Sequence[str], sources: Sequence[ShardMasks], size: int) -> int:
    """``shard-XXXX.parquet`` files of ``size`` items each, in the given order, rows copied from the first
    source that holds an item; returns the number of shards."""
    folder = Path(folder)
    shards = 0
    for shards, start in enumerate(range(0, len(items), size), 1):
        rows = [next(src for src in sources if k in src).rows(k) for k in items[start : start + size]]
        write_row_shard(folder / f"shard-{shards - 1:04d}.parquet", rows)
    return shards


class LazyImages(Mapping):
    """item -> image, read by ``load(item)`` on every access (no copy kept)."""

    def __init__(self, items: Iterable[str], load: Callable[[str], np.ndarray]):
        self.items = list(items)
        self._set = set(self.items)
        self.load = load

    def __getitem__(self, item: str) -> np.ndarray:
        if item not in self._set:
            raise KeyError(item)
        return self.load(item)

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item) -> bool:
        return item in self._set
