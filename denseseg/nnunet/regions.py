"""Overlapping structures as one nnU-Net label map plus regions, and back.

nnU-Net trains on one integer label map per image, but our structures overlap
(wrist bones; on JSRT the clavicles lie over the lungs). Each distinct set of
structures that covers a pixel (a "combination") becomes one label, 0 being
the empty set (background); each structure becomes a region, the tuple of the
labels whose combination contains it. nnU-Net then trains region-based (a
sigmoid per region), and a structure's mask is its region's channel of the
predicted probabilities thresholded, which represents overlaps exactly (the
exported label PNG cannot).

Labels are numbered 1..K in increasing order of the combination's bit code
(bit s set: structure s), so the same masks always give the same labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

MAX_STRUCTURES = 62  # bit codes are int64


class EncodingError(ValueError):
    """Masks that cannot be encoded: wrong shape, an unknown combination, a structure never present."""


def _codes(masks: np.ndarray, n_structures: int, source: str) -> np.ndarray:
    """(H, W) int64 bit code of the structures covering each pixel."""
    masks = np.asarray(masks)
    if masks.ndim != 3 or masks.shape[0] != n_structures:
        raise EncodingError(f"{source}: masks must be (S={n_structures}, H, W), got shape {masks.shape}")
    weights = (np.int64(1) << np.arange(n_structures, dtype=np.int64))[:, None, None]
    return (masks.astype(bool).astype(np.int64) * weights).sum(axis=0)


@dataclass(frozen=True)
class RegionEncoding:
    """The labels of one dataset: ``combinations[k - 1]`` is the bit code of label k."""

    structures: tuple[str, ...]
    combinations: tuple[int, ...]

    @classmethod
    def from_masks(cls, structures: Sequence[str], masks: Iterable[np.ndarray]) -> RegionEncoding:
        """The combinations present in ``masks`` (an iterable of (S, H, W) arrays, e.g. a training split).

        Raises EncodingError when there are no masks or a structure is never present
        (nnU-Net could not learn it, and its region would be empty).
        """
        structures = tuple(structures)
        if not structures or len(structures) > MAX_STRUCTURES:
            raise EncodingError(f"need 1..{MAX_STRUCTURES} structures, got {len(structures)}")
        seen: set[int] = set()
        count = 0
        for i, mask in enumerate(masks):
            seen.update(int(c) for c in np.unique(_codes(mask, len(structures), f"masks #{i}")))
            count += 1
        if count == 0:
            raise EncodingError("no masks to encode (empty split)")
        seen.discard(0)
        encoding = cls(structures, tuple(sorted(seen)))
        never = [s for s, region in zip(structures, encoding.regions(), strict=True) if not region]
        if never:
            raise EncodingError(f"structure(s) never present in the masks: {', '.join(never)}")
        return encoding

    @property
    def n_labels(self) -> int:
        """Labels including background."""
        return len(self.combinations) + 1

    @property
    def dtype(self) -> type:
        """The smallest unsigned type holding every label (uint8 up to 255 combinations)."""
        return np.uint8 if self.n_labels <= 256 else np.uint16

    def regions(self) -> list[tuple[int, ...]]:
        """Per structure, the labels whose combination contains it."""
        codes = self.combinations
        return [tuple(k + 1 for k, code in enumerate(codes) if code >> s & 1) for s in range(len(self.structures))]

    def dataset_labels(self) -> dict[str, int | tuple[int, ...]]:
        """dataset.json's ``labels``: background 0 and each structure as its region."""
        return {"background": 0, **dict(zip(self.structures, self.regions(), strict=True))}

    def regions_class_order(self) -> tuple[int, ...]:
        """dataset.json's ``regions_class_order``: per region, the label nnU-Net paints in its exported PNG.

        Only that PNG uses it (it can show one label per pixel, so overlaps are
        lost there); our masks are read from the probabilities. Each structure
        paints the label of its own combination alone when it exists, else its
        region's first label.
        """
        order = []
        for s, region in enumerate(self.regions()):
            alone = 1 << s
            order.append(self.combinations.index(alone) + 1 if alone in self.combinations else region[0])
        return tuple(order)

    def encode(self, masks: np.ndarray, source: str = "masks") -> np.ndarray:
        """(S, H, W) masks -> (H, W) label map; EncodingError for a combination this encoding lacks."""
        codes = _codes(masks, len(self.structures), source)
        table = np.asarray((0, *self.combinations), np.int64)
        labels = np.searchsorted(table, codes)
        labels = np.minimum(labels, len(table) - 1)
        unknown = table[labels] != codes
        if unknown.any():
            bad = sorted({int(c) for c in np.unique(codes[unknown])})
            names = [[s for i, s in enumerate(self.structures) if c >> i & 1] for c in bad[:3]]
            raise EncodingError(f"{source}: combination(s) not in the encoding: {names}")
        return labels.astype(self.dtype)

    def decode(self, labels: np.ndarray) -> np.ndarray:
        """(H, W) label map -> (S, H, W) bool masks (the exact inverse of ``encode``)."""
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise EncodingError(f"a label map is (H, W), got shape {labels.shape}")
        if labels.min() < 0 or labels.max() >= self.n_labels:
            raise EncodingError(f"label values {labels.min()}..{labels.max()} outside 0..{self.n_labels - 1}")
        codes = np.asarray((0, *self.combinations), np.int64)[labels.astype(np.int64)]
        return np.stack([(codes >> s & 1).astype(bool) for s in range(len(self.structures))])

    def to_json(self) -> dict:
        return {"structures": list(self.structures), "combinations": list(self.combinations)}

    @classmethod
    def from_json(cls, data: dict) -> RegionEncoding:
        return cls(tuple(data["structures"]), tuple(int(c) for c in data["combinations"]))


def masks_from_region_probabilities(probabilities: np.ndarray, n_structures: int, threshold: float) -> np.ndarray:
    """Per-structure masks from nnU-Net's region probabilities (R, H, W) or (R, 1, H, W): channel > threshold.

    nnU-Net orders the region channels as the regions of dataset.json's
    ``labels`` (our structure order), without a background channel.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim == 4 and probabilities.shape[1] == 1:
        probabilities = probabilities[:, 0]
    if probabilities.ndim != 3 or probabilities.shape[0] != n_structures:
        raise EncodingError(f"region probabilities must be ({n_structures}, H, W), got shape {probabilities.shape}")
    return probabilities > threshold
