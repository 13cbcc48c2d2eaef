import io

import numpy as np
import pytest
from PIL import Image

from denseseg.io.grazpedwri import parse_row, read_metadata
from denseseg.io.png import ImageError, read_png
from denseseg.preprocessing.field import FieldParams
from denseseg.preprocessing.ingest import ingest_image
from tests.builders import csv_row, gradient_image, write_release

FIELD = FieldParams(enabled=True, dark_at_most=0, max_margin=0.15, bins=8)


def _record(tmp_path, stem, age=12.0):
    root = write_release(tmp_path, [csv_row(stem, age)], {})
    return parse_row(read_metadata(root / "dataset.csv").iloc[0].to_dict())


def test_right_hand_is_mirrored_and_resized(tmp_path):
    stem = "0002_0354485735_01_WRI-R1_F012"
    pixels = gradient_image(200, 100)
    write_release(tmp_path, [], {stem: pixels})
    item = ingest_image(_record(tmp_path, stem), tmp_path / "images_part1" / f"{stem}.png", 96, 48, FIELD)
    out = np.asarray(Image.open(io.BytesIO(item.png)))
    assert out.shape == (96, 48) and out.dtype == np.uint16 and item.frame.flipped
    # the bright block sat on the left third of the original: after mirroring it is on the right
    assert out[30:44, -14:].mean() > 50000 and out[30:44, :14].mean() < 5000


def test_eight_bit_and_tiny_images_are_rejected(tmp_path):
    stem = "0001_1297860395_01_WRI-L1_M014"
    record = _record(tmp_path, stem, 14.1)
    Image.fromarray(np.zeros((50, 40), np.uint8)).save(tmp_path / "eight.png")
    with pytest.raises(ImageError, match="16-bit greyscale PNG expected"):
        ingest_image(record, tmp_path / "eight.png", 32, 32, FIELD)
    Image.fromarray(np.zeros((8, 40), np.uint16)).save(tmp_path / "tiny.png")
    with pytest.raises(ImageError, match="too small"):
        ingest_image(record, tmp_path / "tiny.png", 32, 32, FIELD)


@pytest.mark.real_data
def test_real_radiographs_ingest_with_size_flip_and_range(shared_data, tmp_path):
    folder = shared_data / "grazpedwri-dx" / "images"
    for path in sorted(folder.glob("*.png")):
        stem = path.stem
        original = read_png(path)
        record = _record(tmp_path / stem, stem, age=float(stem[-3:]))
        item = ingest_image(record, path, 384, 224, FIELD)
        out = np.asarray(Image.open(io.BytesIO(item.png)))
        assert out.shape == (384, 224) and out.dtype == np.uint16
        assert item.frame.flipped == ("WRI-R" in stem)
        assert (item.frame.orig_height, item.frame.orig_width) == original.shape
        # the image keeps its aspect: scale fits the larger side, padding is zero
        assert item.frame.scale == pytest.approx(min(384 / original.shape[0], 224 / original.shape[1]))
        inside = out[
            int(item.frame.pad_top) + 2 : 384 - int(item.frame.pad_top) - 2,
            int(item.frame.pad_left) + 2 : 224 - int(item.frame.pad_left) - 2,
        ]
        assert inside.max() > 40000 and inside.min() < 20000
        # mirrored content: the column means reverse
        reference = item.frame.warp_image(original)
        assert np.allclose(out, np.clip(np.rint(reference), 0, 65535))
