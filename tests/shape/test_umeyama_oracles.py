"""Umeyama against a brute-force least-squares fit (scipy.optimize), reflection case included.

When the best orthogonal map is a reflection but reflections are excluded, the
rotation flips its last singular direction and the scale must drop that
singular value's contribution (``(d1 - d2) / var``); keeping ``d1 + d2`` gives a
scale that is too large. The oracle minimises the residual over angle, scale
and translation directly, without any SVD.
"""

import numpy as np
import pytest
from scipy.optimize import minimize

from denseseg.shape.umeyama import umeyama


def _rotation(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def _brute_force(src: np.ndarray, dst: np.ndarray) -> tuple[float, float, float]:
    """(angle, scale, rms) of the best proper similarity, from many starting angles."""

    def cost(params):
        angle, scale, tx, ty = params
        residual = scale * src @ _rotation(angle).T + [tx, ty] - dst
        return (residual**2).sum(1).mean()

    best = min(
        (minimize(cost, [a, 1.0, 0.0, 0.0], method="BFGS", options={"gtol": 1e-12}) for a in np.linspace(-3, 3, 7)),
        key=lambda r: r.fun,
    )
    angle, scale = best.x[:2]
    if scale < 0:  # the same map: a half turn absorbs the sign
        angle, scale = angle + np.pi, -scale
    return angle, scale, float(np.sqrt(best.fun))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_reflection_case_matches_the_brute_force_fit(seed):
    rng = np.random.default_rng(seed)
    src = rng.normal(size=(12, 2)) * [6.0, 2.0]
    dst = 1.3 * (src * [-1.0, 1.0]) + rng.normal(scale=0.3, size=src.shape) + [4.0, -2.0]  # a mirror image
    sim = umeyama(src, dst)
    angle, scale, rms = _brute_force(src, dst)
    assert np.linalg.det(sim.rotation) == pytest.approx(1.0)
    assert sim.scale == pytest.approx(scale, rel=1e-5) and sim.rms == pytest.approx(rms, rel=1e-5)
    assert np.allclose(sim.rotation, _rotation(angle), atol=1e-5)


def test_the_mirror_of_a_rectangle_by_hand():
    """Corners (+-2, +-1) mirrored in x: the best rotation is 180 degrees or 0, the scale (4 - 1) / (4 + 1) = 0.6.

    Per point the cross-covariance is diag(-4, 1) with var 5; the proper-rotation
    optimum keeps the larger singular value (4, rotation by 180 degrees) and
    subtracts the smaller: scale (4 - 1) / 5.
    """
    src = np.array([[2.0, 1.0], [-2.0, 1.0], [-2.0, -1.0], [2.0, -1.0]])
    sim = umeyama(src, src * [-1.0, 1.0])
    assert sim.scale == pytest.approx(0.6)
    assert np.allclose(sim.rotation, -np.eye(2))
    # residual per point: 0.6 * (-x, -y) vs (-x, y): (0.4 x, 1.6 y) -> |.|^2 = 0.16*4 + 2.56*1 = 3.2
    assert sim.rms == pytest.approx(np.sqrt(3.2))
    mirror = umeyama(src, src * [-1.0, 1.0], allow_reflection=True)
    assert mirror.scale == pytest.approx(1.0) and mirror.rms == pytest.approx(0.0, abs=1e-12)
