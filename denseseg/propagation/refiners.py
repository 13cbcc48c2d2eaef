"""Refinement of predicted bone probabilities into clean masks, pluggable.

A network trained on a few dozen seeds makes blotchy masks: stray islands,
holes, ragged borders that stop short of the bone edge. Refinement fixes what
shape priors and the image itself can fix before a prediction becomes a
pseudo-label. Two refiners share one interface (``refine(image, probs)``):

- ``ClassicalRefiner`` (default, needs no weights): per bone, a random walker on
  the image seeded with the confident core (prob > high) and confident
  background (prob < low) decides the uncertain band from image edges; then the
  largest connected component, hole filling and a morphological smoothing.
- ``SamRefiner``: Segment Anything prompted per bone with the pseudo-label's box
  and its most interior point, as the paper does; used when the user gives a
  SAM checkpoint (or, in tests, a model).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy import ndimage as ndi
from skimage.morphology import disk
from skimage.segmentation import random_walker

from denseseg.io.mask_store import mask_bbox


class Refiner(Protocol):
    name: str

    def refine(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """(H, W) normalised image, (S, H, W) probabilities -> (S, H, W) boolean masks."""


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Keep the largest 8-connected component (a bone is one piece)."""
    labels, n = ndi.label(mask, structure=np.ones((3, 3), bool))
    if n <= 1:
        return mask.astype(bool, copy=True)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed background (a bone's projection has no holes)."""
    return ndi.binary_fill_holes(mask)


def smooth(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Opening then closing with a disk: removes spurs and notches below ``radius``.

    A bone thinner than the disk would vanish; then the unsmoothed mask is kept.
    """
    if radius <= 0 or not mask.any():
        return mask.astype(bool, copy=True)
    footprint = disk(radius)
    pad = radius + 1
    padded = np.pad(mask, pad)
    out = ndi.binary_closing(ndi.binary_opening(padded, footprint), footprint)[pad:-pad, pad:-pad]
    return out if out.any() else mask.astype(bool, copy=True)


def clean(mask: np.ndarray, radius: int = 1) -> np.ndarray:
    """Largest component, holes filled, smoothed (and one piece again after smoothing)."""
    if not mask.any():
        return mask.astype(bool, copy=True)
    out = fill_holes(largest_component(mask))
    out = smooth(out, radius)
    return fill_holes(largest_component(out))


def _bbox(mask: np.ndarray, margin: int, shape: tuple[int, int]) -> tuple[slice, slice]:
    """The bounding box of a non-empty mask grown by ``margin``, clipped to ``shape``."""
    top, left, bottom, right = mask_bbox(mask)
    r0, r1 = max(top - margin, 0), min(bottom + margin + 1, shape[0])
    c0, c1 = max(left - margin, 0), min(right + margin + 1, shape[1])
    return slice(r0, r1), slice(c0, c1)


def random_walker_refine(
    image: np.ndarray,
    prob: np.ndarray,
    high: float = 0.8,
    low: float = 0.2,
    beta: float = 130.0,
    margin: int = 4,
    threshold: float = 0.5,
) -> np.ndarray:
    """Decide the uncertain band (low <= prob <= high) of one bone from the image.

    Seeds: the confident core is bone, the confident outside is background, and
    the crop border (``margin`` px around everything not confidently background)
    is background too. Without a confident core, the plain threshold is returned.
    """
    core = prob > high
    fallback = prob > threshold
    if not core.any():
        return fallback
    rs, cs = _bbox(prob >= low, margin, prob.shape)
    crop = np.asarray(image, np.float64)[rs, cs]
    p = prob[rs, cs]
    labels = np.zeros(p.shape, np.int32)
    labels[p < low] = 2
    labels[[0, -1], :] = 2
    labels[:, [0, -1]] = 2
    labels[p > high] = 1
    if not (labels == 0).any():
        return fallback
    span = crop.max() - crop.min()
    data = (crop - crop.min()) / span if span > 0 else np.zeros_like(crop)
    seg = random_walker(data, labels, beta=beta, mode="bf")
    out = np.zeros(prob.shape, bool)
    out[rs, cs] = seg == 1
    return out


@dataclass(frozen=True)
class ClassicalRefiner:
    """Random walker (optional) + largest component + holes + smoothing, per bone."""

    threshold: float = 0.5
    high: float = 0.8
    low: float = 0.2
    beta: float = 130.0
    smooth_radius: int = 1
    use_random_walker: bool = True
    min_area: int = 3

    name = "classical"

    @property
    def description(self) -> str:
        rw = (
            f"random walker (core > {self.high}, background < {self.low}, beta {self.beta}) + "
            if self.use_random_walker
            else ""
        )
        return f"classical refiner: {rw}largest component, hole filling, smoothing (radius {self.smooth_radius})"

    def refine_bone(self, image: np.ndarray, prob: np.ndarray) -> np.ndarray:
        mask = prob > self.threshold
        if not mask.any():
            return mask  # the network says the bone is absent
        if self.use_random_walker:
            walked = random_walker_refine(image, prob, self.high, self.low, self.beta, threshold=self.threshold)
            if walked.any():
                mask = walked
        mask = clean(mask, self.smooth_radius)
        return mask if mask.sum() >= self.min_area else np.zeros_like(mask)

    def refine(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        if probs.ndim != 3 or probs.shape[1:] != image.shape:
            raise ValueError(f"probs (S, H, W) matching image {image.shape} expected, got {probs.shape}")
        return np.stack([self.refine_bone(image, p) for p in probs])


def _interior_point(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the pixel farthest from the mask border: a safe positive click."""
    dist = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return float(c), float(r)


class SamRefiner:
    """Segment Anything refinement: per bone, box + interior-point prompts from the pseudo-label.

    The pseudo-label is the cleaned thresholded probability; SAM's mask replaces
    it (cut to the prompt box, cleaned the same way) unless SAM returns
    nothing. All bones of an image share one image-encoder pass.
    """

    name = "sam"

    def __init__(
        self,
        checkpoint: str | None = None,
        model=None,
        model_type: str = "vit_b",
        device: str = "cpu",
        threshold: float = 0.5,
        smooth_radius: int = 1,
        box_margin: int = 2,
    ):
        import torch

        if model is None:
            if checkpoint is None:
                raise ValueError("SamRefiner needs a checkpoint path or a model")
            try:
                from segment_anything import sam_model_registry
            except ImportError as err:
                raise RuntimeError(
                    f"refiner 'sam' needs the segment_anything package ({err}); "
                    "install segment-anything (with torchvision) or use refiner: classical"
                ) from None
            if model_type not in sam_model_registry:
                raise ValueError(f"unknown SAM model type {model_type!r}; known: {', '.join(sam_model_registry)}")
            model = sam_model_registry[model_type](checkpoint=str(checkpoint))
        self.torch = torch
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.checkpoint = checkpoint
        self.threshold = threshold
        self.smooth_radius = smooth_radius
        self.box_margin = box_margin

    @property
    def description(self) -> str:
        return f"SAM refiner ({self.checkpoint or 'model given in code'}): box + interior point prompts per bone"

    def _prepare(self, image: np.ndarray):
        torch = self.torch
        size = int(self.model.image_encoder.img_size)
        h, w = image.shape
        scale = size / max(h, w)
        new_h, new_w = int(h * scale + 0.5), int(w * scale + 0.5)
        x = np.asarray(image, np.float32)
        span = float(x.max() - x.min())
        x = (x - x.min()) / span * 255.0 if span > 0 else np.zeros_like(x)
        t = torch.from_numpy(x)[None, None]
        t = torch.nn.functional.interpolate(t, size=(new_h, new_w), mode="bilinear", align_corners=False)
        return t[0].expand(3, -1, -1).contiguous().to(self.device), (new_w / w, new_h / h)

    def refine(self, image: np.ndarray, probs: np.ndarray) -> np.ndarray:
        if probs.ndim != 3 or probs.shape[1:] != image.shape:
            raise ValueError(f"probs (S, H, W) matching image {image.shape} expected, got {probs.shape}")
        torch = self.torch
        h, w = image.shape
        pseudo = np.stack([clean(p > self.threshold, self.smooth_radius) for p in probs])
        present = [s for s in range(len(pseudo)) if pseudo[s].any()]
        if not present:
            return pseudo
        tensor, (sx, sy) = self._prepare(image)
        boxes, points, regions = [], [], []
        for s in present:
            rs, cs = _bbox(pseudo[s], self.box_margin, (h, w))
            regions.append((rs, cs))
            boxes.append([cs.start * sx, rs.start * sy, (cs.stop - 1) * sx, (rs.stop - 1) * sy])
            px, py = _interior_point(pseudo[s])
            points.append([[px * sx, py * sy]])
        record = {
            "image": tensor,
            "original_size": (h, w),
            "boxes": torch.tensor(boxes, dtype=torch.float32, device=self.device),
            "point_coords": torch.tensor(points, dtype=torch.float32, device=self.device),
            "point_labels": torch.ones((len(present), 1), dtype=torch.int64, device=self.device),
        }
        with torch.no_grad():
            masks = self.model([record], multimask_output=False)[0]["masks"][:, 0].cpu().numpy()
        out = pseudo.copy()
        for k, s in enumerate(present):
            # SAM may spill past its box prompt (onto a neighbouring bone): the box bounds the bone
            rs, cs = regions[k]
            inside = np.zeros((h, w), bool)
            inside[rs, cs] = True
            refined = clean(masks[k] & inside, self.smooth_radius)
            if refined.any():
                out[s] = refined
        return out


class RefinerParams(BaseModel):
    """Which refiner runs and how (``propagate.refiner`` in ``params.yaml``).

    Args:
        method: classical, or sam (needs ``sam_checkpoint`` and the segment-anything package).
        sam_checkpoint: path to a SAM checkpoint (e.g. sam_vit_b_01ec64.pth).
        sam_model_type: the SAM architecture of the checkpoint.
        sam_box_margin: pixels added around the pseudo-label's box prompt.
        random_walker: the classical refiner runs a random walker on the uncertain band.
        rw_beta: the random walker's edge sensitivity.
        rw_high: probability above which a pixel seeds the bone.
        rw_low: probability below which a pixel seeds the background.
        smooth_radius: radius of the morphological smoothing.
        min_area: a refined bone of fewer pixels is dropped (classical).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["classical", "sam"]
    sam_checkpoint: str | None
    sam_model_type: str
    sam_box_margin: int = Field(ge=0)
    random_walker: bool
    rw_beta: float = Field(gt=0)
    rw_high: float = Field(gt=0, lt=1)
    rw_low: float = Field(gt=0, lt=1)
    smooth_radius: int = Field(ge=0)
    min_area: int = Field(ge=0)


def make_refiner(
    params: RefinerParams, threshold: float, device: str = "cpu", log: logging.Logger | None = None
) -> Refiner:
    """The refiner the params ask for, with a log line that says which one runs and why.

    ``threshold``: the probability a pixel needs to be bone (``propagate.prob_threshold``).
    """
    log = log or logging.getLogger(__name__)
    if params.method == "sam" and params.sam_checkpoint:
        refiner = SamRefiner(
            checkpoint=params.sam_checkpoint,
            model_type=params.sam_model_type,
            device=device,
            threshold=threshold,
            smooth_radius=params.smooth_radius,
            box_margin=params.sam_box_margin,
        )
        log.info("refinement: %s", refiner.description)
        return refiner
    refiner = ClassicalRefiner(
        threshold=threshold,
        high=params.rw_high,
        low=params.rw_low,
        beta=params.rw_beta,
        smooth_radius=params.smooth_radius,
        use_random_walker=params.random_walker,
        min_area=params.min_area,
    )
    if params.method == "sam":
        log.warning("refiner 'sam' requested but no sam_checkpoint given: running the %s", refiner.description)
    else:
        ignored = params.sam_checkpoint
        extra = f" (sam_checkpoint {ignored} ignored: refiner is classical)" if ignored else ""
        log.info("refinement: %s%s", refiner.description, extra)
    return refiner


def refine_batch(refiner: Refiner, images: Sequence[np.ndarray], probs: np.ndarray) -> list[np.ndarray]:
    """Refine every image of a batch (one refiner call per image)."""
    return [refiner.refine(img, p) for img, p in zip(images, probs)]
