"""Network shapes and parameter counts against counts computed from the layer shapes."""

import torch

from denseseg.nets.backbone import BackboneParams, count_parameters, size_divisor
from denseseg.nets.denseseg_net import DenseSegNet, masked_uv
from denseseg.nets.heatmap_net import HeatmapNet

PAPER = BackboneParams(channels=[64, 128, 256, 512], num_res_units=2, features=64)


def head_count(features: int, out_channels: int) -> int:
    """Two residual units (3x3 conv without bias + instance norm weight and bias) and a 1x1 conv with bias."""
    unit = features * features * 9 + 2 * features
    return 2 * unit + features * out_channels + out_channels


def test_paper_width_has_the_papers_parameter_counts():
    net = DenseSegNet(PAPER, 17)
    backbone = count_parameters(net.backbone)
    assert 6.3e6 < backbone < 6.6e6  # the paper: "6.4 million"; MONAI's UNet at these widths: 6,514,432
    assert backbone == 6_514_432
    assert net.head_parameters() == head_count(64, 17) + head_count(64, 34) == 151_283  # the paper: "150 000"


def test_heatmap_net_is_the_backbone_plus_a_1x1_convolution():
    small = BackboneParams(channels=[4, 8, 16], num_res_units=0, features=6)
    heat = HeatmapNet(small, 710)
    assert count_parameters(heat) == count_parameters(heat.backbone) + 6 * 710 + 710
    assert heat(torch.zeros(2, 1, 16, 12)).shape == (2, 710, 16, 12)


def test_denseseg_net_gives_a_logit_per_structure_and_two_uv_channels():
    small = BackboneParams(channels=[4, 8, 16], num_res_units=1, features=5)
    assert size_divisor(small) == 4
    seg, uv = DenseSegNet(small, 3)(torch.zeros(2, 1, 16, 12))
    assert seg.shape == (2, 3, 16, 12) and uv.shape == (2, 3, 2, 16, 12)


def test_masked_uv_keeps_uv_only_inside_the_predicted_mask():
    uv = torch.ones(1, 2, 2, 2, 2)
    probs = torch.tensor([[[[0.9, 0.1], [0.6, 0.5]], [[0.0, 0.0], [0.0, 1.0]]]])
    out = masked_uv(uv, probs, 0.5)
    inside = torch.isfinite(out[:, :, 0])
    assert inside.tolist() == [[[[True, False], [True, False]], [[False, False], [False, True]]]]
    assert torch.isfinite(out[:, :, 1]).equal(inside)
