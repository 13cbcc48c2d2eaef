"""Heatmap regression's target (paper eq. 5) and loss (squared L2).

    H_l(h, w) = alpha * exp(-((h_l - h)^2 + (w_l - w)^2) / (2 sigma^2))

(the paper prints the exponent without its minus sign; a Gaussian is meant).
Paper: alpha 44, sigma 8 at 384 x 224, both tuned with TPE. A landmark that is
missing (NaN) has no target: its map is left out of the mean.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field


class HeatmapParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(gt=0)  # peak value (paper: 44)
    sigma: float = Field(gt=0)  # standard deviation in pixels (paper: 8 at 384 x 224)


def gaussian_heatmaps(landmarks: torch.Tensor, height: int, width: int, alpha: float, sigma: float) -> torch.Tensor:
    """(B, N, 2) pixel points (x, y) -> (B, N, H, W) Gaussian maps; NaN points give all-zero maps."""
    finite = torch.isfinite(landmarks).all(-1, keepdim=True)
    pts = torch.where(finite, landmarks, torch.zeros_like(landmarks)).float()
    ys = torch.arange(height, device=landmarks.device, dtype=torch.float32)
    xs = torch.arange(width, device=landmarks.device, dtype=torch.float32)
    gy = torch.exp(-((ys.view(1, 1, -1) - pts[..., 1:2]) ** 2) / (2 * sigma**2))  # (B, N, H)
    gx = torch.exp(-((xs.view(1, 1, -1) - pts[..., 0:1]) ** 2) / (2 * sigma**2))  # (B, N, W)
    maps = alpha * gy.unsqueeze(-1) * gx.unsqueeze(-2)  # separable: exp(a + b) = exp(a) exp(b)
    return maps * finite.unsqueeze(-1).float()


def heatmap_loss(pred: torch.Tensor, landmarks: torch.Tensor, params: HeatmapParams) -> torch.Tensor:
    """Mean squared error between predicted maps (B, N, H, W) and the Gaussian targets of the finite landmarks."""
    height, width = pred.shape[-2:]
    target = gaussian_heatmaps(landmarks, height, width, params.alpha, params.sigma)
    valid = torch.isfinite(landmarks).all(-1).float()  # (B, N)
    per_map = ((pred.float() - target) ** 2).mean(dim=(-2, -1))
    return (per_map * valid).sum() / valid.sum().clamp(min=1)
