"""benchmarks/realism.py: each statistic against images whose answer is known by construction."""

import numpy as np
import pytest
from scipy import ndimage


@pytest.fixture(scope="module")
def realism(load_benchmark):
    return load_benchmark("realism")


def power_law_noise(size: int, beta: float, seed: int) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as f^-beta (amplitude f^-beta/2), in 0..1."""
    rng = np.random.default_rng(seed)
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spectrum = np.fft.fft2(rng.normal(size=(size, size))) * f ** (-beta / 2)
    image = np.real(np.fft.ifft2(spectrum))
    return (image - image.min()) / (image.max() - image.min())


@pytest.mark.parametrize("beta", [2.0, 3.0])
def test_the_spectrum_slope_of_power_law_noise_is_its_exponent(realism, beta):
    slopes = [realism.psd_slope(power_law_noise(256, beta, seed)) for seed in range(3)]
    assert np.median(slopes) == pytest.approx(-beta, abs=0.2)


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_the_edge_width_of_a_blurred_step_is_its_10_90_rise(realism, sigma):
    # a step blurred by a Gaussian of sigma rises from 10 % to 90 % over 2 x 1.2816 sigma
    step = np.zeros((96, 96))
    step[:, 48:] = 1.0
    image = ndimage.gaussian_filter(step, sigma)
    widths = realism.edge_widths(image, np.random.default_rng(0))
    assert len(widths) > 20
    assert np.median(widths) == pytest.approx(2 * 1.2816 * sigma, abs=0.3)


def test_bone_texture_is_the_relative_high_pass_noise_inside_bone(realism):
    rng = np.random.default_rng(1)
    flat = np.full((128, 128), 0.2)
    flat[32:96, 32:96] = 0.8
    assert realism.bone_texture(flat) < 1e-6
    noisy = flat + np.where(flat > 0.5, rng.normal(0.0, 0.02, flat.shape), 0.0)
    # white noise minus its Gaussian blur keeps sqrt(1 - 2 g0 + sum g^2) of its std: g0 = 1 / (2 pi s^2),
    # sum g^2 = 1 / (4 pi s^2) for s = 2
    keep = np.sqrt(1 - 2 / (2 * np.pi * 4) + 1 / (4 * np.pi * 4))
    assert realism.bone_texture(noisy) == pytest.approx(keep * 0.02 / 0.8, rel=0.1)


def test_the_patch_classifier_cannot_tell_one_distribution_from_itself_but_tells_two_apart(realism):
    same_a = [power_law_noise(128, 2.5, seed) for seed in range(6)]
    same_b = [power_law_noise(128, 2.5, seed) for seed in range(10, 14)]
    auc, folds, telling = realism.patch_auc(same_a, same_b, seed=0)
    assert len(telling) == 3
    assert folds == 4 and 0.3 < auc < 0.7
    other = [power_law_noise(128, 1.0, seed) for seed in range(10, 14)]  # far more fine texture
    auc, _, _ = realism.patch_auc(same_a, other, seed=0)
    assert auc > 0.95


def test_normalised_images_share_one_height_and_range(realism):
    image = np.arange(300 * 200, dtype=np.uint16).reshape(300, 200)
    out = realism.normalised(image, 150)
    assert out.shape == (150, 100) and out.min() == 0.0 and out.max() == 1.0
