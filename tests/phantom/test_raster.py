import numpy as np

from denseseg.phantom.raster import polygon_crop, polygon_mask


def test_polygon_mask_uses_pixel_centres_and_clips():
    square = np.array([[1.5, 1.5], [4.5, 1.5], [4.5, 4.5], [1.5, 4.5]])
    m = polygon_mask(square, (8, 8))
    assert m.sum() == 9 and m[2:5, 2:5].all()
    mask, (r0, c0) = polygon_crop(square - 3, (8, 8))
    assert mask.sum() == 4 and (r0, c0) == (0, 0)
    assert polygon_crop(square + 100, (8, 8)) is None
