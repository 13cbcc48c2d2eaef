"""Scores summed image by image agree with the table-based group summary, in any order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from denseseg.anatomy import WRIST
from denseseg.evaluation.segmentation import group_summary
from denseseg.evaluation.segmentation_scores import ExactSum, GroupScores


def _rows(seed: int, n: int = 200) -> list[dict]:
    rng = np.random.default_rng(seed)
    names = rng.choice(list(WRIST.structures), n)
    asd = rng.gamma(2.0, 3.0, n)
    asd[rng.random(n) < 0.2] = np.nan
    return [
        {"item": f"i{i // 17}", "structure": s, "dice": float(d), "asd": float(a)}
        for i, (s, d, a) in enumerate(zip(names, rng.random(n), asd))
    ]


def test_summary_matches_group_summary():
    rows = _rows(0)
    sums = GroupScores(WRIST)
    for start in range(0, len(rows), 17):
        sums.append(rows[start : start + 17])
    expected = group_summary(pd.DataFrame(rows), WRIST)
    got = sums.aggregate()
    assert list(got) == list(expected)
    for group, values in expected.items():
        assert got[group]["n"] == values["n"]
        assert got[group]["dice_mean"] == pytest.approx(values["dice_mean"], rel=1e-14)
        assert got[group]["asd_mean"] == pytest.approx(values["asd_mean"], rel=1e-14)


def test_order_and_chunking_do_not_change_a_bit():
    rows = _rows(1)
    a, b = GroupScores(WRIST), GroupScores(WRIST)
    a.append(rows)
    for row in reversed(rows):
        b.append([row])
    assert a.aggregate() == b.aggregate()
    assert GroupScores(WRIST).aggregate() == {}
    only_nan = GroupScores(WRIST)
    only_nan.append([{"structure": "radius", "dice": 0.0, "asd": float("nan")}])
    assert np.isnan(only_nan.aggregate()["all"]["asd_mean"])


def test_exact_sum_has_no_rounding_error():
    total = ExactSum()
    for x in [1e16, 1.0, -1e16, 1e-3] * 3:
        total.add(x)
    assert total.value == 3.003


def test_propagation_scores_per_round_against_hand_computed_dice():
    from denseseg.evaluation.segmentation_scores import PropagationScores, score_against_truth

    truth_mask = np.zeros((len(WRIST.structures), 4, 4), bool)
    truth_mask[0, :2, :2] = True  # radius: 4 pixels
    half = np.zeros_like(truth_mask)
    half[0, :2, :1] = True  # 2 of them: Dice 2 * 2 / (2 + 4) = 2/3
    truth = {"a": truth_mask, "b": truth_mask}
    scores = PropagationScores(truth, WRIST)
    scores.append(1, "a", truth_mask, accepted=True)
    scores.append(1, "b", half, accepted=False)
    scores.append(1, "c", half, accepted=True)  # no truth: not scored
    out = scores.aggregate(1)
    group = WRIST.group_of("radius")
    assert out["accepted"]["all"] == {"dice_mean": 1.0, "asd_mean": 0.0, "n": 1}
    assert out["all"]["all"]["n"] == 2 and out["all"]["all"]["dice_mean"] == pytest.approx((1 + 2 / 3) / 2)
    assert out["all"][group]["n"] == 2
    assert scores.aggregate(1) == {"all": {}, "accepted": {}}  # a round is reduced once, then forgotten
    assert PropagationScores({}, WRIST).aggregate(1) == {}  # no truth: no scores
    seeds = score_against_truth(["b", "a", "c"], {"a": truth_mask, "b": half, "c": half}, truth, WRIST)
    assert seeds["all"]["n"] == 2 and seeds["all"]["dice_mean"] == pytest.approx((1 + 2 / 3) / 2)
