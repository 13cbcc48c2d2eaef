"""uv behaviour against values known by construction, without the real data (mutants the data tests hid).

Most uv maps here are affine in the pixel position, u = (x - cx) / 10 and
v = (y - cy) / 10, so the pixel a uv value belongs to is known exactly, and an
affine fit over any three or more non-collinear neighbours recovers it.
"""

import numpy as np
import pytest

from denseseg.shape.template import Template
from denseseg.uv import cache
from denseseg.uv.cartesian import UVCrop, cartesian_uv_at, warp_crop
from denseseg.uv.extraction import ExtractionParams, extract_landmarks, locate
from denseseg.uv.maps import dense_uv, landmark_uv
from denseseg.uv.polar import square_normalise


def _affine_map(cx: float, cy: float, height: int = 12, width: int = 12) -> np.ndarray:
    """(2, H, W): u = (x - cx) / 10, v = (y - cy) / 10 at pixel centres (x, y) = (column, row)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([(x - cx) / 10, (y - cy) / 10])


def _uv_of(points, cx: float, cy: float) -> np.ndarray:
    return (np.asarray(points, np.float64) - [cx, cy]) / 10


CENTRES = [(3.0, 4.0), (6.0, 2.0), (8.0, 7.0)]
# per structure, image positions to find (counts 1, 2, 3)
POSITIONS = [[[4.25, 5.5]], [[3.5, 6.75], [7.0, 4.5]], [[5.5, 5.5], [2.75, 8.25], [9.0, 3.5]]]


def test_extract_landmarks_finds_every_structure_on_its_own_map():
    """Three structures (not two: the structure axis is not the uv axis), one to three targets each."""
    maps = np.stack([_affine_map(cx, cy) for cx, cy in CENTRES])  # (S=3, 2, H, W)
    targets = np.concatenate([_uv_of(p, cx, cy) for p, (cx, cy) in zip(POSITIONS, CENTRES)])
    res = extract_landmarks(maps, targets, [1, 2, 3])
    assert res.points.shape == (1, 6, 2) and res.total_missing == 0
    assert np.allclose(res.points[0], np.concatenate(POSITIONS), atol=1e-9)
    batch = extract_landmarks(np.stack([maps, maps[[1, 0, 2]]]), targets, [1, 2, 3])  # (B=2, S, 2, H, W)
    assert np.allclose(batch.points[0], np.concatenate(POSITIONS), atol=1e-9)
    with pytest.raises(ValueError, match="do not match"):
        extract_landmarks(maps, targets, [1, 2])  # two counts for three structures
    with pytest.raises(ValueError, match="do not match"):
        extract_landmarks(maps, targets, [1, 2, 2])  # five targets counted, six given


def test_a_single_valid_pixel_is_found_for_one_target_and_for_several():
    uv = np.full((2, 3, 3), np.nan)
    uv[:, 1, 2] = [0.5, -0.5]  # the only valid pixel: x = 2, y = 1
    params = ExtractionParams(k=1, method="softmin")
    assert np.array_equal(locate(uv, [[0.5, -0.5]], params=params), [[2.0, 1.0]])
    assert np.array_equal(locate(uv, [[0.4, -0.6], [0.0, 0.0]], params=params), [[2.0, 1.0], [2.0, 1.0]])
    assert np.array_equal(locate(uv, [[0.5, -0.5]], origin=(10, 20)), [[22.0, 11.0]])  # affine falls back


def test_affine_extraction_accepts_three_neighbours_but_not_two():
    assert ExtractionParams(k=1, k_affine=3).k_affine == 3
    with pytest.raises(ValueError):
        ExtractionParams(k_affine=2)
    uv = _affine_map(3.0, 4.0)
    point = locate(uv, _uv_of([[4.3, 5.4]], 3.0, 4.0), params=ExtractionParams(k=1, k_affine=3))
    assert np.allclose(point, [[4.3, 5.4]], atol=1e-9)  # three non-collinear pixels fit the affine map exactly


def test_mm_per_px_is_the_index_value_and_nan_where_the_source_had_none(tmp_path):
    """Only the index and landmark tables are read for it, so no shard needs to exist."""
    from denseseg.anatomy import JSRT

    rows = [
        dict(item=item, split="train", mm_per_px=mm, shard="shard-0000.parquet", row_group=g)
        | dict(image_file="images-0000.parquet", image_row_group=g, height=8, width=8, n_structures=1)
        for g, (item, mm) in enumerate([("a", 0.25), ("b", None)])
    ]
    frame = cache.landmark_uv_frame(JSRT, np.zeros((JSRT.n_landmarks, 2)), np.ones(JSRT.n_landmarks, bool))
    cache.write_meta(
        tmp_path,
        anatomy="jsrt",
        mode="cartesian",
        uv_dtype="float32",
        index_rows=rows,
        landmark_uv=frame,
        landmarks="all",
        image_max=4095,
    )
    reader = cache.UVCache(tmp_path)
    assert reader.mm_per_px("a") == 0.25
    assert np.isnan(reader.mm_per_px("b"))


# a structure whose template is its image landmarks moved by (-5, -5): the map is that translation
TEMPLATE_POINTS = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 8.0]])
IMAGE_POINTS = TEMPLATE_POINTS + 5.0


def test_cartesian_uv_at_is_nan_outside_the_hull_unless_asked_to_extrapolate():
    template = Template("jsrt", {"a": TEMPLATE_POINTS})
    xy = np.array([[10.0, 9.0], [25.0, 7.5]])  # inside the hull, and 10 px right of it
    # uv = 2 * (x - 5 - 0) / 10 - 1, 2 * (y - 5 - 0) / 10 - 1 (template bbox [0, 10] x [0, 10])
    inside, outside = [0.0, -0.2], [3.0, -0.5]
    got = cartesian_uv_at(xy, IMAGE_POINTS, template, "a")
    assert np.allclose(got[0], inside) and np.isnan(got[1]).all()
    got = cartesian_uv_at(xy, IMAGE_POINTS, template, "a", extrapolate=True)
    assert np.allclose(got, [inside, outside])


def test_warp_crop_is_exactly_the_mask_bounding_box():
    mask = np.zeros((8, 9), bool)
    mask[2:5, 3] = True
    mask[4, 3:7] = True  # an L: rows 2..4, columns 3..6, away from the image border
    crop = warp_crop(lambda xy: xy, mask)  # "uv" = the pixel's own (x, y)
    assert (crop.top, crop.left) == (2, 3) and crop.mask.shape == (3, 4) and crop.uv.shape == (2, 3, 4)
    assert np.array_equal(crop.mask, mask[2:5, 3:7])
    rows, cols = np.nonzero(crop.mask)
    assert np.array_equal(crop.uv[0, rows, cols], cols + 3) and np.array_equal(crop.uv[1, rows, cols], rows + 2)
    assert np.isnan(crop.uv[:, ~crop.mask]).all()


def test_polar_landmark_uv_are_square_normalised_centroid_directions_and_unknown_modes_are_refused():
    rectangle = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]])  # centre (2, 1)
    triangle = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])  # centre (1, 1)
    template = Template("jsrt", {"a": rectangle, "b": triangle})
    by_hand = [[-1, -0.5], [1, -0.5], [1, 0.5], [-1, 0.5], [-1, -1], [1, -0.5], [-0.5, 1]]
    assert np.allclose(landmark_uv(template, "polar"), by_hand)
    cartesian = [[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1], [1, -1], [-1, 1]]  # corners of each bbox
    assert np.allclose(landmark_uv(template, "cartesian"), cartesian)
    with pytest.raises(ValueError, match="unknown uv mode 'spherical'"):
        landmark_uv(template, "spherical")


def test_dense_uv_is_two_channels_per_structure_with_the_crop_in_place():
    uv = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    mask = np.array([[True, False, True], [True, True, False]])
    dense, masks = dense_uv({"b": UVCrop(1, 2, uv, mask)}, ("a", "b"), 5, 6)
    assert dense.shape == (2, 2, 5, 6) and dense.dtype == np.float32 and masks.shape == (2, 5, 6)
    assert np.array_equal(dense[1, :, 1:3, 2:5], uv) and np.array_equal(masks[1, 1:3, 2:5], mask)
    assert np.isnan(dense[0]).all() and not masks[0].any()
    assert masks.sum() == mask.sum() and np.isfinite(dense).sum() == uv.size


def test_square_normalise_works_on_the_last_axis_of_any_stack():
    assert np.allclose(square_normalise([3.0, -6.0]), [0.5, -1.0])  # a single vector
    stack = np.array([[[2.0, 1.0], [0.0, 0.0]], [[-1.0, 4.0], [5.0, 5.0]]])  # (2, 2, 2)
    assert np.allclose(square_normalise(stack), [[[1.0, 0.5], [0.0, 0.0]], [[-0.25, 1.0], [1.0, 1.0]]])
