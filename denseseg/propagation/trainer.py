"""Training and inference of the propagation network on (image, mask) pairs, through the shared loop.

Loss is binary cross-entropy plus MONAI's soft Dice per bone (sigmoid, batch-wise,
never softmax: bones overlap): BCE gives a well calibrated probability (confidence
reads it), Dice keeps the small carpals from drowning in background. The epochs,
batches, seeding, device handling and the recorded random affine (rotation, scale,
shift and an intensity gain) are ``denseseg.training``'s, shared with every model
of the pipeline; this module adds only the step, the padding to the UNet's divisor
and prediction. Propagation trains AdamW at a constant rate without gradient
clipping (a round is short, and a later round fine-tunes from the last one), so
every random choice comes from one seed and a run reproduces bit for bit on the same
machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from denseseg.losses.segmentation import dice_loss
from denseseg.propagation.data import ArrayPairs
from denseseg.propagation.network import NetworkParams, build_network, divisor
from denseseg.training.augment import AffineAugment
from denseseg.training.config import AugmentParams, TrainingConfig
from denseseg.training.device import autocast, resolve_device
from denseseg.training.loop import Callback, Trainer, TrainingResult

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
        lr: AdamW learning rate (constant).
        weight_decay: AdamW weight decay.
        dice_weight: weight of the soft Dice term beside the binary cross-entropy.
        augment: the shared random affine and intensity gain per training image.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    dice_weight: float = Field(ge=0)
    augment: AugmentParams

    def loop(self, epochs: int, device: str) -> TrainingConfig:
        """The shared loop's configuration of one fit: this section plus propagation's fixed choices.

        The threads are left as the caller set them (``torch.get_num_threads()``).
        """
        return TrainingConfig(
            epochs=epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            lr_schedule="constant",
            lr_decay=1.0,
            optimizer="adamw",
            weight_decay=self.weight_decay,
            grad_clip_norm=None,
            shuffle=True,
            validate_every=1,
            device=device,
            threads=torch.get_num_threads(),
            num_workers=0,
        )


def _padded(array: np.ndarray, height: int, width: int, dtype) -> np.ndarray:
    """``array`` (..., h, w) zero-padded at the bottom and right to (..., height, width)."""
    array = np.asarray(array, dtype=dtype)
    pad = [(0, 0)] * (array.ndim - 2) + [(0, height - array.shape[-2]), (0, width - array.shape[-1])]
    return np.pad(array, pad)


class PairItems(Sequence):
    """(image, masks) pairs as the training loop's items, padded to one frame.

    Item ``i`` is {"item": its name, "image": (1, H, W) float32, "masks": (S, H, W) float32}.
    """

    def __init__(self, pairs: Dataset, height: int, width: int):
        self.pairs, self.height, self.width = pairs, int(height), int(width)
        self.names = [str(k) for k in getattr(pairs, "items", range(len(pairs)))]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        image, masks = self.pairs[i]
        return {
            "item": self.names[i],
            "image": _padded(image[None], self.height, self.width, np.float32),
            "masks": _padded(masks, self.height, self.width, np.float32),
        }


def segmentation_terms(logits: torch.Tensor, masks: torch.Tensor, dice_weight: float) -> dict[str, torch.Tensor]:
    """BCE + ``dice_weight`` x soft Dice of (B, S, H, W) logits against 0/1 masks, with both terms."""
    logits = logits.float()
    bce = F.binary_cross_entropy_with_logits(logits, masks)
    dice = dice_loss(logits, masks)
    return {"loss": bce + dice_weight * dice, "bce": bce, "dice": dice}


class _EpochLoss(Callback):
    def __init__(self, callback: EpochCallback):
        self.callback = callback

    def on_epoch_end(self, trainer: Trainer, record: dict) -> None:
        self.callback(record["epoch"], trainer.config.epochs, record["train_loss"])


class SegmentationTrainer:
    """Holds one network; ``fit`` trains (again, from its current weights), ``predict`` gives probabilities.

    Args:
        n_outputs: one sigmoid output per bone.
        network: the UNet's widths and residual units.
        config: how it is trained.
        seed: the initial weights and every random draw of its fits.
        device: auto, cpu or cuda (see ``denseseg.training.device.resolve_device``).
    """

    def __init__(self, n_outputs: int, network: NetworkParams, config: TrainConfig, *, seed: int, device: str):
        self.n_outputs = int(n_outputs)
        self.config = config
        self.seed = int(seed)
        self.device_name = device
        self.device = resolve_device(device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        torch.manual_seed(self.seed)
        self.model = build_network(self.n_outputs, network).to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.divisor = divisor(network)
        self.augment = AffineAugment(config.augment)
        self.last_result: TrainingResult | None = None
        self._fits = 0

    def _padded_size(self, height: int, width: int) -> tuple[int, int]:
        d = self.divisor
        return -(-height // d) * d, -(-width // d) * d

    def _step(self, network: torch.nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        return segmentation_terms(network(batch["image"]), batch["masks"], self.config.dice_weight)

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
        which reads them lazily): only one batch is assembled at a time. Each call
        to ``fit`` draws from its own seed, so repeated fits stay reproducible.
        """
        dataset = ArrayPairs(images, masks, self.n_outputs) if masks is not None else images
        if not len(dataset):
            raise ValueError("need at least one training pair")
        trainer = Trainer(
            self.model,
            self._step,
            self.config.loop(int(epochs), self.device_name),
            seed=self.seed * 1009 + self._fits,
            train_set=PairItems(dataset, *self._padded_size(*dataset.max_shape)),
            augment=self.augment,
            monitor="train_loss",
            callbacks=[_EpochLoss(callback)] if callback is not None else (),
        )
        self._fits += 1
        self.last_result = trainer.fit()
        return [record["train_loss"] for record in self.last_result.history]

    @torch.no_grad()
    def predict(self, images: Sequence[np.ndarray], batch_size: int | None = None) -> np.ndarray:
        """Sigmoid probabilities (N, S, H, W) float32 for normalised images of one size."""
        if not len(images):
            return np.zeros((0, self.n_outputs, 0, 0), np.float32)
        shapes = {tuple(img.shape) for img in images}
        if len(shapes) != 1:
            raise ValueError(f"predict expects images of one size, got {sorted(shapes)}")
        h, w = shapes.pop()
        height, width = self._padded_size(h, w)
        batch_size = batch_size or self.config.batch_size
        self.model.eval()
        out = np.empty((len(images), self.n_outputs, h, w), np.float32)
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            x = torch.from_numpy(np.stack([_padded(img, height, width, np.float32) for img in chunk]))[:, None]
            x = x.to(self.device, non_blocking=True)
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(self.device):
                logits = self.model(x)
            prob = torch.sigmoid(logits.float())[..., :h, :w]
            out[start : start + len(chunk)] = prob.cpu().numpy()
        return out
