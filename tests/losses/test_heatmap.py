import math

import pytest
import torch

from denseseg.losses.heatmap import HeatmapParams, gaussian_heatmaps, heatmap_loss, heatmap_loss_from_features

NAN = float("nan")


def test_the_target_peaks_at_alpha_on_the_landmark_and_falls_to_exp_minus_half_one_sigma_away():
    maps = gaussian_heatmaps(torch.tensor([[[6.0, 4.0]]]), height=10, width=12, alpha=44.0, sigma=2.0)
    assert maps.shape == (1, 1, 10, 12)
    assert float(maps.max()) == pytest.approx(44.0) and float(maps[0, 0, 4, 6]) == pytest.approx(44.0)
    assert float(maps[0, 0, 4, 8]) == pytest.approx(44.0 * math.exp(-0.5))  # 2 px = one sigma along x
    assert float(maps[0, 0, 6, 6]) == pytest.approx(44.0 * math.exp(-0.5))  # along y
    assert float(maps[0, 0, 6, 8]) == pytest.approx(44.0 * math.exp(-1.0))


def test_the_target_of_a_missing_landmark_is_all_zero():
    maps = gaussian_heatmaps(torch.tensor([[[NAN, NAN], [1.0, 1.0]]]), 4, 4, alpha=1.0, sigma=1.0)
    assert torch.equal(maps[0, 0], torch.zeros(4, 4)) and float(maps[0, 1].max()) == 1.0


def test_the_loss_is_the_mean_squared_error_over_the_maps_of_present_landmarks():
    landmarks = torch.tensor([[[1.0, 1.0], [NAN, NAN]]])
    params = HeatmapParams(alpha=2.0, sigma=1.0)
    target = gaussian_heatmaps(landmarks, 3, 4, 2.0, 1.0)
    pred = target.clone()
    pred[0, 0, 0, 0] += 3.0  # one pixel off by 3 on the present map
    pred[0, 1] = 100.0  # the missing landmark's map does not count
    assert float(heatmap_loss(pred, landmarks, params)) == pytest.approx(9.0 / 12)


def test_the_closed_form_loss_and_its_gradients_equal_the_direct_ones():
    torch.manual_seed(0)
    b, f, n, h, w = 2, 3, 4, 6, 7
    features = torch.randn(b, f, h, w, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(n, f, 1, 1, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(n, dtype=torch.float64, requires_grad=True)
    landmarks = torch.rand(b, n, 2, dtype=torch.float64) * torch.tensor([w - 1, h - 1], dtype=torch.float64)
    landmarks[1, 2] = NAN
    params = HeatmapParams(alpha=5.0, sigma=1.5)

    pred = torch.nn.functional.conv2d(features, weight, bias)
    direct = heatmap_loss(pred, landmarks, params)
    grads_direct = torch.autograd.grad(direct, (features, weight, bias))
    closed = heatmap_loss_from_features(features, weight, bias, landmarks, params)
    grads_closed = torch.autograd.grad(closed, (features, weight, bias))
    torch.testing.assert_close(closed, direct, rtol=1e-10, atol=1e-10)
    for a, c in zip(grads_direct, grads_closed, strict=True):
        torch.testing.assert_close(c, a, rtol=1e-9, atol=1e-10)


def test_the_closed_form_is_close_to_the_direct_loss_in_float32():
    torch.manual_seed(1)
    features = torch.randn(1, 4, 16, 12)
    weight, bias = torch.randn(3, 4), torch.randn(3)
    landmarks = torch.tensor([[[3.0, 4.0], [8.5, 10.2], [0.0, 15.0]]])
    params = HeatmapParams(alpha=44.0, sigma=3.0)
    direct = heatmap_loss(torch.einsum("nc,bcyx->bnyx", weight, features) + bias.view(1, -1, 1, 1), landmarks, params)
    closed = heatmap_loss_from_features(features, weight, bias, landmarks, params)
    assert float(closed) == pytest.approx(float(direct), rel=1e-4)


def test_heatmap_params_need_positive_values():
    with pytest.raises(ValueError, match="sigma"):
        HeatmapParams(alpha=44.0, sigma=0.0)


def test_the_closed_form_runs_in_float32_under_bfloat16_autocast():
    torch.manual_seed(2)
    features = torch.randn(1, 4, 8, 8)
    weight, bias = torch.randn(2, 4), torch.randn(2)
    landmarks = torch.tensor([[[3.0, 4.0], [5.5, 2.2]]])
    params = HeatmapParams(alpha=44.0, sigma=2.0)
    plain = heatmap_loss_from_features(features, weight, bias, landmarks, params)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = heatmap_loss_from_features(features.bfloat16(), weight, bias, landmarks, params)
    assert mixed.dtype == torch.float32
    assert float(mixed) == pytest.approx(float(plain), rel=1e-2)  # only the bf16 rounding of the features differs
