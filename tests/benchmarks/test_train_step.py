"""benchmarks/train_step.py: the convolution MAC count against a count by hand."""

import torch
from torch import nn


def test_conv_macs_counts_plain_grouped_and_transposed_convolutions_by_hand(load_benchmark):
    train_step = load_benchmark("train_step")
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # 8 x 6 outputs x 4 channels x 1 input x 9 taps = 1728
        nn.Conv2d(4, 4, 3, padding=1, groups=2),  # 48 x 4 x (4 / 2) x 9 = 3456
        nn.ConvTranspose2d(4, 2, 3, stride=2),  # 48 input pixels x 4 x 2 x 9 = 3456
        nn.ReLU(),
    )
    assert train_step.conv_macs(net, 8, 6) == 1728 + 3456 + 3456
    assert net.training  # left in training mode, as it was given


def test_conv_macs_of_the_paper_heads_exceed_the_backbone_at_full_resolution(load_benchmark):
    """Four 64-channel 3x3 convolutions at full resolution: 4 x 64 x 64 x 9 MACs per pixel from the heads alone."""
    train_step = load_benchmark("train_step")
    from denseseg.nets.backbone import BackboneParams
    from denseseg.nets.denseseg_net import DenseSegNet

    net = DenseSegNet(BackboneParams(channels=[8, 16], num_res_units=0, features=64), n_structures=2)
    h, w = 16, 8
    heads = sum(train_step.conv_macs(_ImageToFeatures(head, 64), h, w) for head in (net.seg_head, net.uv_head))
    by_hand = 2 * (2 * h * w * 64 * 64 * 9) + h * w * 64 * (2 + 4)  # two 3x3 units per head + the 1x1 outputs
    assert heads == by_hand
    assert train_step.conv_macs(net, h, w) == train_step.conv_macs(net.backbone, h, w) + by_hand


class _ImageToFeatures(nn.Module):
    """A head fed with a (1, features, H, W) zero map instead of the image (conv_macs passes one channel)."""

    def __init__(self, head: nn.Module, features: int):
        super().__init__()
        self.head, self.features = head, features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.expand(-1, self.features, -1, -1))
