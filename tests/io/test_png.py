import numpy as np
import pytest

from denseseg.io.png import ImageError, encode_png, read_png, write_png


def test_16_bit_round_trip_is_lossless_and_deterministic(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 65536, size=(37, 23)).astype(np.uint16)
    write_png(tmp_path / "a.png", pixels)
    assert np.array_equal(read_png(tmp_path / "a.png"), pixels)
    assert encode_png(pixels) == encode_png(pixels.copy())


@pytest.mark.parametrize(
    "content, message",
    [(None, "file is missing"), (b"not a png at all", "cannot decode PNG"), ("truncate", "cannot decode PNG")],
)
def test_bad_files_raise_image_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.png"
    if content == "truncate":
        data = encode_png(np.arange(4000, dtype=np.uint16).reshape(40, 100))
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=f"bad.png: {message}"):
        read_png(path)


def test_colour_png_is_rejected(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "rgb.png")
    with pytest.raises(ImageError, match="greyscale PNG expected, found mode RGB"):
        read_png(tmp_path / "rgb.png")


@pytest.mark.real_data
def test_real_radiographs_are_16_bit_full_range(shared_data):
    for path in sorted((shared_data / "grazpedwri-dx" / "images").glob("*.png")):
        pixels = read_png(path)
        assert pixels.dtype == np.uint16 and pixels.shape[0] != pixels.shape[1]
        assert pixels.max() > 60000


def test_a_1_bit_png_reads_as_0_and_255(tmp_path):
    """Bilevel masks saved by other tools (PNG bit depth 1) come back as uint8 0 / 255, not 0 / 1."""
    from PIL import Image

    bits = np.random.default_rng(1).random((9, 13)) > 0.5
    Image.fromarray(bits).save(tmp_path / "mask.png")
    assert Image.open(tmp_path / "mask.png").mode == "1"
    got = read_png(tmp_path / "mask.png")
    assert got.dtype == np.uint8 and np.array_equal(got, np.where(bits, 255, 0))
