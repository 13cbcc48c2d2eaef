"""Heatmap decoders on Gaussians at known sub-pixel positions."""

import torch

from denseseg.losses.heatmap import gaussian_heatmaps
from denseseg.nets.heatmap_decode import decode_argmax, decode_subpixel


def test_subpixel_decoder_finds_a_gaussian_within_five_hundredths_of_a_pixel():
    truth = torch.tensor([[[10.3, 7.8], [4.55, 12.1], [20.0, 3.0], [1.2, 15.7]]])
    maps = gaussian_heatmaps(truth, 20, 24, alpha=44.0, sigma=2.0)
    found = decode_subpixel(maps)
    assert (found - truth).abs().max() < 0.05
    # a peak on the image border has no neighbour beyond it: that axis keeps the pixel (documented)
    border = decode_subpixel(gaussian_heatmaps(torch.tensor([[[0.2, 7.6]]]), 20, 24, 44.0, 2.0))
    assert border[0, 0, 0] == 0.0 and abs(float(border[0, 0, 1]) - 7.6) < 0.05
    assert (decode_argmax(maps) - truth.round()).abs().max() == 0  # the plain decoder: the nearest pixel


def test_subpixel_decoder_beats_argmax_on_average():
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(1, 50, 2, generator=g) * torch.tensor([30.0, 20.0]) + 2
    maps = gaussian_heatmaps(truth, 24, 34, alpha=1.0, sigma=3.0)
    sub = (decode_subpixel(maps) - truth).norm(dim=-1).mean()
    arg = (decode_argmax(maps) - truth).norm(dim=-1).mean()
    assert sub < 0.01 < 0.2 < arg


def test_maps_with_non_finite_values_decode_to_nan_and_flat_maps_stay_finite():
    maps = torch.zeros(1, 2, 5, 5)
    maps[0, 0, 2, 2] = float("nan")
    out = decode_subpixel(maps)
    assert torch.isnan(out[0, 0]).all() and torch.isfinite(out[0, 1]).all()
    assert torch.isnan(decode_argmax(maps)[0, 0]).all()
