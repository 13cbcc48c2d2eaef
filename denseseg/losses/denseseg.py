"""DenseSeg's loss (paper eq. 4) and its terms.

    L = lambda_bce * L_BCE + lambda_phi / 2 * (L_phi + L_LM) + lambda_tv * L_TV  (+ dice_weight * L_Dice)

- ``L_BCE``: binary cross-entropy per structure with positive weights from the
  training masks (``denseseg.losses.segmentation``).
- ``L_phi`` (``dense_uv_l1``): L1 between predicted and true uv maps over the pixels
  where the true map is defined. NaN (outside a structure) is replaced before any
  arithmetic, so it reaches neither the loss nor its gradient.
- ``L_LM`` (``landmark_uv_l1``): the predicted uv map of a landmark's structure,
  bilinearly sampled at the true landmark (``grid_sample``, align_corners=True:
  pixel centres at integer coordinates), against the template's uv of that
  landmark; averaged per structure, then over structures, so a bone with 80
  landmarks weighs as much as one with 20 (the paper's normalisation).
- ``L_TV`` (``uv_total_variation``): first-order, anisotropic L1 total variation
  of the predicted uv maps between 4-neighbour pixel pairs that both lie inside
  the structure's true mask. L1 rather than squared differences because the maps
  are piecewise affine: it penalises noise without rounding the (legitimate)
  kinks between triangles; inside the mask only, because outside it the map
  is undefined and masked away.
- ``L_Dice`` (optional, ``dice_weight`` 0 switches it off): MONAI's soft Dice; not
  in the paper, but it makes the short CPU demo converge (BCE alone is slow
  with positive weights in the hundreds).

``dense: false`` drops ``L_phi``: the paper's "sparse" ablation (landmark sampling only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from denseseg.losses.segmentation import bce_loss, dice_loss


class DenseSegLossParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lambda_bce: float = Field(ge=0)  # paper: 0.13
    lambda_phi: float = Field(ge=0)  # paper: 0.66
    lambda_tv: float = Field(ge=0)  # paper: 0.2
    dense: bool  # false: the "sparse" ablation without L_phi
    dice_weight: float = Field(ge=0)  # 0: the paper's loss exactly


def dense_uv_l1(pred_uv: torch.Tensor, target_uv: torch.Tensor) -> torch.Tensor:
    """Mean |pred - target| over the finite entries of ``target_uv`` (both (B, S, 2, H, W)); 0 when none."""
    valid = torch.isfinite(target_uv)
    target = torch.where(valid, target_uv, torch.zeros_like(target_uv))
    diff = torch.where(valid, (pred_uv.float() - target).abs(), torch.zeros_like(target))
    return diff.sum() / valid.sum().clamp(min=1)


def sample_at(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of (B, C, H, W) maps at (B, M, 2) pixel points (x, y) -> (B, M, C); NaN points give 0."""
    h, w = maps.shape[-2:]
    finite = torch.isfinite(points)
    pts = torch.where(finite, points, torch.zeros_like(points))
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=points.device, dtype=pts.dtype)
    grid = (pts * scale - 1.0).unsqueeze(1)  # (B, 1, M, 2)
    out = F.grid_sample(maps.float(), grid.float(), mode="bilinear", padding_mode="border", align_corners=True)
    return out[:, :, 0].transpose(1, 2)


def landmark_uv_l1(
    pred_uv: torch.Tensor, landmarks: torch.Tensor, landmark_uv: torch.Tensor, landmark_structure: torch.Tensor
) -> torch.Tensor:
    """L_LM: predicted uv at the true landmarks vs the template uv, mean per structure, then over structures.

    Args:
        pred_uv: (B, S, 2, H, W) predicted uv maps.
        landmarks: (B, M, 2) true landmark positions (x, y); NaN rows are skipped.
        landmark_uv: (M, 2) template uv of each landmark.
        landmark_structure: (M,) structure index of each landmark.
    """
    per_structure = []
    valid_all = torch.isfinite(landmarks).all(-1)  # (B, M)
    for s in torch.unique(landmark_structure).tolist():
        sel = landmark_structure == s
        valid = valid_all[:, sel]
        if not bool(valid.any()):
            continue
        sampled = sample_at(pred_uv[:, s], landmarks[:, sel])  # (B, M_s, 2)
        err = (sampled - landmark_uv[sel].to(sampled)).abs().mean(-1)  # (B, M_s)
        per_structure.append(torch.where(valid, err, torch.zeros_like(err)).sum() / valid.sum())
    if not per_structure:
        return pred_uv.float().sum() * 0.0
    return torch.stack(per_structure).mean()


def uv_total_variation(pred_uv: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean |difference| of uv between 4-neighbour pixels both inside the structure's mask (B, S, H, W)."""
    inside = masks > 0.5
    uv = pred_uv.float()
    dy = (uv[..., 1:, :] - uv[..., :-1, :]).abs()
    dx = (uv[..., :, 1:] - uv[..., :, :-1]).abs()
    pair_y = (inside[..., 1:, :] & inside[..., :-1, :]).unsqueeze(2)
    pair_x = (inside[..., :, 1:] & inside[..., :, :-1]).unsqueeze(2)
    total = (dy * pair_y).sum() + (dx * pair_x).sum()
    count = 2 * (pair_y.sum() + pair_x.sum())  # two channels per pair
    return total / count.clamp(min=1)


def denseseg_loss(
    seg_logits: torch.Tensor,
    uv: torch.Tensor,
    batch: dict,
    landmark_uv: torch.Tensor,
    landmark_structure: torch.Tensor,
    pos_weight: torch.Tensor,
    params: DenseSegLossParams,
) -> dict[str, torch.Tensor]:
    """Eq. 4 on one batch: ``loss`` and each term (detached copies for logging)."""
    masks = batch["masks"]
    terms = {
        "bce": bce_loss(seg_logits, masks, pos_weight),
        "landmarks": landmark_uv_l1(uv, batch["landmarks"], landmark_uv, landmark_structure),
        "tv": uv_total_variation(uv, masks),
    }
    loss = params.lambda_bce * terms["bce"] + params.lambda_tv * terms["tv"]
    uv_terms = terms["landmarks"]
    if params.dense:
        terms["uv"] = dense_uv_l1(uv, batch["uv"])
        uv_terms = uv_terms + terms["uv"]
    loss = loss + params.lambda_phi / 2 * uv_terms
    if params.dice_weight > 0:
        terms["dice"] = dice_loss(seg_logits, masks)
        loss = loss + params.dice_weight * terms["dice"]
    return {"loss": loss, **{k: v.detach() for k, v in terms.items()}}
