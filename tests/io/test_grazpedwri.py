from pathlib import Path

import pytest

from denseseg.io import grazpedwri as g
from tests.builders import HEADER, csv_row, gradient_image, write_release

STEM = "0002_0354485735_01_WRI-R1_F012"


def _release(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    return write_release(tmp_path, rows, {}, header=header) / "dataset.csv"


def test_reads_bom_crlf_and_validates_a_consistent_row(tmp_path):
    df = g.read_metadata(_release(tmp_path, [csv_row(STEM, 12.0)]))
    records, rejects = g.validate_metadata(df)
    assert rejects == []
    (r,) = records
    assert (r.filestem, r.patient_id, r.laterality, r.projection, r.sex, r.age) == (STEM, "2", "R", 1, "F", 12.0)
    assert r.flags["initial_exam"] and not r.flags["cast"]


def test_missing_or_renamed_column_is_an_error_naming_the_file(tmp_path):
    header = HEADER.replace("laterality", "side")
    path = _release(tmp_path, [csv_row(STEM, 12.0)], header=header)
    with pytest.raises(
        g.MetadataError, match=r"dataset.csv: missing column\(s\) laterality; unexpected column\(s\): side"
    ):
        g.read_metadata(path)


@pytest.mark.parametrize(
    "edit, reason",
    [
        (lambda r: r.replace(",R,1,", ",X,1,"), "unknown laterality code 'X'"),
        (lambda r: r.replace(",R,1,", ",R,7,"), "unknown projection code '7'"),
        (lambda r: r.replace(",F,12.0,", ",Q,12.0,"), "unknown gender code 'Q'"),
        (lambda r: r.replace(",F,12.0,", ",F,9.5,"), "filestem does not match its row: age 12 != row 9"),
        (lambda r: r.replace(",1,23r", ",yes,23r"), "flag must be 1 or blank"),
        (lambda r: r.replace(STEM + ",", "../../etc/passwd,", 1), "would escape the release root"),
        (lambda r: r.replace(",0.144,", ",abc,"), "pixel_spacing: not a number"),
    ],
)
def test_bad_rows_become_rejects_with_line_and_reason(tmp_path, edit, reason):
    good = csv_row("0001_1297860395_01_WRI-L1_M014", 14.1)
    df = g.read_metadata(_release(tmp_path, [good, edit(csv_row(STEM, 12.0))]))
    records, rejects = g.validate_metadata(df)
    assert [r.filestem for r in records] == ["0001_1297860395_01_WRI-L1_M014"]
    ((stem, message),) = rejects
    assert message.startswith("dataset.csv line 3: ")
    assert reason in message


def test_duplicate_filestem_is_rejected(tmp_path):
    df = g.read_metadata(_release(tmp_path, [csv_row(STEM, 12.0)] * 2))
    records, rejects = g.validate_metadata(df)
    assert len(records) == 1 and rejects == [(STEM, "dataset.csv line 3: duplicate filestem")]


def test_index_and_inside(tmp_path):
    root = write_release(tmp_path / "rel", [], {STEM: gradient_image(20, 20)})
    index = g.index_images(root)
    assert index == {STEM: root / "images_part1" / f"{STEM}.png"}
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"")
    (root / "images_part2").mkdir()
    (root / "images_part2" / "link.png").symlink_to(outside)
    assert g.inside(root, index[STEM]) and not g.inside(root, root / "images_part2" / "link.png")


@pytest.mark.real_data
def test_real_metadata_counts(shared_data):
    df = g.read_metadata(shared_data / "grazpedwri-dx" / "dataset.csv")
    assert len(df) == 20327
    records, rejects = g.validate_metadata(df)
    assert rejects == []
    pa_views = g.select(records)
    assert len(pa_views) == 10086
    assert sum(r.laterality == "L" for r in pa_views) == 5514
    assert sum(r.laterality == "R" for r in pa_views) == 4572
    assert len(g.select(records, exclude_cast=True)) == 7207
    assert sum(r.projection == 3 for r in records) == 93
