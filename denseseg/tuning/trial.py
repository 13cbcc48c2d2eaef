"""One tuning trial: a method trained briefly with sampled loss weights, scored on the validation split.

Every trial starts from the same initial weights (torch seeded before the network is built) and the same
batches and augmentation draws (the trainer's seed), so two trials differ only by the sampled values.
The objectives are the last epoch's validation metrics; the test split is never seen.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from denseseg.losses.denseseg import dense_uv_l1
from denseseg.methods.base import LandmarkSpace
from denseseg.methods.registry import method_class
from denseseg.training.augment import AffineAugment, AugmentParams
from denseseg.training.config import TrainingConfig, deep_update
from denseseg.training.loop import Trainer, TrainingError
from denseseg.tuning.prune import FirstEpochDice, TrialPruned
from denseseg.tuning.space import SearchSpace

#: the tunable methods and what their validation records (``Method.validate``; DenseSeg also ``val_uv_l1``)
TUNABLE_METRICS = {
    "denseseg": ("val_loss", "val_dice", "val_tre_px", "val_uv_l1"),
    "heatreg": ("val_loss", "val_dice", "val_tre_px"),
}

_INIT_LOCK = threading.Lock()  # seeding torch and building a network is one step, even with workers in threads


def with_uv_error(method):
    """DenseSeg's validation plus ``uv_l1``: mean |predicted - true uv| over the pixels where the true map exists."""

    def validate(network, batch):
        out = method.validate(network, batch)
        with torch.no_grad():
            _, uv = network(batch["image"])
        out["uv_l1"] = float(dense_uv_l1(uv, batch["uv"]))
        return out

    return validate


@dataclass(frozen=True)
class Trial:
    """Trains ``method`` with ``base_params`` deep-updated by a trial's values; see the module docstring.

    ``objectives`` are validation record keys (``TUNABLE_METRICS``); a trial whose Dice after the first
    epoch is below ``prune_dice_below`` is pruned, as is one whose loss or objectives are not finite.
    """

    method: str
    base_params: dict[str, Any]
    landmarks: LandmarkSpace
    pos_weight: torch.Tensor
    training: TrainingConfig
    augment: AugmentParams
    seed: int
    prune_dice_below: float
    objectives: tuple[str, ...]

    def setup(self, **more: Any) -> dict[str, Any]:
        """What makes two trials comparable (stored in the study, compared on every open): this trial's
        method, seed, base params, training and augmentation, and ``more`` (the data, space, objectives...)."""
        return {
            "seed": self.seed,
            "method": self.method,
            "base_params": self.base_params,
            "training": self.training.model_dump(mode="json"),
            "augment": self.augment.model_dump(mode="json"),
            **more,
        }

    def __call__(self, values: dict[str, float], train_set: Sequence[dict], val_set: Sequence[dict]) -> list[float]:
        """The objectives of one trial. Raises ValueError for values the method's params refuse, TrialPruned."""
        cls = method_class(self.method)
        params = cls.Params(**deep_update(self.base_params, SearchSpace.nested(values)))  # ValidationError: ValueError
        method = cls(params, self.landmarks, self.pos_weight)
        with _INIT_LOCK:
            torch.manual_seed(self.seed)  # every trial starts from the same weights: only the loss differs
            network = method.build_network()
        trainer = Trainer(
            network,
            method.step,
            self.training,
            seed=self.seed,
            train_set=train_set,
            val_set=val_set,
            validate=with_uv_error(method) if "val_uv_l1" in TUNABLE_METRICS[self.method] else method.validate,
            augment=AffineAugment(self.augment),
            workdir=None,  # a trial is short: an interrupted one is trained again from the start
            callbacks=[FirstEpochDice(self.prune_dice_below)],
        )
        try:
            record = trainer.fit().history[-1]
        except TrainingError as err:
            raise TrialPruned(f"non-finite training loss ({err})") from None
        scores = [float(record.get(name, math.nan)) for name in self.objectives]
        bad = [name for name, v in zip(self.objectives, scores, strict=True) if not math.isfinite(v)]
        if bad:
            raise TrialPruned(f"objective(s) {bad} not finite after epoch {record['epoch']}")
        return scores
