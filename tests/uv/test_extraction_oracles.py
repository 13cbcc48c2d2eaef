"""Eq. 3's softmin against weights computed by hand, at temperatures where the sign matters.

At T = 1 the paper's uv distances (~0.01) give nearly uniform weights, so a
flipped sign in the exponent barely moves the estimate; on three pixels with uv
distances 0, 0.1 and 0.3 a small T makes the nearest pixel dominate, and the
flipped sign would make the farthest dominate.
"""

import math
from dataclasses import replace

import numpy as np
import pytest

from denseseg.uv.extraction import ExtractionParams, locate


def _row_map() -> np.ndarray:
    """(2, 1, 3): pixels x = 0, 1, 2 in row 0 with u = 0, 0.1, 0.3 and v = 0."""
    return np.array([[[0.0, 0.1, 0.3]], [[0.0, 0.0, 0.0]]])


def _softmin_params(temperature: float) -> ExtractionParams:
    return ExtractionParams(
        k=3, k_affine=8, method="softmin", temperature=temperature, max_shift_px=2.0, min_rcond=1e-3
    )


@pytest.mark.parametrize("temperature", [0.05, 1.0])
def test_softmin_weights_are_exp_of_minus_distance_over_temperature(temperature):
    weights = [math.exp(-d / temperature) for d in (0.0, 0.1, 0.3)]
    expected_x = sum(w * x for w, x in zip(weights, (0.0, 1.0, 2.0))) / sum(weights)
    (point,) = locate(_row_map(), [[0.0, 0.0]], params=_softmin_params(temperature))
    assert point == pytest.approx([expected_x, 0.0], abs=1e-12)


def test_a_small_temperature_picks_the_nearest_pixel():
    (point,) = locate(_row_map(), [[0.31, 0.0]], params=_softmin_params(1e-3))
    assert point == pytest.approx([2.0, 0.0], abs=1e-9)
    (point,) = locate(_row_map(), [[-0.01, 0.0]], params=_softmin_params(1e-3), origin=(10, 20))
    assert point == pytest.approx([20.0, 10.0], abs=1e-9)  # origin is (top, left): x + 20, y + 10


def test_softmin_with_enough_pixels_for_an_affine_fit_is_still_softmin():
    """k = 3 on a curved 4x4 map: the affine fit (k_affine = 8) would give another point; softmin must not use it.

    The expectation is computed by brute force: the three pixels nearest in uv, weighted by exp(-d / T).
    """
    yy, xx = np.mgrid[:4, :4].astype(np.float64)
    uv_map = np.stack([0.1 * xx + 0.02 * yy**2, 0.1 * yy + 0.03 * xx**2])
    target = np.array([0.17, 0.16])
    params = ExtractionParams(k=3, k_affine=8, method="softmin", temperature=0.05, max_shift_px=10.0, min_rcond=1e-6)
    values = uv_map.reshape(2, -1).T
    distances = np.linalg.norm(values - target, axis=1)
    nearest = np.argsort(distances)[:3]
    weights = np.exp(-distances[nearest] / params.temperature)
    expected = (weights[:, None] * np.stack([xx.ravel(), yy.ravel()], 1)[nearest]).sum(0) / weights.sum()
    (point,) = locate(uv_map, [target], params=params)
    assert point == pytest.approx(expected, abs=1e-9)
    (affine,) = locate(uv_map, [target], params=replace(params, method="affine"))
    assert np.linalg.norm(affine - expected) > 0.05  # the two estimators differ here: the test can tell them apart
