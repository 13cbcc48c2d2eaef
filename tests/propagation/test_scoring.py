"""Scores summed image by image agree with the table-based group summary, in any order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from denseseg.anatomy import WRIST
from denseseg.evaluation.segmentation import group_summary
from denseseg.propagation.scoring import ExactSum, GroupScores


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
        sums.add(rows[start : start + 17])
    expected = group_summary(pd.DataFrame(rows), WRIST)
    got = sums.summary()
    assert list(got) == list(expected)
    for group, values in expected.items():
        assert got[group]["n"] == values["n"]
        assert got[group]["dice_mean"] == pytest.approx(values["dice_mean"], rel=1e-14)
        assert got[group]["asd_mean"] == pytest.approx(values["asd_mean"], rel=1e-14)


def test_order_and_chunking_do_not_change_a_bit():
    rows = _rows(1)
    a, b = GroupScores(WRIST), GroupScores(WRIST)
    a.add(rows)
    for row in reversed(rows):
        b.add([row])
    assert a.summary() == b.summary()
    assert GroupScores(WRIST).summary() == {}
    only_nan = GroupScores(WRIST)
    only_nan.add([{"structure": "radius", "dice": 0.0, "asd": float("nan")}])
    assert np.isnan(only_nan.summary()["all"]["asd_mean"])


def test_exact_sum_has_no_rounding_error():
    total = ExactSum()
    for x in [1e16, 1.0, -1e16, 1e-3] * 3:
        total.add(x)
    assert total.value == 3.003
