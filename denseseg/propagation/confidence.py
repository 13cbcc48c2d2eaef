"""How far to trust a refined prediction before it becomes a pseudo-label.

Per bone, three signs of a reliable mask, each in [0, 1]:
- ``mean_prob``: the network's mean probability inside the refined mask (a
  sure network is near 1 everywhere in the bone);
- ``refine_agreement``: Dice between the thresholded prediction and the refined
  mask (refinement that had to change a lot means the prediction was poor);
- ``round_agreement``: Dice with the previous round's mask of the same image
  (a pseudo-label that keeps moving is not settled); absent in round 1.
The bone's score is the smallest of them, and an image is as confident as its
least confident bone: one bad bone spoils the image's correspondences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from denseseg.evaluation.segmentation import dice


@dataclass(frozen=True)
class ImageConfidence:
    scores: np.ndarray  # (S,) per bone, NaN for a bone predicted absent
    mean_prob: np.ndarray
    refine_agreement: np.ndarray
    round_agreement: np.ndarray  # NaN without a previous round

    @property
    def score(self) -> float:
        """The least confident present bone; 0 when no bone is present."""
        present = ~np.isnan(self.scores)
        return float(self.scores[present].min()) if present.any() else 0.0

    def weakest(self, structures: Sequence[str]) -> str:
        present = np.flatnonzero(~np.isnan(self.scores))
        if not len(present):
            return "no bone"
        s = present[np.argmin(self.scores[present])]
        parts = [f"mean_prob {self.mean_prob[s]:.2f}", f"refine_agreement {self.refine_agreement[s]:.2f}"]
        if not np.isnan(self.round_agreement[s]):
            parts.append(f"round_agreement {self.round_agreement[s]:.2f}")
        return f"{structures[s]} ({', '.join(parts)})"


def image_confidence(
    probs: np.ndarray,
    refined: np.ndarray,
    previous: np.ndarray | None = None,
    threshold: float = 0.5,
) -> ImageConfidence:
    """Confidence of one image's refined masks (S, H, W) given the probabilities (S, H, W)."""
    if probs.shape != refined.shape or (previous is not None and previous.shape != refined.shape):
        raise ValueError(f"shapes differ: probs {probs.shape}, refined {refined.shape}")
    n = probs.shape[0]
    mean_prob = np.full(n, np.nan)
    refine_agr = np.full(n, np.nan)
    round_agr = np.full(n, np.nan)
    for s in range(n):
        mask = refined[s]
        if not mask.any():
            continue
        mean_prob[s] = float(probs[s][mask].mean())
        refine_agr[s] = dice(probs[s] > threshold, mask)
        if previous is not None:
            round_agr[s] = dice(previous[s], mask)
    stacked = np.stack([mean_prob, refine_agr, np.where(np.isnan(round_agr), np.inf, round_agr)])
    scores = np.where(np.isnan(mean_prob), np.nan, np.min(np.nan_to_num(stacked, nan=np.inf), axis=0))
    return ImageConfidence(scores, mean_prob, refine_agr, round_agr)


def decide(
    conf: ImageConfidence,
    threshold: float,
    structures: Sequence[str],
    expected: np.ndarray | None = None,
) -> str | None:
    """None to accept the image, else the reason it is excluded.

    ``expected`` (S,) marks bones that should be there (present in most seeds);
    a missing expected bone excludes the image, since its absence is more likely
    a failed prediction than anatomy.
    """
    present = ~np.isnan(conf.scores)
    if not present.any():
        return "no bone predicted"
    if expected is not None:
        missing = [structures[s] for s in np.flatnonzero(np.asarray(expected, bool) & ~present)]
        if missing:
            return f"expected bone(s) not predicted: {', '.join(missing)}"
    if conf.score < threshold:
        return f"confidence {conf.score:.3f} < {threshold:.3f}; weakest bone {conf.weakest(structures)}"
    return None
