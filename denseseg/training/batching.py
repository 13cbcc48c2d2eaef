"""Items into batches for the training loop: tensors from the cache's arrays, stacking with clear errors,
and one epoch's items in their drawn order, each moved by its recorded augmentation draw."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from denseseg.training.augment import AffineDraw


def as_tensors(item: dict) -> dict:
    """The item with numpy arrays as torch tensors (copies, so a read-only cache stays untouched)."""
    return {
        key: torch.from_numpy(np.array(value)) if isinstance(value, np.ndarray) else value
        for key, value in item.items()
    }


def collate_items(items: list[dict]) -> dict:
    """Stack a list of items into a batch: tensors by ``torch.stack``, "item" names (and strings) as a list."""
    if not items:
        raise ValueError("cannot collate an empty list of items")
    keys = list(items[0])
    batch = {}
    for key in keys:
        if any(key not in it for it in items):
            names = [it.get("item", "?") for it in items if key not in it]
            raise ValueError(f"items {names} lack the key {key!r} the others have")
        values = [it[key] for it in items]
        if key == "item" or isinstance(values[0], str):
            batch[key] = list(values)
        elif isinstance(values[0], Tensor | np.ndarray):
            tensors = [torch.as_tensor(v) for v in values]
            shapes = {tuple(t.shape) for t in tensors}
            if len(shapes) > 1:
                names = [it.get("item", "?") for it in items]
                raise ValueError(f"cannot stack {key!r} of items {names}: shapes differ {sorted(shapes)}")
            batch[key] = torch.stack(tensors)
        elif isinstance(values[0], bool | int | float):
            batch[key] = torch.tensor(values)
        else:
            batch[key] = list(values)
    return batch


class EpochItems(torch.utils.data.Dataset):
    """The items of one epoch in their drawn order, each moved by its recorded draw."""

    def __init__(self, items: Sequence[dict], order: list[int], draws: list[AffineDraw] | None):
        self.items, self.order, self.draws = items, order, draws

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, k: int) -> dict:
        item = as_tensors(self.items[self.order[k]])
        if self.draws is not None:
            item = self.draws[k].apply(item)
        return item


def batch_size(batch: dict) -> int:
    if "item" in batch:
        return len(batch["item"])
    for value in batch.values():
        if isinstance(value, Tensor):
            return int(value.shape[0])
    raise ValueError("a batch without 'item' names or tensors")


def frame_of(item: dict) -> tuple[int, int]:
    for key in ("image", "masks", "uv"):
        if key in item:
            height, width = item[key].shape[-2:]
            return int(height), int(width)
    raise ValueError(f"item {item.get('item', '?')!r} has no image, masks or uv to augment")
