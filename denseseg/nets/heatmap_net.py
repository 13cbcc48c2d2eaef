"""Heatmap regression's network (paper 3.5): the shared backbone and a 1x1 convolution, one map per landmark.

Not ``UNet(out_channels=710)``: that puts 710 channels into the UNet's last
up-convolution (5 M parameters, 34 s per CPU step measured); a 1x1 head on the 64
features keeps the backbone the same as DenseSeg's, as the paper intends.
"""

from __future__ import annotations

import torch
from torch import nn

from denseseg.nets.backbone import BackboneParams, build_backbone


class HeatmapNet(nn.Module):
    def __init__(self, backbone: BackboneParams, n_landmarks: int):
        super().__init__()
        self.backbone = build_backbone(backbone)
        self.head = nn.Conv2d(backbone.features, n_landmarks, kernel_size=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) -> (B, N, H, W) heatmaps."""
        return self.head(self.backbone(x))
