"""benchmarks/collimation.py: true blades recovered from originals whose blades are known by construction."""

import numpy as np
import pandas as pd
import pytest
import yaml

from denseseg.io.png import write_png


@pytest.fixture(scope="module")
def collimation(load_benchmark):
    return load_benchmark("collimation")


def _original(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(100, 60000, size=(200, 100)).astype(np.uint16)


def test_a_tilted_blade_is_measured_at_its_deepest_point(collimation):
    image = _original(0)
    depth = 10 + np.round(np.arange(100) * 0.05).astype(int)  # 10 .. 15 px along the top
    for x in range(100):
        image[: depth[x], x] = 0
    image[:, :4] = 0  # an adjacent left blade: its lines must not count for the top
    image[0, 0] = 0
    truth = collimation.true_depths(image, 0.6)
    assert truth["top"] == pytest.approx(10 + 99 * 0.05, abs=0.6)
    assert truth["left"] == pytest.approx(4, abs=0.5) and truth["bottom"] == 0 and truth["right"] == 0


def test_found_missed_and_false_bands_are_counted(collimation, tmp_path):
    paths = {"ingest": "ingest", "release_root": "release"}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"paths": paths, "ingest": {"image_folders": ["images"]}}))
    (tmp_path / "release/images").mkdir(parents=True)
    (tmp_path / "ingest").mkdir()
    a, b = _original(1), _original(2)
    a[:20] = 0  # a: a 20 px blade at the top (10 working px at scale 0.5), found 9 px deep
    b[:, -6:] = 0  # b (a right hand, mirrored by ingest): a blade on its stored right, the working left; missed
    write_png(tmp_path / "release/images/a.png", a)
    write_png(tmp_path / "release/images/b.png", b)
    rows = [
        {"filestem": "a", "flipped": False, "scale": 0.5, "field_top": 9.0, "field_left": 0.0},
        {"filestem": "b", "flipped": True, "scale": 0.5, "field_top": 0.0, "field_left": 0.0},
    ]
    for row in rows:
        row.update({"field_bottom": 2.0 if row["filestem"] == "b" else 0.0, "field_right": 0.0})
    pd.DataFrame(rows).to_parquet(tmp_path / "ingest/manifest.parquet")
    table = collimation.compare(tmp_path, 1.0, 0.6)
    truth = table.set_index(["filestem", "side"])["true_px"]
    assert truth["a", "top"] == pytest.approx(10.0) and truth["b", "left"] == pytest.approx(3.0)
    assert truth["b", "right"] == 0.0
    figures = collimation.figures(table)
    assert figures["sides"] == 8 and figures["true_bands"] == 2
    assert figures["found"] == 1 and figures["missed"] == 1 and figures["false_bands"] == 1  # b's bottom
    assert figures["depth_error_median_px"] == pytest.approx(1.0) and figures["inner_share"] == 0.0
