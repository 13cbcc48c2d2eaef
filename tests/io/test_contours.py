"""Contour shards: what is written is read back, per image and bone, in point order, with its edge flags."""

import numpy as np
import pandas as pd
import pytest

from denseseg.io.contours import contour_filestems, contour_frame, read_contour_shard, shard_filestems
from denseseg.io.tables import CONTOURS, write_table


def test_contour_rows_round_trip(tmp_path):
    a = np.array([[1.5, 2.25], [3.0, 4.0], [5.0, 0.5]])
    b = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]])
    flags = {"a": np.array([False, True, False]), "b": np.zeros(4, bool)}
    rows = pd.concat(
        [
            contour_frame("img-2", {"b": b, "a": a}, flags, ["a", "b", "c"]),  # "c" has no outline: no rows
            contour_frame("img-1", {"a": a[::-1]}, {"a": flags["a"][::-1]}, ["a", "b"]),
        ],
        ignore_index=True,
    )
    assert list(rows["structure"][:7]) == ["a"] * 3 + ["b"] * 4  # structures in anatomy order
    write_table(rows.iloc[::-1], tmp_path / "shard-0000.parquet", CONTOURS)  # stored out of order
    outlines, borders = read_contour_shard(tmp_path / "shard-0000.parquet")
    assert sorted(outlines) == ["img-1", "img-2"] and sorted(outlines["img-2"]) == ["a", "b"]
    np.testing.assert_array_equal(outlines["img-2"]["a"], a)  # float32 on disk: these values are exact
    np.testing.assert_array_equal(outlines["img-1"]["a"], a[::-1])
    np.testing.assert_array_equal(borders["img-2"]["a"], flags["a"])
    assert outlines["img-2"]["b"].dtype == np.float64 and borders["img-2"]["b"].dtype == bool
    only_b, _ = read_contour_shard(tmp_path / "shard-0000.parquet", ["b"])
    assert list(only_b) == ["img-2"] and list(only_b["img-2"]) == ["b"]
    assert shard_filestems(tmp_path / "shard-0000.parquet") == ["img-1", "img-2"]


def test_an_image_without_outlines_has_no_rows():
    frame = contour_frame("img", {}, {}, ["a"])
    assert frame.empty and list(frame.columns) == CONTOURS.names


def test_contour_filestems_per_shard_and_what_ingest_never_framed(tmp_path):
    square = {"a": np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]])}
    flags = {"a": np.zeros(3, bool)}
    one, two, empty = (tmp_path / f"shard-000{i}.parquet" for i in range(3))
    write_table(contour_frame("img-2", square, flags, ["a"]), one, CONTOURS)
    write_table(pd.concat([contour_frame(s, square, flags, ["a"]) for s in ("img-3", "img-1")]), two, CONTOURS)
    write_table(pd.DataFrame(columns=CONTOURS.names), empty, CONTOURS)
    assert contour_filestems([one, two], {"img-1", "img-2", "img-3"}) == {one: ["img-2"], two: ["img-1", "img-3"]}
    with pytest.raises(ValueError, match=r"2 image\(s\) not in the ingest manifest, e.g. img-1"):
        contour_filestems([one, two], {"img-2"})
    with pytest.raises(ValueError, match=f"{tmp_path}: contour shards hold no image"):
        contour_filestems([empty], {"img-1"})
