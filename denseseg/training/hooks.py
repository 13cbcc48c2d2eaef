"""What the training loop hands out: its result, its error, the callback interface and the rate schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from denseseg.training.loop import Trainer


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, a step function that returns no loss)."""


@dataclass(frozen=True)
class TrainingResult:
    """What ``Trainer.fit`` did.

    ``epochs_run`` counts the epochs the final weights have been trained for (the
    history's length), including those done before a resume; ``resumed_from`` is the
    epoch of the checkpoint this call continued from (None for a fresh start).
    """

    epochs_run: int
    best_epoch: int | None
    best_metric: float | None
    history: list[dict]
    resumed_from: int | None


class Callback:
    """One concern hooked into the loop (logging, early plots, a test's interruption)."""

    def on_train_start(self, trainer: Trainer) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, record: dict) -> None:
        pass

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        pass

    def on_train_end(self, trainer: Trainer, result: TrainingResult) -> None:
        pass


def lr_factor(index: int, epochs: int, schedule: str, decay: float) -> float:
    """Learning-rate multiplier of the 0-based epoch ``index`` (the schedule steps once per epoch).

    cosine: 1/decay + (1 - 1/decay) * (1 + cos(pi * index / epochs)) / 2, i.e. the first
    epoch trains at ``lr`` and the rate falls towards ``lr / decay``, which it reaches
    at the end of the last epoch (as ``CosineAnnealingLR(T_max=epochs, eta_min=lr/decay)``).
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        floor = 1.0 / decay
        return floor + (1.0 - floor) * (1.0 + math.cos(math.pi * index / epochs)) / 2.0
    raise ValueError(f"lr_schedule {schedule!r}: expected 'constant' or 'cosine'")
