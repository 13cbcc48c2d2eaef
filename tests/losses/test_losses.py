"""Each loss term on tiny tensors against values computed by hand."""

import math

import numpy as np
import pytest
import torch

from denseseg.losses.denseseg import (
    DenseSegLossParams,
    dense_uv_l1,
    denseseg_loss,
    landmark_uv_l1,
    uv_total_variation,
)
from denseseg.losses.segmentation import bce_loss, positive_weights


def test_positive_weights_are_negative_over_positive_pixels():
    w = positive_weights(np.array([10, 0, 50]), np.array([100, 100, 100]))
    assert w.tolist() == pytest.approx([9.0, 1.0, 1.0])


def test_bce_weighs_only_the_positive_pixels():
    logits = torch.zeros(1, 1, 1, 2)
    masks = torch.tensor([[[[1.0, 0.0]]]])
    # both pixels: -log(0.5); the positive one weighted 3: (3 + 1) / 2 * log 2
    assert float(bce_loss(logits, masks, torch.tensor([3.0]))) == pytest.approx(2 * math.log(2))


def test_dense_l1_ignores_nan_targets_and_their_gradient_stays_finite():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    target = torch.tensor([1.5, float("nan"), 2.0, float("nan")])
    loss = dense_uv_l1(pred, target)
    assert float(loss.detach()) == pytest.approx((0.5 + 1.0) / 2)
    loss.backward()
    assert pred.grad.tolist() == [-0.5, 0.0, 0.5, 0.0]


def test_landmark_term_samples_bilinearly_and_normalises_per_structure():
    h, w = 4, 5
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    uv = torch.stack([torch.stack([xs, ys]), torch.stack([xs * 0, ys * 0])])[None]  # (1, 2, 2, h, w)
    # structure 0: u = x, v = y; its one landmark at (1.5, 2.25) has template uv (1.0, 2.0): error (0.5 + 0.25) / 2
    # structure 1: uv = 0; its three landmarks have template uv 1: error 1 each, mean 1 (not weighted by count)
    landmarks = torch.tensor([[[1.5, 2.25], [0.0, 0.0], [1.0, 1.0], [2.0, 3.0]]])
    target = torch.tensor([[1.0, 2.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    structure = torch.tensor([0, 1, 1, 1])
    assert float(landmark_uv_l1(uv, landmarks, target, structure)) == pytest.approx((0.375 + 1.0) / 2)
    landmarks[0, 0] = float("nan")  # structure 0 without a landmark drops out
    assert float(landmark_uv_l1(uv, landmarks, target, structure)) == pytest.approx(1.0)


def test_total_variation_counts_only_pairs_inside_the_mask():
    uv = torch.zeros(1, 1, 2, 2, 3)
    uv[0, 0, 0] = torch.tensor([[0.0, 1.0, 5.0], [0.0, 1.0, 5.0]])  # u; v stays 0
    masks = torch.tensor([[[[1.0, 1.0, 0.0], [1.0, 1.0, 0.0]]]])
    # inside pairs: 2 horizontal (|1 - 0| each) + 2 vertical (0 each), two channels each: 2 / 8
    assert float(uv_total_variation(uv, masks)) == pytest.approx(2 / 8)


def test_eq4_combines_the_terms_with_the_lambdas_and_sparse_drops_the_dense_term():
    torch.manual_seed(0)
    seg = torch.randn(1, 1, 4, 4)
    uv = torch.randn(1, 1, 2, 4, 4)
    batch = {
        "masks": (torch.rand(1, 1, 4, 4) > 0.3).float(),
        "uv": torch.randn(1, 1, 2, 4, 4),
        "landmarks": torch.tensor([[[1.0, 2.0], [2.5, 0.5]]]),
    }
    lm_uv, lm_s, pw = torch.zeros(2, 2), torch.tensor([0, 0]), torch.tensor([2.0])
    params = DenseSegLossParams(lambda_bce=0.13, lambda_phi=0.66, lambda_tv=0.2, dense=True, dice_weight=0.0)
    t = denseseg_loss(seg, uv, batch, lm_uv, lm_s, pw, params)
    expected = 0.13 * t["bce"] + 0.33 * (t["uv"] + t["landmarks"]) + 0.2 * t["tv"]
    assert float(t["loss"]) == pytest.approx(float(expected))
    sparse = denseseg_loss(seg, uv, batch, lm_uv, lm_s, pw, params.model_copy(update={"dense": False}))
    assert "uv" not in sparse
    assert float(sparse["loss"]) == pytest.approx(float(expected - 0.33 * t["uv"]))
