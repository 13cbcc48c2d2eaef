"""Truth contours: read per image in atlas order, or streamed one image at a time across row groups."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from denseseg.io.tables import TRUTH_CONTOURS, SchemaError
from denseseg.io.truth import iter_truth_images, read_truth_contours


def _rows(stem, structure, n):
    return [(stem, structure, j, float(j), float(10 * j)) for j in range(n)]


def _write(path, groups):
    """One row group per list of rows."""
    with pq.ParquetWriter(path, TRUTH_CONTOURS) as writer:
        for rows in groups:
            frame = pd.DataFrame(rows, columns=TRUTH_CONTOURS.names)
            writer.write_table(pa.Table.from_pandas(frame, schema=TRUTH_CONTOURS, preserve_index=False))


def test_read_the_contours_of_some_images_in_point_order(tmp_path):
    path = tmp_path / "contours.parquet"
    _write(path, [_rows("b", "ulna", 3)[::-1] + _rows("a", "radius", 2), _rows("a", "ulna", 4)])
    truth = read_truth_contours(path, ["a"])
    assert list(truth) == ["a"] and sorted(truth["a"]) == ["radius", "ulna"]
    assert truth["a"]["ulna"].tolist() == [[0, 0], [1, 10], [2, 20], [3, 30]]
    assert read_truth_contours(path, ["b"])["b"]["ulna"][:, 0].tolist() == [0, 1, 2]  # sorted by point


def test_images_are_streamed_whole_even_across_row_groups(tmp_path):
    path = tmp_path / "contours.parquet"
    # image "b" starts in the first row group and continues in the second and third
    _write(path, [_rows("a", "radius", 2) + _rows("b", "radius", 2), _rows("b", "ulna", 3), _rows("b", "lunate", 1)])
    parts = list(iter_truth_images(path))
    assert [stem for stem, _ in parts] == ["a", "b"]
    assert len(parts[1][1]) == 6 and set(parts[1][1]["structure"]) == {"radius", "ulna", "lunate"}


def test_images_that_are_not_grouped_or_a_wrong_schema_are_errors(tmp_path):
    path = tmp_path / "contours.parquet"
    _write(path, [_rows("a", "radius", 2) + _rows("b", "radius", 2), _rows("a", "ulna", 2)])
    with pytest.raises(ValueError, match="rows of a are not together"):
        list(iter_truth_images(path))
    pq.write_table(pa.table({"filestem": ["a"]}), tmp_path / "bad.parquet")
    with pytest.raises(SchemaError):
        list(iter_truth_images(tmp_path / "bad.parquet"))


def test_truth_in_the_working_frame(tmp_path):
    import numpy as np

    from denseseg.io.truth import read_working_truth
    from denseseg.preprocessing.working_frame import WorkingFrame

    path = tmp_path / "contours.parquet"
    _write(path, [_rows("a", "radius", 3) + _rows("b", "radius", 2)])
    frame = WorkingFrame.fit(40, 20, 20, 20, flipped=False)
    truth = read_working_truth(path, ["a", "b"], {"a": frame})  # "b" has no frame: left out
    assert list(truth) == ["a"]
    np.testing.assert_allclose(truth["a"]["radius"], frame.to_working(np.array([[0.0, 0], [1, 10], [2, 20]])))
    assert read_working_truth(path, [], {"a": frame}) == {}
