"""io behaviour against values known by construction, without the real data (mutants the data tests hid)."""

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from denseseg.io.atomic import partial_dir
from denseseg.io.jsrt import read_landmarks_csv
from denseseg.io.mask_store import decode_rows, mask_rows
from denseseg.io.metrics import merge_metrics, split_metrics
from denseseg.io.tables import TRUTH_CONTOURS
from denseseg.io.truth import iter_truth_images


def test_an_image_of_a_single_truth_point_is_streamed(tmp_path):
    path = tmp_path / "contours.parquet"
    rows = [("a", "radius", 0, 1.0, 2.0), ("b", "radius", 0, 3.0, 4.0), ("b", "radius", 1, 5.0, 6.0)]
    frame = pd.DataFrame(rows, columns=TRUTH_CONTOURS.names)
    pq.write_table(pa.Table.from_pandas(frame, schema=TRUTH_CONTOURS, preserve_index=False), path)
    parts = list(iter_truth_images(path))
    assert [(stem, len(part)) for stem, part in parts] == [("a", 1), ("b", 2)]
    assert parts[0][1][["x", "y"]].to_numpy().tolist() == [[1.0, 2.0]]


def test_split_metrics_keeps_finite_numbers_and_drops_missing_figures():
    metrics = {"n": 3, "p95": 0.25, "nan": math.nan, "inf": -math.inf, "none": None, "method": "affine", "ok": True}
    numbers, info = split_metrics(metrics)
    assert numbers == {"n": 3, "p95": 0.25, "ok": 1}
    assert info == {"method": "affine"}


def test_merge_metrics_takes_info_sections_that_have_no_numbers():
    numbers = {"n": 3, "floor": {"p95": 0.25}}
    info = {"refiner": {"name": "sam", "mode": "box"}, "floor": {"method": "affine"}, "mode": "cartesian"}
    merged = merge_metrics(numbers, info)
    assert merged == {
        "n": 3,
        "floor": {"p95": 0.25, "method": "affine"},
        "refiner": {"name": "sam", "mode": "box"},
        "mode": "cartesian",
    }
    assert merge_metrics({"a": {"b": 1}}, {"a": "replaced"}) == {"a": "replaced"}  # info wins a non-dict clash


# JSRT flat order by hand: right lung 44, left lung 50, heart 26, right clavicle 23, left clavicle 23
JSRT_BLOCKS = [("right_lung", 0, 44), ("left_lung", 44, 50), ("heart", 94, 26), ("right_clavicle", 120, 23)]
JSRT_BLOCKS += [("left_clavicle", 143, 23)]


def test_landmarks_csv_rows_land_at_structure_offset_plus_index(tmp_path):
    """Each row's x is its flat position by hand and y its index, rows shuffled."""
    rows = [
        {"image": "JPCLN001", "structure": s, "index": i, "x": float(start + i), "y": float(i)}
        for s, start, n in JSRT_BLOCKS
        for i in range(n)
    ]
    order = np.random.default_rng(0).permutation(len(rows))
    pd.DataFrame([rows[k] for k in order]).to_csv(tmp_path / "landmarks.csv", index=False)
    flat = read_landmarks_csv(tmp_path / "landmarks.csv")["JPCLN001"]
    assert flat.shape == (166, 2)
    assert np.array_equal(flat[:, 0], np.arange(166))
    assert np.array_equal(flat[94:120, 1], np.arange(26))  # the heart's own indices 0..25


def test_mask_rows_store_exactly_the_bounding_box_crop():
    masks = np.zeros((2, 7, 8), bool)
    masks[0, 2:5, 1] = True
    masks[0, 4, 1:6] = True  # rows 2..4, columns 1..5, away from the border
    masks[1, 6, 7] = True  # one pixel in the bottom-right corner
    rows = mask_rows("a", masks, ["radius", "ulna"])
    box = [(r["top"], r["left"], r["crop_height"], r["crop_width"]) for r in rows]
    assert box == [(2, 1, 3, 5), (6, 7, 1, 1)]
    assert rows[0]["bits"] == np.packbits(masks[0, 2:5, 1:6]).tobytes()
    table = pa.Table.from_pylist(rows)
    assert np.array_equal(decode_rows(table, ["radius", "ulna"])["a"], masks)


def test_partial_dir_creates_missing_parents(tmp_path):
    dest = tmp_path / "not" / "yet" / "out"
    staging = partial_dir(dest)
    assert staging == tmp_path / "not" / "yet" / "out.partial"
    assert staging.is_dir() and list(staging.iterdir()) == []
