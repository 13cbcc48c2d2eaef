"""ingest_image at the edges its rules draw: the smallest accepted image, and full-range pixels.

The truth is by construction: ingest keeps images of at least 16 px on their
short side; the working image keeps the original's 16-bit range (a uniform
65535 image stays 65535, black padding stays 0, nothing wraps round).
"""

import io

import numpy as np
import pytest
from PIL import Image

from denseseg.io.grazpedwri import parse_row
from denseseg.io.png import ImageError, write_png
from denseseg.preprocessing.field import FieldParams
from denseseg.preprocessing.ingest import ingest_image
from tests.builders import HEADER, csv_row

STEM_L = "0001_1297860395_01_WRI-L1_M014"


FIELD = FieldParams(enabled=True, dark_at_most=0, max_margin=0.15, bins=8)


def _record():
    return parse_row(dict(zip(HEADER.split(","), csv_row(STEM_L, 14.1).split(","))))


def _decoded(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.mark.parametrize("shape", [(16, 40), (40, 16)])
def test_sixteen_pixels_on_the_short_side_are_enough(tmp_path, shape):
    write_png(tmp_path / "small.png", np.full(shape, 1000, np.uint16))
    item = ingest_image(_record(), tmp_path / "small.png", 32, 32, FIELD)
    assert _decoded(item.png).shape == (32, 32)


@pytest.mark.parametrize("shape", [(15, 40), (40, 15)])
def test_fifteen_pixels_on_the_short_side_are_too_small(tmp_path, shape):
    write_png(tmp_path / "small.png", np.full(shape, 1000, np.uint16))
    with pytest.raises(ImageError, match=f"image of {shape[0]}x{shape[1]} px is too small"):
        ingest_image(_record(), tmp_path / "small.png", 32, 32, FIELD)


def test_a_white_radiograph_stays_white_and_its_letterbox_black(tmp_path):
    # 64 x 32 into 32 x 32: scale 0.5, image columns 8..23, padding 8 columns either side
    write_png(tmp_path / "white.png", np.full((64, 32), 65535, np.uint16))
    out = _decoded(ingest_image(_record(), tmp_path / "white.png", 32, 32, FIELD).png)
    assert out.dtype == np.uint16
    assert (out[:, 9:23] == 65535).all() and (out[:, :7] == 0).all() and (out[:, 25:] == 0).all()
