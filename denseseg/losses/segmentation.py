"""Segmentation terms for multi-label masks (bones overlap, so every structure is its own sigmoid)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def positive_weights(positive: np.ndarray, total: np.ndarray) -> torch.Tensor:
    """BCE positive weight per structure: negative / positive pixels over the training split (paper 2.1.3).

    A structure that never appears gets weight 1 (it adds no positive term to weigh).
    """
    positive = np.asarray(positive, np.float64)
    negative = np.asarray(total, np.float64) - positive
    weight = np.where(positive > 0, negative / np.maximum(positive, 1.0), 1.0)
    return torch.as_tensor(weight, dtype=torch.float32)


def bce_loss(logits: torch.Tensor, masks: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over (B, S, H, W) with one positive weight per structure."""
    return F.binary_cross_entropy_with_logits(
        logits.float(), masks.float(), pos_weight=pos_weight.view(1, -1, 1, 1).to(logits.device)
    )


def dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """MONAI's soft Dice loss with a sigmoid per channel, over the whole batch (never softmax: bones overlap)."""
    from monai.losses import DiceLoss

    return DiceLoss(sigmoid=True, batch=True)(logits.float(), masks.float())
