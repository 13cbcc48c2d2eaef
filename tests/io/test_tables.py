import pandas as pd
import pytest

from denseseg.io.tables import LANDMARKS, SchemaError, read_table, write_table


def test_write_read_round_trip_and_schema_check(tmp_path):
    df = pd.DataFrame({"filestem": ["a"], "structure": ["radius"], "index": [3], "x": [1.5], "y": [2.0]})
    write_table(df, tmp_path / "l.parquet", LANDMARKS)
    back = read_table(tmp_path / "l.parquet", LANDMARKS)
    assert back.dtypes["x"] == "float32" and back.loc[0, "index"] == 3
    with pytest.raises(SchemaError, match=r"l.parquet: missing column\(s\) y"):
        write_table(df.drop(columns="y"), tmp_path / "l.parquet", LANDMARKS)
    with pytest.raises(FileNotFoundError, match="nope.parquet: table not found"):
        read_table(tmp_path / "nope.parquet", LANDMARKS)


def test_identical_tables_give_identical_bytes(tmp_path):
    df = pd.DataFrame(
        {"filestem": ["a", "b"], "structure": ["ulna"] * 2, "index": [0, 1], "x": [1.0, 2], "y": [3.0, 4]}
    )
    write_table(df, tmp_path / "1.parquet", LANDMARKS)
    write_table(df.copy(), tmp_path / "2.parquet", LANDMARKS)
    assert (tmp_path / "1.parquet").read_bytes() == (tmp_path / "2.parquet").read_bytes()


def test_reasons_and_reject_rows(tmp_path):
    from denseseg.io.tables import REJECTS, reasons_by_item, reject_frame

    frame = reject_frame([("b", "late"), ("a", "z: second"), ("a", "y: first")], "contours", ("filestem", "reason"))
    assert frame.values.tolist() == [
        ["a", "contours", "y: first"],
        ["a", "contours", "z: second"],
        ["b", "contours", "late"],
    ]
    by_stem = reject_frame([("b", "1"), ("a", "2"), ("a", "0")], "s")
    assert by_stem["reason"].tolist() == ["2", "0", "1"]  # stable: the order within an image is kept
    write_table(frame, tmp_path / "rejects.parquet", REJECTS)
    assert reasons_by_item(tmp_path / "rejects.parquet") == {"a": ["y: first", "z: second"], "b": ["late"]}
    assert reasons_by_item(tmp_path / "missing.parquet") == {}
