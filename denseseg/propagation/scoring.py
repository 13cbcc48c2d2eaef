"""Segmentation scores summed as they come, so a round is scored without keeping its masks.

``GroupScores`` takes the rows of ``denseseg.evaluation.segmentation.score_masks``
one image at a time and keeps, per reporting group, exact running sums
(Shewchuk's partials: the result does not depend on the order or chunking of
the images) of Dice and surface distance and their counts. ``summary()`` gives
what ``group_summary`` gives for the same rows (the means agree to the last
bit or one ulp: the sums here are exactly rounded).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from denseseg.anatomy import Anatomy


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
        self.groups: dict[str, _Group] = {}

    def add(self, rows: Iterable[dict]) -> None:
        for row in rows:
            for name in (str(self.anatomy.group_of(row["structure"])), "all"):
                group = self.groups.setdefault(name, _Group())
                group.n += 1
                group.dice.add(row["dice"])
                if not math.isnan(row["asd"]):
                    group.asd.add(row["asd"])
                    group.n_asd += 1

    def summary(self) -> dict[str, dict[str, float]]:
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
