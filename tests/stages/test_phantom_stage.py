import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from denseseg.io.png import read_png
from denseseg.io.tables import TRUTH_CONTOURS, TRUTH_IMAGES, read_table
from denseseg.phantom.raster import polygon_mask
from stages.base import StageError
from stages.config import build_stage
from stages.registry import load_stage_class
from tests.conftest import PROJECT
from tests.phantom.tiny import make_stage


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory):
    """Run the stage once on a tiny configuration: (root, report)."""
    root = tmp_path_factory.mktemp("phantom")
    return root, make_stage(root, paths={"metrics": "reports/metrics"}).run_serial()


def _digest(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_registered():
    from stages.phantom import PhantomStage

    assert load_stage_class("phantom") is PhantomStage


def test_release_layout_and_metrics(tiny_release):
    root, report = tiny_release
    release = root / "data/raw/grazpedwri-dx"
    df = pd.read_csv(
        io.BytesIO((release / "dataset.csv").read_bytes()), encoding="utf-8-sig", dtype=str, keep_default_na=False
    )
    assert report.metrics["n_images"] == len(df) and report.metrics["n_pa"] == (df.projection == "1").sum()
    files = sorted(p.name for p in release.glob("images_part*/*.png"))
    assert files == sorted(df.filestem + ".png")
    assert {p.parent.name for p in release.glob("images_part*/*.png")} <= {f"images_part{i}" for i in range(1, 5)}
    for stem in df.filestem[:4]:
        img = read_png(next(release.glob(f"images_part*/{stem}.png")))
        assert img.dtype == np.uint16 and img.min() == 0 and img.max() == 65535
    assert not any(p.name.endswith(".partial") for p in (root / "data").rglob("*"))
    images = read_table(root / "data/truth/images.parquet", TRUTH_IMAGES)
    assert sorted(images.filestem) == sorted(df.filestem[df.projection == "1"])


def test_metrics_file_holds_the_counts_as_numbers(tiny_release):
    root, report = tiny_release
    written = json.loads((root / "reports/metrics/phantom.json").read_text())
    assert written == {**report.metrics, "enabled": 1} and written["n_images"] > 0
    assert all(type(v) is int for v in written.values())  # only numbers: dvc metrics show / diff
    assert not (root / "reports/metrics/phantom-info.json").exists()  # no words to put aside


def test_seed_masks_equal_the_truth_polygons(tiny_release):
    root, report = tiny_release
    seeds = root / "data/raw/seed-annotations"
    ann = pd.read_csv(seeds / "annotations.csv", dtype=str)
    assert list(ann.columns) == ["filestem", "structure", "mask_path"]
    assert ann.filestem.nunique() == report.metrics["n_seed_images"] == 4
    assert (seeds / "README.md").exists()
    contours = read_table(root / "data/truth/contours.parquet", TRUTH_CONTOURS)
    images = read_table(root / "data/truth/images.parquet", TRUTH_IMAGES).set_index("filestem")
    for row in ann.itertuples():
        mask = read_png(seeds / row.mask_path)
        info = images.loc[row.filestem]
        assert mask.dtype == np.uint8 and mask.shape == (info.height, info.width)
        assert set(np.unique(mask)) <= {0, 255}
        pts = contours[(contours.filestem == row.filestem) & (contours.structure == row.structure)]
        expected = polygon_mask(pts.sort_values("point")[["x", "y"]].to_numpy(), mask.shape)
        np.testing.assert_array_equal(mask == 255, expected)


def test_same_seed_same_bytes_any_shard_size(tiny_release, tmp_path):
    root, _ = tiny_release
    make_stage(tmp_path, shard_size=3).run_serial()
    assert _digest(tmp_path / "data") == _digest(root / "data")


def test_disabled_leaves_real_data_alone(tmp_path):
    real = tmp_path / "data/real/grazpedwri-dx"
    real.mkdir(parents=True)
    (real / "dataset.csv").write_text("mine")
    real_paths = {"release_root": "data/real/grazpedwri-dx", "seed_annotations": "data/real/seeds"}
    report = make_stage(tmp_path, enabled=False, paths={**real_paths, "metrics": "m"}).run_serial()
    assert report.metrics == {"enabled": False}
    assert json.loads((tmp_path / "m/phantom.json").read_text()) == {"enabled": 0}
    assert (real / "dataset.csv").read_text() == "mine"
    # DVC needs the phantom's outputs to exist: each holds only a note
    for folder in ("data/raw/grazpedwri-dx", "data/raw/seed-annotations", "data/truth"):
        assert [p.name for p in (tmp_path / folder).iterdir()] == ["PHANTOM_DISABLED.md"]


def test_disabled_refuses_when_the_chain_still_reads_the_phantom_folder(tmp_path):
    with pytest.raises(StageError, match="point paths.release_root at your GRAZPEDWRI-DX download"):
        make_stage(tmp_path, enabled=False).run_serial()


def test_bad_params_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="height range"):  # the library's settings validate the section
        make_stage(tmp_path, height_min=300, height_max=200)
    (tmp_path / "params.yaml").write_text((PROJECT / "params.yaml").read_text())
    with pytest.raises(
        StageError, match=r"^params\.yaml \[phantom\]: Value error, image height range .*\(1 error\(s\)\)$"
    ):
        build_stage("phantom", tmp_path, ["phantom.height_min=300", "phantom.height_max=200"])
