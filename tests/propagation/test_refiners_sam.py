"""The SAM refiner with real Segment Anything models, randomly initialised (no checkpoint needed).

The contract, whatever the weights: one boolean mask per bone of the image's
shape; a bone the network calls absent stays absent; a refined bone lies inside
its prompt box (the pseudo-label's bounding box grown by ``box_margin``; here
the pseudo-label is a phantom bone's true mask, so the box is known by
construction); the same seed gives the same masks. Random weights make SAM
spill far outside the box, which is what the box check needs to see.
"""

import numpy as np
import pytest
import torch

from denseseg.phantom.raster import polygon_mask
from denseseg.phantom.scene import ImageSpec, synthesise
from denseseg.propagation.refiners import SamRefiner
from tests.phantom.tiny import render_settings

ROWS, COLS = slice(64, 128), slice(16, 80)  # a 64 x 64 crop of the carpus
BONES = ("lunate", "capitate", "pisiform")  # the pisiform is called absent below
MARGIN = 2


@pytest.fixture(scope="module")
def crop():
    """(image, probabilities, boxes) of one small phantom crop; boxes as (row0, row1, col0, col1), inclusive."""
    spec = ImageSpec(index=3, filestem="x", patient_id=4, sex="M", age=12.0, laterality="L", projection=1)
    scene = synthesise(spec, 2, render_settings(height_min=200, height_max=240, p_crop=0.0))
    image = scene.image[ROWS, COLS].astype(np.float32) / 65535.0
    probs = np.zeros((len(BONES), *image.shape), np.float32)
    boxes = []
    for k, bone in enumerate(BONES[:2]):
        mask = polygon_mask(scene.truth[bone], scene.image.shape)[ROWS, COLS]
        probs[k] = np.where(mask, 0.9, 0.05)
        rows, cols = np.nonzero(mask)
        boxes.append((rows.min() - MARGIN, rows.max() + MARGIN, cols.min() - MARGIN, cols.max() + MARGIN))
    return image, probs, boxes


def _small_sam(seed: int):
    """SAM's own builder with a one-block, 32-wide image encoder (the 1024-px input path is unchanged)."""
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(seed)
    return _build_sam(encoder_embed_dim=32, encoder_depth=1, encoder_num_heads=2, encoder_global_attn_indexes=[0])


def _refiner(model) -> SamRefiner:
    return SamRefiner(model=model, device="cpu", threshold=0.5, smooth_radius=1, box_margin=MARGIN)


def _check_contract(out: np.ndarray, probs: np.ndarray, boxes: list) -> None:
    assert out.shape == probs.shape and out.dtype == bool
    assert not out[2].any()
    for k, (r0, r1, c0, c1) in enumerate(boxes):
        assert out[k].any()
        outside = out[k].copy()
        outside[max(r0, 0) : r1 + 1, max(c0, 0) : c1 + 1] = False
        assert not outside.any(), f"{BONES[k]}: {outside.sum()} px outside its prompt box"


@pytest.mark.parametrize("seed", [1, 2])
def test_a_small_sam_refines_a_phantom_crop_inside_the_prompt_boxes(crop, seed):
    image, probs, boxes = crop
    out = _refiner(_small_sam(seed)).refine(image, probs)
    _check_contract(out, probs, boxes)
    pseudo = probs[:2] > 0.5
    assert (out[:2] != pseudo).any()  # SAM's masks were used, not the pseudo-labels kept


def test_the_same_seed_gives_the_same_masks(crop):
    image, probs, _ = crop
    first = _refiner(_small_sam(1)).refine(image, probs)
    again = _refiner(_small_sam(1)).refine(image, probs)
    other = _refiner(_small_sam(2)).refine(image, probs)
    assert np.array_equal(first, again) and not np.array_equal(first, other)


@pytest.mark.slow
def test_the_registry_vit_b_without_a_checkpoint_refines_within_the_contract(crop):
    """The model the pipeline builds (``sam_model_registry['vit_b']``), random: about 35 s on one CPU thread."""
    from segment_anything import sam_model_registry

    image, probs, boxes = crop
    torch.manual_seed(0)
    model = sam_model_registry["vit_b"](checkpoint=None)
    out = _refiner(model).refine(image, probs)
    _check_contract(out, probs, boxes)
