"""Extra template points located in the predicted uv maps without retraining.

The oracle: a template landmark given as an extra point is the very target the
model's own extraction uses for that landmark, so it must land exactly where the
model puts the landmark (in working and in original pixels, for every estimator).
"""

from __future__ import annotations

import numpy as np
import pytest

from denseseg.anatomy import WRIST
from denseseg.predict.params import Preprocessing
from denseseg.predict.points import read_points
from denseseg.predict.predictor import RadiographPredictor
from denseseg.predict.radiograph import RadiographError
from tests.predict.models import HEIGHT, WIDTH, wrist_template, write_model

PREP = Preprocessing(HEIGHT, WIDTH, 65535)
# (structure, index within it) of the landmarks tried as extra points
CHOSEN = [("radius", 0), ("radius", 41), ("lunate", 7), ("metacarpal_5", 59), ("pisiform", 12)]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return RadiographPredictor.from_folder(write_model(tmp_path_factory.mktemp("model") / "denseseg"), PREP, "cpu")


def _image(shape=(300, 160)) -> np.ndarray:
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return (20000 + 30000 * np.sin(rows / 17.0) * np.cos(cols / 11.0) ** 2).astype(np.uint16)


def _write(path, header, rows):
    path.write_text("\n".join([header, *(",".join(str(v) for v in row) for row in rows)]) + "\n")
    return path


@pytest.mark.parametrize("side", ["L", "R"])
@pytest.mark.parametrize("estimator", ["affine", "softmin"])
def test_a_template_landmark_given_as_a_point_lands_on_the_models_landmark(tmp_path, predictor, side, estimator):
    template, offsets = predictor.method.space.template, WRIST.landmark_offsets()
    flat = [offsets[s] + i for s, i in CHOSEN]
    xy_rows = [(s, *(repr(float(c)) for c in template.points[s][i])) for s, i in CHOSEN]
    xy = _write(tmp_path / "xy.csv", "structure,x,y", xy_rows)
    uv = predictor.method.space.uv
    uv_rows = [
        (f"p{k}", s, repr(float(uv[f][0])), repr(float(uv[f][1]))) for k, ((s, _), f) in enumerate(zip(CHOSEN, flat))
    ]
    exact = _write(tmp_path / "uv.csv", "name,structure,u,v", uv_rows)
    pred = predictor.predict(_image(), side, estimator, predictor.read_points(exact))
    own = pred.working_landmarks[flat]
    assert np.isfinite(own).all()
    # the model reports its landmarks as float32: the same target gives the same float32 position, bit for bit
    np.testing.assert_array_equal(pred.working_points.astype(np.float32), own.astype(np.float32))
    np.testing.assert_allclose(pred.points, pred.landmarks[flat], atol=1e-5 / pred.frame.scale, rtol=0)
    # template coordinates: to_uv in float64 differs from the stored float32 uv by ~1e-8
    pred = predictor.predict(_image(), side, estimator, predictor.read_points(xy))
    np.testing.assert_allclose(pred.working_points, own, atol=1e-4, rtol=0)


def test_a_point_between_two_landmarks_is_found_between_them(tmp_path, predictor):
    """Not a landmark: located through its uv value, inside the bone's predicted mask."""
    template = predictor.method.space.template
    mid = template.points["capitate"][[3, 4]].mean(0)
    points = predictor.read_points(_write(tmp_path / "p.csv", "structure,x,y", [("capitate", *mid)]))
    pred = predictor.predict(_image(), "L", None, points)
    x, y = pred.working_points[0]
    assert np.isfinite([x, y]).all() and pred.working_masks[WRIST.index("capitate"), round(y), round(x)]
    np.testing.assert_allclose(pred.points, pred.frame.to_original(pred.working_points), atol=1e-9)


def test_heatreg_models_cannot_locate_points(tmp_path):
    folder = write_model(tmp_path / "heatreg", "heatreg", trained=np.arange(0, WRIST.n_landmarks, 10))
    predictor = RadiographPredictor.from_folder(folder, PREP, "cpu")
    assert not predictor.locates_points
    with pytest.raises(RadiographError, match="the model is heatreg.*only DenseSeg models locate extra points"):
        predictor.read_points(_write(tmp_path / "p.csv", "structure,x,y", [("radius", 1, 2)]))


def test_template_coordinates_need_cartesian_uv_maps(tmp_path):
    folder = write_model(tmp_path / "polar", uv=np.random.default_rng(0).uniform(-1, 1, (WRIST.n_landmarks, 2)))
    predictor = RadiographPredictor.from_folder(folder, PREP, "cpu")
    with pytest.raises(RadiographError, match="not cartesian; give the points as u,v"):
        predictor.read_points(_write(tmp_path / "xy.csv", "structure,x,y", [("radius", 1, 2)]))
    assert predictor.read_points(_write(tmp_path / "uv.csv", "structure,u,v", [("radius", 0.1, 0.2)])).given == "uv"


@pytest.mark.parametrize(
    ("header", "rows", "why"),
    [
        ("structure,x,y", [("radius", 1, 2), ("femur", 1, 2)], r"line 3: unknown structure 'femur'"),
        ("structure,x,y", [("radius", "one", 2)], r"line 2: column x: not a number: 'one'"),
        ("structure,u,v", [("radius", "nan", 2)], r"line 2: column u: not finite"),
        ("structure,x,y,u,v", [("radius", 1, 2, 3, 4)], "columns structure,x,y .* or structure,u,v expected"),
        ("bone,x,y", [("radius", 1, 2)], "columns structure,x,y .* or structure,u,v expected"),
        ("structure,x,y,colour", [("radius", 1, 2, "red")], r"unexpected column\(s\) colour"),
        ("structure,x,y", [], "no points"),
        ("", [], "not a readable CSV"),
    ],
)
def test_bad_points_files_name_the_row_and_the_problem(tmp_path, header, rows, why):
    path = _write(tmp_path / "points.csv", header, rows)
    with pytest.raises(RadiographError, match=why) as err:
        read_points(path, wrist_template())
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_points_keep_their_names_and_template_coordinates(tmp_path):
    template = wrist_template()
    path = _write(tmp_path / "p.csv", "name,structure,x,y", [("tip", "radius", 3.5, 4), ("", "ulna", 5, 6)])
    points = read_points(path, template)
    assert points.names == ("tip", "1") and points.structures == ("radius", "ulna") and points.given == "xy"
    np.testing.assert_array_equal(points.values, [[3.5, 4], [5, 6]])
    np.testing.assert_allclose(points.uv[0], template.to_uv("radius", np.array([3.5, 4.0])))
