import numpy as np
import pytest
import torch

from denseseg.bone_age.buckets import AgeBuckets
from denseseg.bone_age.metrics import age_metrics, mae_months, r2_score


def test_buckets_cover_the_range_and_decode_to_the_centre_not_the_lower_edge():
    buckets = AgeBuckets.covering(4, 240)
    assert buckets.count == 60
    assert buckets.index([0.0, 3.99, 4.0, 9.0, 239.0, 500.0]).tolist() == [0, 0, 1, 2, 59, 59]
    logits = torch.full((3, 60), -5.0)
    logits[0, 0] = logits[1, 2] = logits[2, 59] = 5.0
    assert buckets.decode(logits).tolist() == [2.0, 10.0, 238.0]
    assert np.array_equal(buckets.centre(buckets.index([13.0])), [14.0])  # 13 -> [12, 16) -> 14
    with pytest.raises(ValueError, match="finite"):
        buckets.index([np.nan])
    with pytest.raises(ValueError, match="classes"):
        buckets.decode(torch.zeros(1, 59))


def test_mae_and_r2_by_hand():
    true, predicted = np.array([10.0, 20.0, 30.0]), np.array([12.0, 20.0, 25.0])
    assert mae_months(true, predicted) == pytest.approx(7 / 3)
    assert r2_score(true, predicted) == pytest.approx(1 - 29 / 200)  # SS_res 4 + 0 + 25, SS_tot 100 + 0 + 100
    assert r2_score(true, np.full(3, 20.0)) == 0.0  # the mean of the truth
    assert age_metrics(true, true) == {"mae_months": 0.0, "r2": 1.0}
    with pytest.raises(ValueError, match="equal"):
        mae_months(true, predicted[:2])
