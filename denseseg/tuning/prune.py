"""Stopping hopeless trials of a multi-objective study.

Optuna's pruners compare intermediate values of one objective and are not
available to multi-objective studies, so the rule here is simple and stated:
a trial is pruned when its training loss is not finite (the loop raises
``TrainingError``; the caller turns it into ``TrialPruned``) or when its
validation Dice after its first validated epoch is below ``dice_below`` (the
masks are hopeless, and so are landmarks read from them). A pruned trial is
told to the study as PRUNED, with the reason in its user attrs; it has no
objective values and is never on the Pareto front.
"""

from __future__ import annotations

import math

from denseseg.training.loop import Callback


class TrialPruned(Exception):
    """A trial stopped by the pruning rule; the message is the reason recorded in the study."""


class FirstEpochDice(Callback):
    """Raise ``TrialPruned`` when the first validation Dice is below ``dice_below`` (or not a number)."""

    def __init__(self, dice_below: float, key: str = "val_dice"):
        self.dice_below = float(dice_below)
        self.key = key
        self._checked = False

    def on_epoch_end(self, trainer, record: dict) -> None:
        if self._checked or self.key not in record:
            return
        self._checked = True
        dice = float(record[self.key])
        if not math.isfinite(dice) or dice < self.dice_below:
            raise TrialPruned(
                f"{self.key} {dice:.4f} after epoch {record['epoch']} is below the pruning threshold {self.dice_below}"
            )
