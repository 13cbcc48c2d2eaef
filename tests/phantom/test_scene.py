import numpy as np
from scipy import ndimage

from denseseg.phantom.raster import polygon_mask
from denseseg.phantom.scene import ImageSpec, synthesise
from tests.phantom.tiny import render_settings

SMALL = render_settings(height_min=200, height_max=240, p_crop=0.0)


def spec(**kw):
    base = dict(index=3, filestem="x", patient_id=4, sex="M", age=12.0, laterality="L", projection=1)
    return ImageSpec(**{**base, **kw})


def test_sixteen_bit_full_range_and_deterministic():
    a = synthesise(spec(), 11, SMALL)
    b = synthesise(spec(), 11, SMALL)
    assert a.image.dtype == np.uint16 and a.image.min() == 0 and a.image.max() == 65535
    assert a.image.shape[0] != a.image.shape[1]
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, synthesise(spec(index=4), 11, SMALL).image)


def test_truth_matches_the_bright_bone_region():
    s = synthesise(spec(), 2, SMALL)
    img = s.image.astype(float)
    union = np.zeros(img.shape, bool)
    for pts in s.truth.values():
        union |= polygon_mask(pts, img.shape)
    ring = ndimage.binary_dilation(union, iterations=4) & ~ndimage.binary_dilation(union, iterations=1)
    assert img[union].mean() > img[ring].mean() + 2000
    # each visible bone is brighter than the tissue right around it
    for bone, pts in s.truth.items():
        m = polygon_mask(pts, img.shape)
        if m.sum() < 60:
            continue
        around = ndimage.binary_dilation(m, iterations=3) & ~ndimage.binary_dilation(union, iterations=1)
        if around.sum() > 20:
            assert img[m].mean() > img[around].mean(), bone


def test_right_hand_is_the_mirrored_left_hand():
    left = synthesise(spec(laterality="L"), 5, SMALL)
    right = synthesise(spec(laterality="R"), 5, SMALL)
    w = left.image.shape[1]
    for bone, pts in left.truth.items():
        mirrored = pts.copy()
        mirrored[:, 0] = (w - 1) - mirrored[:, 0]
        np.testing.assert_allclose(right.truth[bone], mirrored, atol=1e-3)
    same = right.image[:, ::-1] == left.image  # identical except the burned-in marker
    assert same.mean() > 0.97
    # left hand: radius on the image's right; right hand stored mirrored: radius on the left
    assert left.truth["radius"][:, 0].mean() > left.truth["ulna"][:, 0].mean()
    assert right.truth["radius"][:, 0].mean() < right.truth["ulna"][:, 0].mean()


def test_young_child_lacks_late_bones_and_lateral_has_no_truth():
    baby = synthesise(spec(age=0.8, sex="M"), 1, SMALL)
    assert "pisiform" not in baby.truth and "scaphoid" not in baby.truth and "radius" in baby.truth
    lateral = synthesise(spec(projection=2), 1, SMALL)
    assert lateral.truth == {} and lateral.image.max() == 65535


def test_cast_and_metal_brighten_the_image():
    plain = synthesise(spec(), 9, SMALL).image.astype(float)
    metal = synthesise(spec(metal=True), 9, SMALL).image
    assert metal.shape == plain.shape

    def headroom(a):  # the brightest exposed pixels (burned-in marker left out) against the median
        exposed = a[(a > 0) & (a < 65535)]
        return np.percentile(exposed, 99.5) / np.percentile(exposed, 50)

    assert headroom(metal) > headroom(plain) + 0.2  # wires / plate far brighter than any bone
    cast = synthesise(spec(cast=True), 9, SMALL).image.astype(float)
    assert cast.shape == plain.shape and not np.array_equal(cast, plain)
    # the cast covers the forearm: visibly different there (its texture and rims)
    bottom = slice(int(0.8 * plain.shape[0]), None)
    assert np.abs(cast[bottom] - plain[bottom]).mean() > 1000


def test_v2_imaging_keeps_the_truth_and_shows_bone_with_a_cortex():
    v2 = render_settings(height_min=200, height_max=240, p_crop=0.0, imaging="v2")
    a, b = synthesise(spec(), 2, v2), synthesise(spec(), 2, v2)
    np.testing.assert_array_equal(a.image, b.image)  # seeded
    flat = synthesise(spec(), 2, SMALL)
    assert not np.array_equal(a.image, flat.image)
    for bone in flat.truth:  # the imaging chain changes pixels, never the anatomy
        np.testing.assert_array_equal(a.truth[bone], flat.truth[bone])
    img = a.image.astype(float)
    radius = polygon_mask(a.truth["radius"], img.shape)
    rim = radius & ~ndimage.binary_erosion(radius, iterations=4)
    core = ndimage.binary_erosion(radius, iterations=8)
    around = ndimage.binary_dilation(radius, iterations=4) & ~ndimage.binary_dilation(radius, iterations=1)
    assert img[rim].mean() > img[core].mean() > img[around].mean()  # cortex over marrow over soft tissue
