import hashlib

import numpy as np
import pandas as pd

from denseseg.io.tables import TRUTH_CONTOURS, TRUTH_IMAGES, read_table
from denseseg.phantom.metadata import image_path, plan_release
from denseseg.phantom.release import merge_truth, render_shard
from tests.phantom.tiny import plan_settings, render_settings

SETTINGS = render_settings(height_min=64, height_max=80)


def _write(tmp, plan, size):
    release, parts, truth = tmp / "release", tmp / "parts", tmp / "truth"
    for start in range(0, len(plan), size):
        render_shard(plan.iloc[start : start + size], 3, SETTINGS, release, parts)
    merge_truth(parts, truth)
    digest = {}
    for path in sorted(p for p in tmp.rglob("*") if p.is_file() and "parts" not in p.parts):
        digest[str(path.relative_to(tmp))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def test_bytes_do_not_depend_on_the_shard_layout(tmp_path):
    plan = plan_release(3, plan_settings(n_patients=4))
    a = _write(tmp_path / "a", plan, 2)
    b = _write(tmp_path / "b", plan, 5)
    assert a == b and len(a) == len(plan) + 2


def test_truth_tables(tmp_path):
    plan = plan_release(3, plan_settings(n_patients=4))
    _write(tmp_path, plan, 4)
    images = read_table(tmp_path / "truth" / "images.parquet", TRUTH_IMAGES)
    contours = read_table(tmp_path / "truth" / "contours.parquet", TRUTH_CONTOURS)
    pa_rows = plan[plan.projection == 1]
    assert sorted(images.filestem) == sorted(pa_rows.filestem)
    for _, row in images.iterrows():
        c = contours[contours.filestem == row.filestem]
        assert sorted(c.structure.unique()) == sorted(row.bones_present)
        assert set(row.bones_visible) <= set(row.bones_present)
        for _, g in c.groupby("structure"):
            assert np.array_equal(g.point.to_numpy(), np.arange(len(g)))
    for _, row in plan.iterrows():
        assert (tmp_path / "release" / image_path(row)).exists()
    assert isinstance(images.bones_present.iloc[0], (list, np.ndarray, pd.Series)) or len(images) == 0
