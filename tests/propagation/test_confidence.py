"""Confidence per bone and image, and the reasons images are excluded."""

from __future__ import annotations

import math

import numpy as np

from denseseg.propagation.confidence import decide, image_confidence

NAMES = ("a", "b", "c")


def _case():
    probs = np.zeros((3, 20, 20), np.float32)
    probs[0, 2:10, 2:10] = 0.95
    probs[1, 12:18, 12:18] = 0.9
    refined = probs > 0.5
    return probs, refined


def test_a_sure_unchanged_prediction_is_confident_and_absent_bones_do_not_count():
    probs, refined = _case()
    conf = image_confidence(probs, refined)
    assert math.isclose(conf.scores[0], 0.95, rel_tol=1e-6)
    assert math.isnan(conf.scores[2]) and math.isnan(conf.round_agreement[0])
    assert math.isclose(conf.score, 0.9, rel_tol=1e-6)
    assert decide(conf, 0.8, NAMES) is None


def test_refinement_change_and_round_disagreement_lower_the_score():
    probs, refined = _case()
    changed = refined.copy()
    changed[0, 2:10, 2:6] = False  # refinement removed half of bone a
    conf = image_confidence(probs, changed)
    assert conf.refine_agreement[0] < 0.7 and conf.score < 0.7
    reason = decide(conf, 0.8, NAMES)
    assert reason.startswith("confidence") and "weakest bone a" in reason and "refine_agreement" in reason
    previous = refined.copy()
    previous[1] = False
    previous[1, 0:3, 15:20] = True
    conf = image_confidence(probs, refined, previous)
    assert conf.round_agreement[1] == 0.0 and conf.score == 0.0


def test_missing_expected_bones_and_empty_predictions_are_excluded_with_the_reason():
    probs, refined = _case()
    conf = image_confidence(probs, refined)
    assert decide(conf, 0.5, NAMES, expected=np.array([1, 1, 1], bool)) == "expected bone(s) not predicted: c"
    empty = image_confidence(np.zeros_like(probs), np.zeros_like(refined))
    assert decide(empty, 0.5, NAMES) == "no bone predicted"
