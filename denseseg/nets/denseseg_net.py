"""DenseSeg's two-head UNet (paper Fig. 2): a segmentation head and a uv head on shared features.

Each head is two residual units (one 3x3 convolution each, instance norm, LeakyReLU)
at the backbone's width, then a 1x1 convolution: one logit per structure
(sigmoid, multi-label: bones overlap) and two uv channels per structure (one
function per structure, as in the paper). At 64 features the two heads hold
151,283 parameters (the paper: "150 000"). At inference a structure's uv map is
kept only inside its predicted mask (``masked_uv``).
"""

from __future__ import annotations

import torch
from torch import nn

from denseseg.nets.backbone import ACT, NORM, BackboneParams, build_backbone


def _head(features: int, out_channels: int) -> nn.Sequential:
    from monai.networks.blocks import ResidualUnit

    units = [ResidualUnit(2, features, features, subunits=1, act=ACT, norm=NORM, bias=False) for _ in range(2)]
    return nn.Sequential(*units, nn.Conv2d(features, out_channels, kernel_size=1))


class DenseSegNet(nn.Module):
    """Backbone + segmentation head + uv head.

    Args:
        backbone: the backbone's widths.
        n_structures: S, the number of structures (mask channels; uv has 2 S).
    """

    def __init__(self, backbone: BackboneParams, n_structures: int):
        super().__init__()
        self.n_structures = n_structures
        self.backbone = build_backbone(backbone)
        self.seg_head = _head(backbone.features, n_structures)
        self.uv_head = _head(backbone.features, 2 * n_structures)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, H, W) -> mask logits (B, S, H, W), uv maps (B, S, 2, H, W)."""
        features = self.backbone(x)
        seg = self.seg_head(features)
        uv = self.uv_head(features)
        b, _, h, w = uv.shape
        return seg, uv.reshape(b, self.n_structures, 2, h, w)

    def head_parameters(self) -> int:
        return sum(p.numel() for head in (self.seg_head, self.uv_head) for p in head.parameters())


def masked_uv(uv: torch.Tensor, probs: torch.Tensor, threshold: float) -> torch.Tensor:
    """uv (B, S, 2, H, W) with NaN wherever the structure's probability (B, S, H, W) is not above ``threshold``."""
    inside = (probs > threshold).unsqueeze(2)
    return torch.where(inside, uv, torch.full_like(uv, float("nan")))
