"""The renderer's bone profile and imaging chain against hand-computed cases."""

import numpy as np
import pytest

from denseseg.phantom.render import Exposure, bone_attenuation, expose, local_half_width, tube_profile


def test_tube_profile_against_the_chords_of_a_cylinder():
    # half-width w = 5, cortex t = 1: the shell chord is 2 sqrt(d (2w - d)) - 2 sqrt((w - t)^2 - (w - d)^2)
    depth = np.array([0.0, 1.0, 3.0, 5.0])
    shell, medulla = tube_profile(depth, np.full(4, 5.0), np.full(4, 1.0))
    outer = np.sqrt(depth * (10 - depth))
    inner = np.sqrt(np.clip(16 - (5 - depth) ** 2, 0, None))
    np.testing.assert_allclose(shell, (outer - inner) / 5, atol=1e-12)
    np.testing.assert_allclose(medulla, inner / 5, atol=1e-12)
    # by hand: nothing at the outline; at d = t all shell (3/5); at the centre the two walls t/w and the cavity
    np.testing.assert_allclose(shell[[0, 1, 3]], [0.0, 0.6, 0.2], atol=1e-12)
    np.testing.assert_allclose(medulla[[0, 1, 3]], [0.0, 0.0, 0.8], atol=1e-12)


def test_local_half_width_of_a_uniform_bar_is_its_centre_depth():
    depth = np.tile(np.minimum(np.arange(1, 22), np.arange(21, 0, -1)).astype(float), (40, 1))  # 21 px wide
    np.testing.assert_allclose(local_half_width(depth), 11.0)


def test_a_shaft_has_a_bright_cortex_around_a_darker_marrow_cavity():
    shape, px_per_mm = (100, 100), 4.0
    bar = np.array([[30, 10], [70, 10], [70, 90], [30, 90]], float)  # 10 mm wide
    att = bone_attenuation(
        {"radius": bar}, {"radius": 1.0}, shape, px_per_mm, np.zeros(shape, np.float32), {"radius"}, tube=True
    )
    row = att[50]
    inside = row[31:70]
    peak = 31 + int(np.argmax(inside[:20]))
    assert 33 <= peak <= 37  # the chord of the shell peaks about one cortex (0.28 x 5.25 mm, 5.9 px) inside
    assert row[peak] > 1.3 * row[50]  # the cortex outshines the cavity
    np.testing.assert_allclose(row[31:50], row[69:50:-1], rtol=1e-4)  # symmetric across the shaft
    assert row[20] == pytest.approx(0.0, abs=1e-6) and row[80] == pytest.approx(0.0, abs=1e-6)


def _exposure(**kw):
    base = dict(
        mu=1.2, gamma=1.0, background=0.1, heel=0.0, heel_angle=0.0, noise=0.0, scatter=0.0, enhance=0.0, enhance_mm=3.0
    )
    return Exposure(**{**base, **kw})


def test_expose_without_scatter_processing_or_noise_is_beer_lambert():
    attenuation = np.linspace(0, 2, 60, dtype=np.float32).reshape(6, 10)
    out = expose(attenuation, _exposure(), 4.0, np.random.default_rng(0))
    np.testing.assert_allclose(out, 0.1 + 0.9 * (1 - np.exp(-1.2 * attenuation)), rtol=1e-5)


def test_processing_overshoots_at_an_edge_and_keeps_flat_regions():
    attenuation = np.zeros((40, 120), np.float32)
    attenuation[:, 60:] = 1.0
    flat = expose(attenuation, _exposure(), 2.0, np.random.default_rng(0))
    sharp = expose(attenuation, _exposure(enhance=1.0), 2.0, np.random.default_rng(0))
    row, base = sharp[20], flat[20]
    assert row[61] > base[61] + 0.05 and row[58] < base[58] - 0.05  # the bright side brighter, the dark darker
    np.testing.assert_allclose(row[[0, 119]], base[[0, 119]], atol=1e-3)  # far from the edge: unchanged
    noisy = expose(attenuation, _exposure(noise=0.02), 2.0, np.random.default_rng(0))
    assert (noisy - flat).std() == pytest.approx(0.02 * np.sqrt(flat + 0.05).mean(), rel=0.1)
