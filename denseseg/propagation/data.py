"""Training pairs for the propagation network, read when a batch needs them.

``PairDataset`` is a torch ``Dataset`` over item names: ``images[item]`` gives
the normalised image and ``labels[item]`` its (S, H, W) masks, both looked up
lazily (a mapping that reads a PNG, a mask-store shard ...). A small LRU cache
keeps recently used pairs, the masks as packed bits, so that a training set of
a few dozen seeds is read once, not once per epoch, while memory stays bounded
for a training set of thousands of pseudo-labels. ``ArrayPairs`` wraps arrays
already in memory (tests, small problems).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from torch.utils.data import Dataset

from denseseg.propagation.store import LRUCache


class ArrayPairs(Dataset):
    """(image, masks) pairs held in memory; images may differ in size (the trainer pads them)."""

    def __init__(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], n_outputs: int):
        if len(images) != len(masks) or not len(images):
            raise ValueError(f"need as many masks as images (> 0), got {len(images)} images and {len(masks)} masks")
        for i, (img, msk) in enumerate(zip(images, masks)):
            if msk.shape != (n_outputs, *img.shape):
                raise ValueError(f"pair {i}: mask {msk.shape} does not match image {img.shape} x {n_outputs} bones")
        self.images, self.masks = list(images), list(masks)
        self.max_shape = (max(i.shape[0] for i in self.images), max(i.shape[1] for i in self.images))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.images[i], self.masks[i]


class PairDataset(Dataset):
    """Pairs ``(images[item], labels[item])`` for ``items``, all of one size ``shape`` (H, W)."""

    def __init__(
        self,
        items: Sequence[str],
        images: Mapping[str, np.ndarray],
        labels: Mapping[str, np.ndarray],
        n_outputs: int,
        shape: tuple[int, int],
        cache_items: int = 64,
    ):
        if not len(items):
            raise ValueError("a training set needs at least one item")
        self.items = list(items)
        self.images, self.labels = images, labels
        self.n_outputs = int(n_outputs)
        self.max_shape = (int(shape[0]), int(shape[1]))
        self._cache = LRUCache(cache_items)

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, item: str) -> tuple[np.ndarray, np.ndarray]:
        image = self.images[item]
        masks = np.asarray(self.labels[item], bool)
        if image.shape != self.max_shape or masks.shape != (self.n_outputs, *image.shape):
            raise ValueError(
                f"{item}: image {image.shape} and mask {masks.shape} do not match the training size "
                f"{self.max_shape} x {self.n_outputs} bones"
            )
        return image, np.packbits(masks, axis=None)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image, bits = self._cache.get(self.items[i], lambda: self._load(self.items[i]))
        shape = (self.n_outputs, *self.max_shape)
        return image, np.unpackbits(bits, count=int(np.prod(shape))).reshape(shape).view(bool)
