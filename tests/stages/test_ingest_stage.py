import json

import numpy as np
import pytest

from denseseg.io.png import read_png
from denseseg.io.tables import MANIFEST, REJECTS, read_table
from stages.base import StageError
from stages.config import build_stage


def _run(root, *overrides):
    return build_stage("ingest", root, list(overrides)).run_serial()


def test_keeps_pa_views_flips_right_hands_and_writes_manifest(tiny_project):
    report = _run(tiny_project)
    out = tiny_project / "data/interim/ingest"
    manifest = read_table(out / "manifest.parquet", MANIFEST)
    assert manifest.filestem.tolist() == [
        "0001_1297860395_01_WRI-L1_M014",
        "0002_0354485735_01_WRI-R1_F012",
        "0003_0662359226_01_WRI-L1_M011",
    ]
    assert manifest.flipped.tolist() == [False, True, False]
    assert manifest.cast.tolist() == [False, False, True]
    image = read_png(out / manifest.image_path[1])
    assert image.shape == (48, 32) and image.dtype == np.uint16
    assert report.metrics["ingested"] == 3 and report.metrics["rejected"] == 0
    assert json.loads((tiny_project / "reports/metrics/ingest.json").read_text())["ingested"] == 3
    assert not list(out.parent.glob("*.partial"))


def test_filters_and_overrides(tiny_project):
    report = _run(tiny_project, "ingest.exclude_cast=true")
    assert report.metrics["ingested"] == 2
    report = _run(tiny_project, "ingest.projections=[1, 2]")
    assert report.metrics["ingested"] == 4


def test_corrupt_missing_and_bad_rows_become_rejects(tiny_project):
    root = tiny_project / "data/raw/grazpedwri-dx"
    images = root / "images_part1"
    data = (images / "0001_1297860395_01_WRI-L1_M014.png").read_bytes()
    (images / "0001_1297860395_01_WRI-L1_M014.png").write_bytes(data[: len(data) // 3])
    (images / "0003_0662359226_01_WRI-L1_M011.png").unlink()
    csv = (root / "dataset.csv").read_bytes().replace(b",F,12.0,R,1,", b",F,12.0,Z,1,")
    (root / "dataset.csv").write_bytes(csv)
    with pytest.raises(StageError, match="no usable image"):
        _run(tiny_project)
    rejects = read_table(tiny_project / "data/interim/ingest.partial/rejects.parquet", REJECTS)
    reasons = dict(zip(rejects.filestem, rejects.reason))
    assert "cannot decode PNG" in reasons["0001_1297860395_01_WRI-L1_M014"]
    assert "not found under" in reasons["0003_0662359226_01_WRI-L1_M011"]
    assert "unknown laterality code 'Z'" in reasons["0002_0354485735_01_WRI-R1_F012"]


def test_same_params_same_bytes(tiny_project):
    _run(tiny_project)
    out = tiny_project / "data/interim/ingest"
    first = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    _run(tiny_project, "ingest.shard_size=1")  # a different shard layout
    second = {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    assert first == second


def test_wrong_columns_and_bad_params_fail_with_one_line(tiny_project):
    with pytest.raises(StageError, match=r"params.yaml \[ingest.height\]"):
        _run(tiny_project, "ingest.height=-3")
    with pytest.raises(StageError, match=r"params.yaml has no key ingest.heigth"):
        _run(tiny_project, "ingest.heigth=3")
    csv = tiny_project / "data/raw/grazpedwri-dx/dataset.csv"
    csv.write_bytes(csv.read_bytes().replace(b"projection", b"view"))
    with pytest.raises(StageError, match=r"missing column\(s\) projection"):
        _run(tiny_project)


def test_collimator_bands_are_measured_into_the_manifest(tiny_project):
    from denseseg.io.png import write_png
    from denseseg.io.tables import FIELD_COLUMNS
    from denseseg.preprocessing.working_frame import WorkingFrame

    stem = "0003_0662359226_01_WRI-L1_M011"
    path = tiny_project / "data/raw/grazpedwri-dx/images_part1" / f"{stem}.png"
    original = read_png(path).copy()
    original[original == 0] = 1  # tissue and air are exposed (never 0) ...
    original[:25] = 0  # ... but a blade covers the top 25 of its 150 rows
    write_png(path, original)
    _run(tiny_project)
    manifest = read_table(tiny_project / "data/interim/ingest/manifest.parquet", MANIFEST).set_index("filestem")
    bands = manifest[list(FIELD_COLUMNS)]
    scale = float(manifest.loc[stem, "scale"])
    assert abs(bands.loc[stem, "field_top"] - 25 * scale) <= 1.0  # 8 working rows, within a pixel
    assert (bands.drop(index=stem).to_numpy() == 0).all() and (bands.loc[stem].iloc[1:] == 0).all()
    frame = WorkingFrame.from_row(manifest.loc[stem].to_dict())
    assert frame.view_box()[0] == frame.footprint_box()[0] + bands.loc[stem, "field_top"]
    _run(tiny_project, "ingest.field.enabled=false")
    off = read_table(tiny_project / "data/interim/ingest/manifest.parquet", MANIFEST)
    assert (off[list(FIELD_COLUMNS)].to_numpy() == 0).all()
