"""Segmentation scores summed as they come, so that many images are scored without keeping their masks.

``GroupScores`` takes the rows of ``denseseg.evaluation.segmentation.score_masks``
one image at a time (``append``) and keeps, per reporting group, exact running
sums (Shewchuk's partials: the result does not depend on the order or chunking
of the images) of Dice and surface distance and their counts. ``aggregate()``
gives what ``group_summary`` gives for the same rows (the means agree to the last
bit or one ulp: the sums here are exactly rounded). ``PropagationScores`` scores
the rounds of label propagation against true masks with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

from denseseg.anatomy import Anatomy
from denseseg.evaluation.segmentation import score_masks


class ExactSum:
    """A running float sum without rounding error (exactly rounded on read)."""

    def __init__(self) -> None:
        self.partials: list[float] = []

    def add(self, x: float) -> None:
        x = float(x)
        i = 0
        for y in self.partials:
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            lo = y - (hi - x)
            if lo:
                self.partials[i] = lo
                i += 1
            x = hi
        self.partials[i:] = [x]

    @property
    def value(self) -> float:
        return math.fsum(self.partials)


class _Group:
    def __init__(self) -> None:
        self.dice = ExactSum()
        self.asd = ExactSum()
        self.n = 0
        self.n_asd = 0


class GroupScores:
    """Mean Dice and ASD per reporting group and over all, accumulated row by row."""

    def __init__(self, anatomy: Anatomy):
        self.anatomy = anatomy
        self.reset()

    def reset(self) -> None:
        self.groups: dict[str, _Group] = {}

    def append(self, rows: Iterable[dict]) -> None:
        """Rows of ``score_masks`` (structure, dice, asd), of one image or many."""
        for row in rows:
            for name in (str(self.anatomy.group_of(row["structure"])), "all"):
                group = self.groups.setdefault(name, _Group())
                group.n += 1
                group.dice.add(row["dice"])
                if not math.isnan(row["asd"]):
                    group.asd.add(row["asd"])
                    group.n_asd += 1

    def aggregate(self) -> dict[str, dict[str, float]]:
        """Like ``group_summary``: {group: {dice_mean, asd_mean, n}} plus "all"; empty without rows."""
        out = {}
        for name in sorted(k for k in self.groups if k != "all") + (["all"] if "all" in self.groups else []):
            g = self.groups[name]
            out[name] = {
                "dice_mean": g.dice.value / g.n,
                "asd_mean": g.asd.value / g.n_asd if g.n_asd else float("nan"),
                "n": g.n,
            }
        return out


def score_against_truth(items: Iterable[str], masks: Mapping, truth: Mapping, anatomy: Anatomy) -> dict:
    """Group means (``GroupScores.aggregate``) of the ``items`` that have truth, scored in the order given."""
    sums = GroupScores(anatomy)
    for item in items:
        if item in truth:
            sums.append(score_masks(item, masks[item], truth[item], anatomy.structures))
    return sums.aggregate()


class PropagationScores:
    """The rounds of label propagation against true masks: per round, all predicted and the accepted images.

    The evaluator of ``denseseg.propagation.rounds.propagate``: ``append`` scores one
    refined image as it is made (no masks kept), ``aggregate`` reduces a round once
    and forgets it. Images without truth are not scored; without any truth a
    round's record gets no scores.

    Args:
        truth: {item: (S, H, W) bool} the true masks (may read from disk on access).
        anatomy: its structures (the mask channels) and reporting groups.
    """

    def __init__(self, truth: Mapping[str, np.ndarray], anatomy: Anatomy):
        self.truth = truth
        self.anatomy = anatomy
        self.rounds: dict[int, tuple[GroupScores, GroupScores]] = {}

    def append(self, round: int, item: str, masks: np.ndarray, accepted: bool) -> None:
        all_, acc = self.rounds.setdefault(round, (GroupScores(self.anatomy), GroupScores(self.anatomy)))
        if item not in self.truth:
            return
        rows = score_masks(item, masks, self.truth[item], self.anatomy.structures)
        all_.append(rows)
        if accepted:
            acc.append(rows)

    def aggregate(self, round: int) -> dict:
        """{"all": group means, "accepted": group means} of one round; {} without truth."""
        if not len(self.truth):
            return {}
        all_, acc = self.rounds.pop(round, (GroupScores(self.anatomy), GroupScores(self.anatomy)))
        return {"all": all_.aggregate(), "accepted": acc.aggregate()}
