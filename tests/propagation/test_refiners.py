"""Refiners: shape clean-up, image-driven correction, the choice of refiner, SAM when available."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from denseseg.evaluation.segmentation import dice
from denseseg.propagation.refiners import (
    ClassicalRefiner,
    RefinerParams,
    SamRefiner,
    clean,
    fill_holes,
    largest_component,
    make_refiner,
    random_walker_refine,
)
from tests.builders import project_params


def disk(shape, cy, cx, r):
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_clean_fills_a_hole_and_removes_a_spurious_component():
    truth = disk((40, 40), 20, 20, 10)
    noisy = truth.copy()
    noisy[18:22, 18:22] = False  # a hole
    noisy[2:4, 35:38] = True  # an island
    assert fill_holes(noisy)[19, 19] and not largest_component(noisy)[3, 36]
    out = clean(noisy, radius=1)
    assert out[19, 19] and not out[3:4, 35:38].any()
    assert dice(out, truth) > 0.97


def test_classical_refiner_keeps_absent_bones_absent():
    image = np.zeros((20, 20), np.float32)
    probs = np.zeros((2, 20, 20), np.float32)
    probs[0, 5:12, 5:12] = 0.95
    out = ClassicalRefiner().refine(image, probs)
    assert out[0].sum() > 30 and not out[1].any()
    with pytest.raises(ValueError):
        ClassicalRefiner().refine(image, probs[:, :10])


def test_random_walker_recovers_the_bone_edge_from_the_image():
    rng = np.random.default_rng(0)
    truth = disk((48, 48), 24, 24, 12)
    image = np.where(truth, 0.8, 0.2) + 0.03 * rng.standard_normal(truth.shape)
    # a degraded prediction: confident only in a small core, undecided in a wide band
    dist = np.hypot(*np.mgrid[0:48, 0:48] - 24)
    prob = np.clip(1.0 - (dist - 2) / 14, 0, 1).astype(np.float32)  # > 0.5 inside radius 9, not 12
    degraded = prob > 0.5
    walked = random_walker_refine(image, prob, high=0.8, low=0.2)
    assert dice(degraded, truth) < 0.8
    assert dice(walked, truth) > 0.95


def test_make_refiner_says_which_refiner_runs(caplog):
    params = project_params("propagate.refiner", method="sam", sam_checkpoint=None)
    with caplog.at_level(logging.INFO):
        refiner = make_refiner(RefinerParams(**params), 0.5, log=logging.getLogger("t"))
    assert refiner.name == "classical"
    assert "no sam_checkpoint" in caplog.text and "classical refiner" in caplog.text
    classical = make_refiner(RefinerParams(**{**params, "method": "classical", "min_area": 7, "rw_beta": 90.0}), 0.4)
    assert (classical.min_area, classical.beta, classical.threshold) == (7, 90.0, 0.4)
    with pytest.raises(ValidationError, match="method"):
        RefinerParams(**{**params, "method": "magic"})


def _tiny_sam():
    """A randomly initialised SAM small enough for a CPU test (no weights needed)."""
    from functools import partial

    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    torch.manual_seed(0)
    dim, size, patch = 32, 64, 16
    return Sam(
        image_encoder=ImageEncoderViT(
            img_size=size,
            patch_size=patch,
            embed_dim=dim,
            depth=1,
            num_heads=2,
            out_chans=dim,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            qkv_bias=True,
            use_rel_pos=False,
            window_size=0,
            global_attn_indexes=(),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(size // patch, size // patch),
            input_image_size=(size, size),
            mask_in_chans=4,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2),
            transformer_dim=dim,
            iou_head_depth=1,
            iou_head_hidden_dim=16,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )


def test_sam_refiner_runs_with_a_random_model():
    image = np.zeros((40, 56), np.float32)
    probs = np.zeros((3, 40, 56), np.float32)
    probs[0, 5:15, 5:20] = 0.9
    probs[1, 20:35, 30:50] = 0.9  # bone 2 absent
    refiner = SamRefiner(model=_tiny_sam(), device="cpu")
    out = refiner.refine(image, probs)
    assert out.shape == probs.shape and out.dtype == bool
    assert out[0].any() and out[1].any() and not out[2].any()
    assert "SAM" in refiner.description
