"""The representation floor: exact maps give their landmarks back, and the scorer's reduce is per crop."""

import numpy as np
import pytest

from denseseg.anatomy import WRIST
from denseseg.shape.landmark_table import split_structures
from denseseg.shape.synthetic import wrist_cases
from denseseg.shape.template import build_template
from denseseg.uv.extraction import ExtractionParams
from denseseg.uv.floor import FloorScorer
from denseseg.uv.maps import item_crops, landmark_uv

AFFINE = ExtractionParams(k=5, k_affine=8, method="affine", temperature=1.0)


@pytest.fixture(scope="module")
def cases():
    found = [(masks, flat) for _, masks, flat in wrist_cases(3, seed=7, height=192, width=112)]
    template = build_template(np.stack([flat for _, flat in found]), WRIST)
    return template, found


def _score(template, items, used=None, dtype="float32"):
    scorer = FloorScorer(template, "cartesian", AFFINE, dtype)
    used = np.ones(WRIST.n_landmarks, bool) if used is None else used
    keep = split_structures(used, WRIST)
    targets = split_structures(landmark_uv(template), WRIST)
    for masks, flat in items:
        crops, _ = item_crops(masks, flat, template, "cartesian", True, None if used.all() else used)
        per = split_structures(flat, WRIST)
        for s, crop in crops.items():
            scorer.add(s, crop, per[s], keep[s], targets[s])
    return scorer


def test_exact_maps_give_their_landmarks_back_to_a_fraction_of_a_pixel(cases):
    template, items = cases
    summary = _score(template, items).summary(exactness_tol=1e-4)
    assert summary["exactness_ok"] and summary["exactness_max_uv_error"] < 1e-6
    assert summary["floor_median_px"] < 0.1 and summary["floor_missing"] == 0
    assert not any(key.startswith("floor_unused") for key in summary)  # every landmark built the maps


def test_a_subset_reports_the_other_landmarks_apart_and_they_are_further_off(cases):
    template, items = cases
    used = np.zeros(WRIST.n_landmarks, bool)
    used[::4] = True
    summary = _score(template, items, used).summary(exactness_tol=1e-4)
    assert summary["exactness_ok"]  # still exact at the landmarks that built the maps
    assert summary["floor_median_px"] < 0.1
    assert summary["floor_unused_median_px"] > summary["floor_median_px"]  # interpolated between them


def test_float16_rounding_is_what_the_floor_sees_and_merge_equals_one_pass(cases):
    template, items = cases
    full32 = _score(template, items).summary(1e-4)
    full16 = _score(template, items, dtype="float16").summary(1e-4)
    assert full16["floor_median_px"] != full32["floor_median_px"]  # the stored (rounded) maps are scored
    merged = _score(template, items[:1]).merge([_score(template, items[1:2]), _score(template, items[2:])])
    assert merged.summary(1e-4) == full32
    assert _score(template, items).summary(exactness_tol=-1.0)["exactness_ok"] is False


def test_a_scorer_without_crops_reports_no_floor_rather_than_zero(cases):
    import warnings

    template, _ = cases
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the median of nothing
        summary = FloorScorer(template, "cartesian", AFFINE, "float32").summary(1e-4)
    assert np.isnan(summary["floor_median_px"]) and np.isnan(summary["exactness_max_uv_error"])
    assert summary["floor_missing"] == 0 and summary["exactness_ok"] is False
