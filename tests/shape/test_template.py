import numpy as np

from denseseg.anatomy import JSRT
from denseseg.shape.template import Template, build_template


def _shapes(n=6, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.uniform(20, 200, size=(JSRT.n_landmarks, 2))
    return np.stack([base + rng.normal(0, 1, base.shape) for _ in range(n)])


def test_mean_template_uv_range_and_round_trip(tmp_path):
    shapes = _shapes()
    template = build_template(shapes, JSRT)
    assert np.allclose(template.flat_points(), shapes.mean(0))
    for s in JSRT.structures:
        uv = template.landmark_uv(s)
        assert np.isclose(uv.min(0), -1).all() and np.isclose(uv.max(0), 1).all()
        assert np.allclose(template.from_uv(s, uv), template.points[s])
    template.save(tmp_path / "t.json")
    again = Template.load(tmp_path / "t.json")
    assert np.array_equal(again.flat_points(), template.flat_points())
    assert (tmp_path / "t.json").read_bytes() == (
        template.save(tmp_path / "u.json") or (tmp_path / "u.json").read_bytes()
    )


def test_procrustes_removes_pose_and_missing_structures_are_ignored():
    shapes = _shapes(4)
    a = np.deg2rad(10)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    shapes[1] = shapes[1] @ rot.T + 7
    shapes[2, :44] = np.nan  # right lung absent in one case
    template = build_template(shapes, JSRT, procrustes=True)
    assert template.n_shapes["right_lung"] == 3 and template.n_shapes["heart"] == 4
    assert np.isfinite(template.flat_points()).all()
