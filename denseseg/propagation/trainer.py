"""Training and inference of the propagation network on (image, mask) pairs.

Loss is binary cross-entropy plus soft Dice per bone: BCE gives a well
calibrated probability (confidence reads it), Dice keeps the small carpals from
drowning in background. A light random affine (rotation, scale, shift) and
intensity scaling make a few dozen seeds go further. Every random choice comes
from one seed, so a run reproduces bit for bit on the same machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from denseseg.propagation.data import ArrayPairs
from denseseg.propagation.network import (
    NetworkParams,
    autocast,
    build_unet,
    divisor,
    pick_device,
    prepare_input,
    to_device,
)

# called after every epoch with (epoch, epochs, mean loss)
EpochCallback = Callable[[int, int, float], None]


def normalise_image(image: np.ndarray) -> np.ndarray:
    """Any-depth greyscale -> float32 in about [-0.5, 0.5] (1st..99th percentile), robust to exposure."""
    x = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(x, [1.0, 99.0])
    if hi - lo < 1e-6:
        return np.zeros_like(x)
    return (np.clip((x - lo) / (hi - lo), 0.0, 1.0) - 0.5).astype(np.float32)


class TrainConfig(BaseModel):
    """How the propagation network is trained (``propagate.training`` in ``params.yaml``).

    Args:
        batch_size: images per batch (training and prediction).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        dice_weight: weight of the soft Dice term beside the binary cross-entropy.
        augment: a random affine map and intensity gain per training image.
        max_rotation_deg: rotation drawn from U(-max, max) degrees.
        max_scale: scale drawn from 1 + U(-max, max).
        max_shift: shift along each axis drawn from U(-max, max) times the side.
        intensity_gain: image intensities multiplied by 1 + U(-gain, gain).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    dice_weight: float = Field(ge=0)
    augment: bool
    max_rotation_deg: float = Field(ge=0)
    max_scale: float = Field(ge=0, lt=1)
    max_shift: float = Field(ge=0)
    intensity_gain: float = Field(ge=0, lt=1)


def _pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.pad(x, (0, width - x.shape[-1], 0, height - x.shape[-2]))


def _stack_padded(arrays: Sequence[np.ndarray], height: int, width: int, dtype) -> torch.Tensor:
    return torch.stack([_pad_to(torch.as_tensor(np.asarray(a), dtype=dtype), height, width) for a in arrays])


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - mean over bones of the batch-wise soft Dice (a bone absent in the batch pushes towards 0)."""
    prob = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (prob * target).sum(dims)
    denom = prob.sum(dims) + target.sum(dims)
    return 1.0 - ((2.0 * inter + smooth) / (denom + smooth)).mean()


def random_affine(
    image: torch.Tensor, mask: torch.Tensor, config: TrainConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random rotation/scale/shift for image and mask, plus intensity scaling of the image."""
    n = image.shape[0]
    u = lambda: torch.rand(n, generator=generator) * 2.0 - 1.0  # noqa: E731 - uniform in [-1, 1)
    angle = u() * math.radians(config.max_rotation_deg)
    scale = 1.0 + u() * config.max_scale
    tx, ty = u() * 2 * config.max_shift, u() * 2 * config.max_shift
    gain = 1.0 + u() * config.intensity_gain
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    image = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    image = image * gain.view(n, 1, 1, 1)
    mask = F.grid_sample(mask, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return image, (mask >= 0.5).to(mask.dtype)


class SegmentationTrainer:
    """Holds one network; ``fit`` trains (again, from its current weights), ``predict`` gives probabilities.

    Args:
        n_outputs: one sigmoid output per bone.
        network: the UNet's widths and residual units.
        config: how it is trained.
        seed: the initial weights and every random draw of its fits.
        device: auto, cpu or cuda (see ``pick_device``).
    """

    def __init__(self, n_outputs: int, network: NetworkParams, config: TrainConfig, *, seed: int, device: str):
        self.n_outputs = int(n_outputs)
        self.channels = tuple(network.channels)
        self.config = config
        self.seed = int(seed)
        self.device = pick_device(device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        torch.manual_seed(self.seed)
        unet = build_unet(self.n_outputs, self.channels, network.num_res_units, network.dropout)
        self.model = to_device(unet, self.device)
        self.divisor = divisor(self.channels)
        self._fits = 0

    def _padded_size(self, shapes: Sequence[tuple[int, int]]) -> tuple[int, int]:
        h = max(s[0] for s in shapes)
        w = max(s[1] for s in shapes)
        d = self.divisor
        return -(-h // d) * d, -(-w // d) * d

    def fit(
        self,
        images: Sequence[np.ndarray] | Dataset,
        masks: Sequence[np.ndarray] | None = None,
        *,
        epochs: int,
        callback: EpochCallback | None = None,
    ) -> list[float]:
        """Train on normalised images (H, W) and boolean masks (S, H, W); returns the loss per epoch.

        ``images`` is either a sequence of images (with ``masks`` beside it) or a
        dataset of (image, masks) pairs with a ``max_shape`` (``PairDataset``,
        which reads them lazily): only one batch is assembled at a time.
        """
        dataset = ArrayPairs(images, masks, self.n_outputs) if masks is not None else images
        if not len(dataset):
            raise ValueError("need at least one training pair")
        cfg = self.config
        epochs = int(epochs)
        height, width = self._padded_size([dataset.max_shape])
        # each call to fit draws from its own stream, so repeated fits stay reproducible
        generator = torch.Generator().manual_seed(self.seed * 1009 + self._fits)
        self._fits += 1
        optimiser = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.model.train()
        losses = []
        n = len(dataset)
        for epoch in range(1, epochs + 1):
            order = torch.randperm(n, generator=generator)
            total = 0.0
            for start in range(0, n, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                pairs = [dataset[int(i)] for i in idx]
                x = _stack_padded([img for img, _ in pairs], height, width, torch.float32).unsqueeze(1)
                y = _stack_padded([m.astype(np.uint8) for _, m in pairs], height, width, torch.uint8).float()
                del pairs
                if cfg.augment:
                    x, y = random_affine(x, y, cfg, generator)
                x, y = prepare_input(x, self.device), y.to(self.device)
                with autocast(self.device):
                    logits = self.model(x)
                logits = logits.float()
                loss = F.binary_cross_entropy_with_logits(logits, y) + cfg.dice_weight * soft_dice_loss(logits, y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
            losses.append(total / n)
            if callback is not None:
                callback(epoch, epochs, losses[-1])
        return losses

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """Sigmoid probabilities (N, S, H, W) float32 for normalised images of one size."""
        if not len(images):
            return np.zeros((0, self.n_outputs, 0, 0), np.float32)
        shapes = {tuple(img.shape) for img in images}
        if len(shapes) != 1:
            raise ValueError(f"predict expects images of one size, got {sorted(shapes)}")
        h, w = shapes.pop()
        height, width = self._padded_size([(h, w)])
        batch_size = batch_size or self.config.batch_size
        self.model.eval()
        out = np.empty((len(images), self.n_outputs, h, w), np.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            x = _stack_padded(chunk, height, width, torch.float32).unsqueeze(1)
            with autocast(self.device):
                logits = self.model(prepare_input(x, self.device))
            prob = torch.sigmoid(logits.float())[..., :h, :w]
            out[start : start + len(chunk)] = prob.cpu().numpy()
        return out
