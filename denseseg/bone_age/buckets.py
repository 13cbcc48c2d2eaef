"""Age classes of fixed width and their decoding to an age (the class centre, not its lower edge)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class AgeBuckets:
    """``count`` classes of ``width_months``: class k holds ages in [k w, (k + 1) w), its age is (k + 0.5) w.

    Ages at or beyond ``count * width_months`` go to the last class, so that a
    test image older than every training age still gets a class.
    """

    width_months: float
    count: int

    @classmethod
    def covering(cls, width_months: float, max_months: float) -> AgeBuckets:
        """The fewest classes of ``width_months`` that cover ages 0 to ``max_months``."""
        if width_months <= 0 or max_months <= 0:
            raise ValueError(f"bucket width {width_months} and age range {max_months} must be positive")
        return cls(float(width_months), max(1, math.ceil(max_months / width_months)))

    def index(self, months) -> np.ndarray:
        """Class index (int64) of each age in months; NaN or negative ages are an error."""
        months = np.asarray(months, np.float64)
        if not np.isfinite(months).all() or (months < 0).any():
            raise ValueError(f"ages must be finite and >= 0 months, got {months[~np.isfinite(months) | (months < 0)]}")
        return np.minimum(np.floor(months / self.width_months), self.count - 1).astype(np.int64)

    def centre(self, index) -> np.ndarray:
        """Age in months at the centre of each class."""
        return (np.asarray(index, np.float64) + 0.5) * self.width_months

    def decode(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, count) logits -> (B,) ages in months: the centre of the most likely class."""
        if logits.shape[-1] != self.count:
            raise ValueError(f"logits have {logits.shape[-1]} classes, the buckets {self.count}")
        return (logits.argmax(-1).to(torch.float64) + 0.5) * self.width_months
