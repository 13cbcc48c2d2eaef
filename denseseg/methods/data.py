"""Training items from a uv cache, and the statistics a method needs from its training split."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from denseseg.anatomy import ANATOMIES
from denseseg.methods.base import LandmarkSpace
from denseseg.shape.template import Template
from denseseg.uv.cache import UVCache


def open_training_cache(folder: str | os.PathLike) -> tuple[UVCache, LandmarkSpace]:
    """A uv cache folder and the landmark space of its landmarks (what a method trains on).

    Raises CacheError or FileNotFoundError (template.json) naming the folder.
    """
    folder = Path(folder)
    cache = UVCache(folder)
    template = Template.load(folder / "template.json")
    anatomy = ANATOMIES[cache.meta["anatomy"]]
    return cache, LandmarkSpace.from_table(anatomy, cache.landmark_uv(), cache.meta["landmark_indices"], template)


class CacheItems(Sequence):
    """The items of one split of a uv cache as torch tensors in the training item format.

    ``image`` (1, H, W), ``masks`` (S, H, W) float 0/1, ``uv`` (S, 2, H, W) NaN outside,
    ``landmarks`` (M, 2) (the cache's landmarks: all, or its FPS subset), ``present`` (S,).
    With ``keep`` the items stay in memory after their first read (small caches);
    otherwise every access reads its row groups again (memory stays flat).
    """

    def __init__(self, cache: UVCache, items: Sequence[str], keep: bool = True):
        self.cache = cache
        self.items = list(items)
        self._kept: dict[int, dict] | None = {} if keep else None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        if self._kept is not None and index in self._kept:
            return self._kept[index]
        record = self.cache.read(self.items[index])
        item = {
            "item": record["item"],
            "image": torch.from_numpy(np.ascontiguousarray(record["image"], np.float32)),
            "masks": torch.from_numpy(record["masks"].astype(np.float32)),
            "uv": torch.from_numpy(record["uv"]),
            "landmarks": torch.from_numpy(record["landmarks"]),
            "present": torch.from_numpy(record["present"]),
        }
        if self._kept is not None:
            self._kept[index] = item
        return item


def mask_fractions(items: Sequence[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Positive and total pixel counts per structure over ``items`` (streamed, one item at a time)."""
    positive, total = None, 0
    for item in items:
        masks = np.asarray(item["masks"]) > 0.5
        counts = masks.reshape(masks.shape[0], -1).sum(1).astype(np.int64)
        positive = counts if positive is None else positive + counts
        total += masks[0].size
    if positive is None:
        raise ValueError("no training items: positive weights cannot be computed")
    return positive, np.full_like(positive, total)
