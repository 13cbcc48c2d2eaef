"""HeatReg's targets and loss (paper eq. 5): H_l(y, x) = alpha * exp(-((y - y_l)^2 + (x - x_l)^2) / (2 sigma^2)).

The paper's eq. 5 lacks the minus sign in the exponent; the Gaussian kernel it
names has it. The loss is the squared L2 distance of predicted to target maps,
averaged over pixels and over the landmarks that are present.

With 710 landmarks the full-resolution maps dominate a training step's memory
(B*710*H*W floats for the prediction, again for the target and for the
difference). Because HeatReg's head is a 1x1 convolution, pred = W f + b per
pixel, and the summed squared error of every map follows from the features'
Gram matrix, their sum, and the projections of the features on the separable
Gaussian target (``heatmap_loss_from_features``): the same loss and gradients
without ever building a 710-channel map.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor


class HeatmapParams(BaseModel):
    """Peak height and width of the target Gaussian (paper alpha = 44, sigma = 8 px)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(gt=0)
    sigma: float = Field(gt=0)


def _check_landmarks(landmarks: Tensor) -> None:
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2:
        raise ValueError(f"landmarks must be (B, N, 2) (x, y), got {tuple(landmarks.shape)}")


def _axis_profiles(landmarks: Tensor, height: int, width: int, sigma: float, dtype, device) -> tuple[Tensor, Tensor]:
    """exp(-(y - y_l)^2 / 2 sigma^2) (B,N,H) and the same along x (B,N,W); zero for NaN landmarks."""
    points = torch.nan_to_num(landmarks.to(device=device, dtype=dtype), nan=0.0)
    ys = torch.arange(height, dtype=dtype, device=device)
    xs = torch.arange(width, dtype=dtype, device=device)
    gy = torch.exp(-((ys - points[..., 1:2]) ** 2) / (2 * sigma**2))
    gx = torch.exp(-((xs - points[..., 0:1]) ** 2) / (2 * sigma**2))
    present = _present(landmarks).to(device=device, dtype=dtype).unsqueeze(-1)
    return gy * present, gx * present


def _present(landmarks: Tensor) -> Tensor:
    return torch.isfinite(landmarks).all(dim=-1)


def gaussian_heatmaps(
    landmarks: Tensor, height: int, width: int, alpha: float, sigma: float, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Target maps (B,N,H,W): alpha at the landmark, 1/e^(1/2) of it one sigma away; all zero for a NaN landmark.

    Args:
        landmarks: (B,N,2) (x, y) pixels (pixel centres at integers), NaN where missing.
        height: map height H.
        width: map width W.
        alpha: peak value.
        sigma: standard deviation in pixels.
        dtype: floating type of the maps.
    """
    _check_landmarks(landmarks)
    gy, gx = _axis_profiles(landmarks, height, width, sigma, dtype, landmarks.device)
    return alpha * gy.unsqueeze(-1) * gx.unsqueeze(-2)


def heatmap_loss(pred: Tensor, landmarks: Tensor, params: HeatmapParams) -> Tensor:
    """Mean squared difference of ``pred`` (B,N,H,W) to the Gaussian targets over present landmarks' maps."""
    _check_landmarks(landmarks)
    b, n, h, w = pred.shape
    if landmarks.shape[:2] != (b, n):
        raise ValueError(f"landmarks {tuple(landmarks.shape)} must be (B={b}, N={n}, 2) for maps {tuple(pred.shape)}")
    pred = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
    target = gaussian_heatmaps(landmarks.to(pred.device), h, w, params.alpha, params.sigma, dtype=pred.dtype)
    present = _present(landmarks).to(pred.device)
    per_map = ((pred - target) ** 2).sum(dim=(-2, -1))
    per_map = torch.where(present, per_map, torch.zeros_like(per_map))
    return per_map.sum() / (present.sum().clamp(min=1) * h * w)


def heatmap_loss_from_features(
    features: Tensor, weight: Tensor, bias: Tensor, landmarks: Tensor, params: HeatmapParams
) -> Tensor:
    """``heatmap_loss(conv1x1(features), ...)`` in closed form, without building the (B,N,H,W) maps.

    Per image b and landmark n with pred = w_n . f + b_n and target T:
    sum_p (pred - T)^2 = w_n' G w_n + 2 b_n w_n' s + P b_n^2 - 2 (w_n' c_n + b_n t_n) + sum_p T^2,
    where G = sum_p f f' (F x F), s = sum_p f, c_n = sum_p f T_n, t_n = sum_p T_n.
    T_n is separable (alpha * g_y g_x), so c_n contracts the features with one
    axis profile, then the other; sum_p T_n and sum_p T_n^2 are products of
    profile sums. Differences of large terms lose a few float32 digits against
    the direct loss (tested equal in float64).

    Args:
        features: (B,F,H,W) backbone output.
        weight: (N,F) or (N,F,1,1) weights of the 1x1 head.
        bias: (N,) bias of the head.
        landmarks: (B,N,2) (x, y), NaN where missing.
        params: alpha and sigma of the targets.
    """
    _check_landmarks(landmarks)
    b, f, h, w = features.shape
    weight = weight.reshape(weight.shape[0], -1)
    n = weight.shape[0]
    if weight.shape[1] != f or bias.shape != (n,) or landmarks.shape[:2] != (b, n):
        raise ValueError(
            f"weight {tuple(weight.shape)}, bias {tuple(bias.shape)} and landmarks {tuple(landmarks.shape)} "
            f"must be (N,F={f}), (N,), (B={b},N,2)"
        )
    # float32 at least, autocast off: the terms cancel, so half precision would leave nothing of the loss
    dtype = torch.promote_types(features.dtype, torch.float32)
    with torch.autocast(device_type=features.device.type, enabled=False):
        features, weight, bias = features.to(dtype), weight.to(dtype), bias.to(dtype)
        gy, gx = _axis_profiles(landmarks, h, w, params.sigma, dtype, features.device)
        alpha = params.alpha
        gram = torch.einsum("bcyx,bdyx->bcd", features, features)
        total = features.sum(dim=(-2, -1))
        along_x = torch.einsum("bcyx,bny->bncx", features, gy)
        cross = alpha * torch.einsum("bncx,bnx->bnc", along_x, gx)
        target_sum = alpha * gy.sum(-1) * gx.sum(-1)
        target_sq = alpha**2 * (gy**2).sum(-1) * (gx**2).sum(-1)
        quadratic = torch.einsum("nc,bcd,nd->bn", weight, gram, weight)
        linear = 2 * bias * (total @ weight.t())
        per_map = quadratic + linear + h * w * bias**2 - 2 * ((cross * weight).sum(-1) + bias * target_sum) + target_sq
    present = _present(landmarks).to(features.device)
    per_map = torch.where(present, per_map, torch.zeros_like(per_map))
    return per_map.sum() / (present.sum().clamp(min=1) * h * w)
