"""A new radiograph: reading and checking it, its laterality, the network input, and the way back to its pixels.

The truth is by construction (a blob placed at a known original position, a
disc placed at a known working position) or the pipeline's own code path (the
ingest stage and the uv cache reader on phantom radiographs).
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from denseseg.anatomy import WRIST
from denseseg.io.png import read_png, write_png
from denseseg.io.tables import MANIFEST, read_table
from denseseg.phantom.scene import ImageSpec, synthesise
from denseseg.predict.params import Preprocessing
from denseseg.predict.radiograph import (
    RadiographError,
    laterality,
    masks_to_original,
    network_input,
    read_radiograph,
)
from denseseg.preprocessing.working_frame import WorkingFrame
from denseseg.uv import cache
from stages.config import build_stage
from tests.builders import csv_row, write_release
from tests.phantom.tiny import render_settings
from tests.predict.models import HEIGHT, WIDTH, wrist_template, write_project

PREP = Preprocessing(HEIGHT, WIDTH, 65535)
STEM_L = "0001_1297860395_01_WRI-L1_M014"
STEM_R = "0002_0354485735_01_WRI-R1_F012"


def _blob(shape, x0, y0, sigma):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((cols - x0) ** 2 + (rows - y0) ** 2) / (2 * sigma**2))


@pytest.mark.parametrize("shape", [(300, 175), (175, 300), (401, 233), (HEIGHT, WIDTH)])
@pytest.mark.parametrize("flipped", [False, True])
def test_coordinates_go_original_to_working_and_back_for_left_and_right_hands(shape, flipped):
    pixels = np.random.default_rng(0).integers(0, 65535, shape).astype(np.uint16)
    frame = network_input(pixels, flipped, PREP).frame
    assert (frame.orig_height, frame.orig_width, frame.flipped) == (*shape, flipped)
    points = np.random.default_rng(1).uniform(-0.5, 1, (50, 2)) * [shape[1], shape[0]]
    np.testing.assert_allclose(frame.to_original(frame.to_working(points)), points, atol=1e-9)


@pytest.mark.parametrize("shape", [(300, 175), (175, 300), (401, 233)])
@pytest.mark.parametrize("flipped", [False, True])
def test_a_bright_blob_reaches_the_network_where_the_frame_says(shape, flipped):
    x0, y0 = 0.3 * shape[1], 0.6 * shape[0]
    pixels = np.round(60000 * _blob(shape, x0, y0, 0.06 * min(shape))).astype(np.uint16)
    inp = network_input(pixels, flipped, PREP)
    weights = inp.image.astype(np.float64)
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    centroid = np.array([(weights * cols).sum(), (weights * rows).sum()]) / weights.sum()
    expected = inp.frame.to_working(np.array([x0, y0]))
    np.testing.assert_allclose(centroid, expected, atol=0.3)
    # a right hand is mirrored: the blob on the image's left third lands on the working image's right
    assert (expected[0] > WIDTH / 2) == flipped


@pytest.mark.parametrize("shape", [(300, 175), (175, 300)])
@pytest.mark.parametrize("flipped", [False, True])
def test_masks_come_back_at_the_original_pixels_in_the_original_orientation(shape, flipped):
    frame = WorkingFrame.fit(*shape, HEIGHT, WIDTH, flipped)
    centre, radius = np.array([20.0, 40.0]), 9.0
    rows, cols = np.mgrid[:HEIGHT, :WIDTH]
    disc = (cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius**2
    masks = masks_to_original(np.stack([disc, np.zeros_like(disc)]), frame)
    assert masks.shape == (2, *shape) and masks.dtype == bool and not masks[1].any()
    r, c = np.nonzero(masks[0])
    np.testing.assert_allclose([c.mean(), r.mean()], frame.to_original(centre), atol=0.5 / frame.scale)
    assert masks[0].sum() == pytest.approx(np.pi * (radius / frame.scale) ** 2, rel=0.05)


def test_eight_and_sixteen_bit_files_give_the_same_network_input(tmp_path):
    smooth = 5000 + 55000 * _blob((230, 140), 60, 90, 40)
    sixteen = np.round(smooth).astype(np.uint16)
    eight = np.round(smooth / 257).astype(np.uint8)
    Image.fromarray(eight).save(tmp_path / "eight.png")
    write_png(tmp_path / "sixteen.png", sixteen)
    write_png(tmp_path / "scaled.png", eight.astype(np.uint16) * 257)
    got = {name: read_radiograph(tmp_path / f"{name}.png", 64, 10000) for name in ("eight", "sixteen", "scaled")}
    assert (got["eight"].bit_depth, got["sixteen"].bit_depth) == (8, 16)
    inputs = {name: network_input(r.pixels, True, PREP).image for name, r in got.items()}
    assert np.abs(inputs["eight"] - inputs["sixteen"]).max() <= 1 / 257
    np.testing.assert_array_equal(inputs["eight"], inputs["scaled"])  # 8-bit is exactly x 257


def _phantom(stem: str, index: int) -> np.ndarray:
    patient, _, _, code = stem.split("_", 3)
    spec = ImageSpec(index, stem, int(patient), code[-4], 12.0, code[4], 1)
    return synthesise(spec, seed=3, settings=render_settings(height_min=150, height_max=170)).image


def test_preprocessing_equals_the_ingest_stage_and_the_uv_cache_on_phantom_radiographs(tmp_path):
    stems = (STEM_L, STEM_R)
    images = {stem: _phantom(stem, i) for i, stem in enumerate(stems)}
    write_release(tmp_path / "data/raw/grazpedwri-dx", [csv_row(s, int(s[-3:]) + 0.5) for s in stems], images)
    write_project(tmp_path)
    build_stage("ingest", tmp_path).run_serial()
    ingest = tmp_path / "data/interim/ingest"
    manifest = read_table(ingest / "manifest.parquet", MANIFEST).set_index("filestem")
    # the uv cache as the uvmaps stage writes it (image_pixels of the ingest PNG), read back by its reader
    root = tmp_path / "cache"
    root.mkdir()
    stored = [(s, cache.image_pixels(read_png(ingest / manifest.loc[s, "image_path"]), 65535, s)) for s in stems]
    groups = cache.write_images(root / "images-0000.parquet", stored)
    index = [
        {
            "item": s,
            "split": "test",
            "mm_per_px": 0.5,
            "shard": "shard-0000.parquet",
            "row_group": 0,
            "image_file": "images-0000.parquet",
            "image_row_group": g,
            "height": HEIGHT,
            "width": WIDTH,
            "n_structures": 0,
        }
        for s, g in zip(stems, groups)
    ]
    uv = wrist_template().flat_uv()
    cache.write_meta(
        root,
        anatomy="wrist",
        mode="cartesian",
        uv_dtype="float32",
        index_rows=index,
        landmark_uv=cache.landmark_uv_frame(WRIST, uv, np.ones(len(uv), bool)),
        landmarks="all",
        image_max=65535,
    )
    reader = cache.UVCache(root)
    for stem in stems:
        radiograph = read_radiograph(tmp_path / "data/raw/grazpedwri-dx/images_part1" / f"{stem}.png", 64, 10000)
        inp = network_input(radiograph.pixels, laterality(radiograph.path).side == "R", PREP)
        ingested = WorkingFrame.from_row(manifest.loc[stem].to_dict())  # the manifest keeps float32 scale and pads
        assert (inp.frame.orig_height, inp.frame.orig_width, inp.frame.flipped) == (
            ingested.orig_height,
            ingested.orig_width,
            ingested.flipped,
        )
        np.testing.assert_allclose(
            [inp.frame.scale, inp.frame.pad_top, inp.frame.pad_left],
            [ingested.scale, ingested.pad_top, ingested.pad_left],
            rtol=1e-6,
        )
        np.testing.assert_array_equal(inp.pixels, read_png(ingest / manifest.loc[stem, "image_path"]))
        np.testing.assert_array_equal(inp.image, reader.image(stem)[0])
    assert manifest.loc[STEM_R, "flipped"] and not manifest.loc[STEM_L, "flipped"]


def test_laterality_comes_from_the_flag_or_the_filestem():
    assert laterality(f"/x/{STEM_R}.png") == laterality(f"{STEM_R}.png")
    side = laterality(f"/x/{STEM_R}.png")
    assert (side.side, side.source, side.projection, side.stem_side) == ("R", "filestem", 1, "R")
    lateral = laterality("2425_1070629475_01_WRI-L2_F005.png")
    assert (lateral.side, lateral.projection) == ("L", 2)
    forced = laterality(f"{STEM_R}.png", "L")
    assert (forced.side, forced.source, forced.stem_side) == ("L", "--left", "R")
    plain = laterality("scan.png", "R")
    assert (plain.side, plain.source, plain.projection, plain.stem_side) == ("R", "--right", None, None)


@pytest.mark.parametrize(
    "name",
    ["scan.png", "0001_1297860395_01_WRI-X1_M014.png", "0001_1297860395_01_WRI-L4_M014.png", f"{STEM_L}_copy.png"],
)
def test_a_file_name_without_laterality_asks_for_a_flag(name):
    with pytest.raises(RadiographError, match=r"laterality unknown .*give --left or --right") as err:
        laterality(name)
    assert str(err.value).startswith(name) and "\n" not in str(err.value)


def _write_bad(tmp_path, kind: str):
    path = tmp_path / f"{kind}.png"
    grey = (np.arange(100 * 80) % 251).reshape(100, 80).astype(np.uint8)
    if kind == "missing":
        return path, "no such file"
    if kind == "folder":
        path.mkdir()
        return path, "not a file"
    if kind == "garbage":
        path.write_bytes(b"this is not an image at all" * 10)
        return path, "not an image file"
    if kind == "jpeg":
        Image.fromarray(grey).save(path, format="JPEG")
        return path, r"not a PNG file \(format JPEG\)"
    if kind == "truncated":
        write_png(path, np.random.default_rng(0).integers(0, 65535, (200, 150)).astype(np.uint16))
        path.write_bytes(path.read_bytes()[:3000])
        return path, "cannot decode PNG"
    if kind == "rgb":
        Image.fromarray(np.stack([grey] * 3, 2)).save(path)
        return path, r"a colour PNG \(mode RGB\)"
    if kind == "palette":
        Image.fromarray(grey).convert("P").save(path)
        return path, r"a palette PNG \(mode P\)"
    if kind == "alpha":
        Image.fromarray(np.stack([grey] * 2, 2), mode="LA").save(path)
        return path, r"alpha channel \(mode LA\)"
    if kind == "small":
        write_png(path, grey[:63].astype(np.uint16) * 257)
        return path, r"image of 63x80 px is too small \(each side at least 64 px\)"
    if kind == "large":
        write_png(path, np.zeros((70, 10001), np.uint16))
        return path, r"image of 70x10001 px is too large \(each side at most 10000 px\)"
    if kind == "blank":
        write_png(path, np.full((100, 80), 1234, np.uint16))
        return path, "every pixel is 1234"
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind",
    ["missing", "folder", "garbage", "jpeg", "truncated", "rgb", "palette", "alpha", "small", "large", "blank"],
)
def test_bad_files_get_one_line_naming_the_file(tmp_path, kind):
    path, why = _write_bad(tmp_path, kind)
    with pytest.raises(RadiographError, match=why) as err:
        read_radiograph(path, 64, 10000)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_the_size_is_refused_before_the_pixels_are_decoded(tmp_path):
    # a header that claims 20000 x 20000 px (1.6 GB decoded) with no data behind it
    path, _ = _write_bad(tmp_path, "large")
    data = bytearray(path.read_bytes())
    data[16:24] = (20000).to_bytes(4, "big") + (20000).to_bytes(4, "big")  # IHDR width, height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the IHDR chunk's CRC
    path.write_bytes(bytes(data))
    with pytest.raises(RadiographError, match="image of 20000x20000 px is too large|too large to decode"):
        read_radiograph(path, 64, 10000)


def test_network_input_takes_a_uint16_image_only():
    with pytest.raises(ValueError, match="2-D uint16 image expected"):
        network_input(np.zeros((100, 80), np.float32), False, PREP)
    frame = network_input(np.full((100, 80), 7, np.uint16), False, PREP)
    assert frame.image.dtype == np.float32 and frame.image.shape == (HEIGHT, WIDTH)
    assert pd.Series(frame.image.ravel()).max() == pytest.approx(7 / 65535)
