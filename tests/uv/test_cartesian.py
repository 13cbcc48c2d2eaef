import numpy as np
import pytest

from denseseg.anatomy import JSRT
from denseseg.shape.landmark_table import split_structures
from denseseg.shape.umeyama import DegenerateShapeError
from denseseg.uv.cartesian import CartesianWarp, cartesian_crop, cartesian_uv_at, warp_crop
from denseseg.uv.maps import dense_uv, item_crops


def _square_case():
    """A one-structure-like setup on integer landmarks: a 9-point deformed square."""
    lm = np.array([[10, 10], [20, 10], [30, 12], [31, 20], [30, 30], [20, 31], [10, 30], [9, 20], [20, 20]], float)
    tp = np.array([[0, 0], [10, 0], [20, 0], [20, 10], [20, 20], [10, 20], [0, 20], [0, 10], [10, 10]], float)
    return lm, tp


def test_exact_at_landmarks_on_real_shapes(jsrt_shapes):
    template, cases = jsrt_shapes
    for _masks, flat in cases:
        per = split_structures(flat, JSRT)
        for s in JSRT.structures:
            got = cartesian_uv_at(per[s], per[s], template, s)
            assert np.abs(got - template.landmark_uv(s)).max() < 1e-4


def test_rasterised_map_is_exact_at_integer_landmarks_and_matches_eq2():
    lm, tp = _square_case()
    warp = CartesianWarp(lm, tp)
    mask = np.zeros((40, 40), bool)
    mask[9:32, 9:32] = True
    crop = warp_crop(warp.template_position, mask)
    for (x, y), t in zip(lm.astype(int), tp):
        assert np.allclose(crop.uv[:, y - crop.top, x - crop.left], t, atol=1e-4)
    # eq. 2 literally: sim(p) + piecewise-linear interpolation of Theta at sim(p)
    p = np.array([[15.3, 17.2], [25.0, 24.5]])
    q = warp.sim.apply(p)
    aligned = warp.sim.apply(lm)
    from scipy.interpolate import LinearNDInterpolator

    literal = q + LinearNDInterpolator(aligned, warp.displacement)(q)
    assert np.allclose(warp.template_position(p), literal)


def test_outside_hull_nan_or_extrapolated():
    lm, tp = _square_case()
    warp = CartesianWarp(lm, tp)
    far = np.array([[5.0, 20.0], [20.0, 35.0]])
    assert np.isnan(warp.template_position(far)).all()
    ext = warp.template_position(far, extrapolate=True)
    assert np.isfinite(ext).all() and ext[0, 0] < 0 and ext[1, 1] > 20


def test_degenerate_landmarks_raise_and_are_skipped_per_structure(jsrt_shapes):
    template, cases = jsrt_shapes
    masks, flat = cases[0]
    flat = flat.copy()
    flat[94:120] = flat[94]  # heart collapsed to one point
    with pytest.raises(DegenerateShapeError):
        cartesian_crop(masks[2], flat[94:120], template, "heart")
    crops, skipped = item_crops(masks, flat, template)
    assert "heart" in skipped and len(crops) == 4
    uv, m = dense_uv(crops, JSRT.structures, 256, 256)
    assert np.isnan(uv[2]).all() and not m[2].any()
    inside = m[0]
    assert np.isfinite(uv[0][:, inside]).all() and np.isnan(uv[0][:, ~inside]).all()
    assert np.nanmin(uv) >= -1.5 and np.nanmax(uv) <= 1.5


def test_same_input_same_bytes(jsrt_shapes):
    template, cases = jsrt_shapes
    masks, flat = cases[1]
    a, _ = item_crops(masks, flat, template, extrapolate=True)
    b, _ = item_crops(masks, flat, template, extrapolate=True)
    assert all(a[s].uv.tobytes() == b[s].uv.tobytes() for s in a)


def test_coincident_landmarks_are_degenerate_not_silently_inexact():
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0], [2.0, 5.0]])
    CartesianWarp(square, square * 2)  # five distinct points: fine
    collapsed = square.copy()
    collapsed[4] = collapsed[2]  # a registration snapped two landmarks onto one point
    with pytest.raises(DegenerateShapeError, match="1 landmark\\(s\\) coincide with another, e.g. index 4 with 2"):
        CartesianWarp(collapsed, square * 2)
