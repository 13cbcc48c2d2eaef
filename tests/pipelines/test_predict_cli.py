"""``python -m pipelines predict``: its outputs' contract, bad input as one line each, and the real radiographs.

Models are tiny and untrained (tests/predict/models.py): the tests check what
the command promises (files, columns, shapes, coordinates in the image's own
pixels, mirroring, messages), not how good an untrained network is.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from denseseg.anatomy import WRIST
from denseseg.bone_age import BoneAgeModel, BoneAgeParams, train_ensemble
from denseseg.io.png import write_png
from denseseg.shape.synthetic import wrist_cases
from pipelines.predict import main
from tests.bone_age.conftest import growing_wrists
from tests.bone_age.conftest import training as bone_age_training
from tests.conftest import run_cli
from tests.predict.models import HEIGHT, WIDTH, write_model, write_project

STEM_L = "0001_1297860395_01_WRI-L1_M014"
STEM_R = "0002_0354485735_01_WRI-R1_F012"
STEM_LATERAL = "0001_1297860435_01_WRI-L2_M014"
FILES = {"landmarks.csv", "landmarks.json", "masks", "overlay.png", "prediction.json"}


def _radiograph(shape, seed=0) -> np.ndarray:
    """Smooth 'bone' blobs on a dark background, 16-bit."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    image = np.full(shape, 4000.0)
    for _ in range(6):
        x, y, r = rng.uniform(0, shape[1]), rng.uniform(0, shape[0]), rng.uniform(0.05, 0.15) * min(shape)
        image += 40000 * np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * r**2))
    return np.clip(image, 0, 65535).astype(np.uint16)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    write_project(root / "project")
    models = {"denseseg": write_model(root / "models/denseseg")}
    models["heatreg"] = write_model(root / "models/heatreg", "heatreg", trained=np.arange(0, WRIST.n_landmarks, 5))
    images = root / "images"
    images.mkdir()
    write_png(images / f"{STEM_L}.png", _radiograph((3 * HEIGHT, 3 * WIDTH)))  # the working aspect: no padding
    write_png(images / f"{STEM_R}.png", _radiograph((250, 190), seed=1))  # padded left and right
    write_png(images / f"{STEM_LATERAL}.png", _radiograph((200, 260), seed=2))
    return root, models, images


def _run(setup, *args, model="denseseg", out="out"):
    root, models, _ = setup
    argv = [*map(str, args), "--model", str(models[model]), "--out", str(root / out), "--root", str(root / "project")]
    return main(argv), root / out


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_outputs_follow_the_contract(setup, capsys):
    root, _, images = setup
    points = root / "points.csv"
    points.write_text("name,structure,x,y\ntip,radius,10.0,20.0\nmid,lunate,30.5,40.0\n")
    status, out = _run(setup, images / f"{STEM_L}.png", images / f"{STEM_R}.png", "--points", points)
    assert status == 0, capsys.readouterr().err
    assert len(_lines(capsys.readouterr().out)) == 2
    for stem, shape in ((STEM_L, (3 * HEIGHT, 3 * WIDTH)), (STEM_R, (250, 190))):
        folder = out / stem
        assert {p.name for p in folder.iterdir()} == FILES | {"points.csv"}
        table = pd.read_csv(folder / "landmarks.csv")
        assert list(table.columns) == ["structure", "index", "x", "y", "inside"]
        assert len(table) == WRIST.n_landmarks
        assert table.groupby("structure", sort=False).size().to_dict() == dict(WRIST.landmark_counts)
        assert (table.groupby("structure")["index"].max() + 1).to_dict() == dict(WRIST.landmark_counts)
        inside = table["x"].between(-0.5, shape[1] - 0.5) & table["y"].between(-0.5, shape[0] - 0.5)
        assert (table["inside"] == inside).all()
        if stem == STEM_L:  # no padding: every landmark the network places lies on the radiograph
            assert table[["x", "y"]].notna().all().all() and table["inside"].all()
        landmarks = json.loads((folder / "landmarks.json").read_text())
        assert landmarks["image"]["height"] == shape[0] and landmarks["image"]["width"] == shape[1]
        assert landmarks["laterality"] == stem.split("WRI-")[1][0] and landmarks["estimator"] == "affine"
        flat = np.array([p for s in WRIST.structures for p in landmarks["structures"][s]], np.float64)
        np.testing.assert_allclose(flat, table[["x", "y"]].to_numpy(), atol=1e-4)
        masks = sorted(p.name for p in (folder / "masks").iterdir())
        assert masks == sorted(f"{s}.png" for s in WRIST.structures)
        for name in masks:
            with Image.open(folder / "masks" / name) as im:
                assert im.mode == "L" and im.size == (shape[1], shape[0])
                assert set(np.unique(np.asarray(im))) <= {0, 255}
        with Image.open(folder / "overlay.png") as im:
            assert im.mode == "RGB" and im.size == (shape[1], shape[0])  # small images are not scaled
        summary = json.loads((folder / "prediction.json").read_text())
        assert summary["format"] == "denseseg-prediction/1" and summary["bone_age_months"] is None
        assert summary["mirrored"] == (stem == STEM_R) and summary["laterality_source"] == "filestem"
        assert summary["landmarks"]["total"] == WRIST.n_landmarks
        assert summary["model"]["method"] == "denseseg" and summary["model"]["working_size"] == [HEIGHT, WIDTH]
        for s in WRIST.structures:
            with Image.open(folder / "masks" / f"{s}.png") as im:
                assert summary["structures"][s]["mask_area_px"] == int((np.asarray(im) > 0).sum())
        found = pd.read_csv(folder / "points.csv")
        assert list(found.columns) == ["name", "structure", "template_x", "template_y", "u", "v", "x", "y", "inside"]
        assert found["name"].tolist() == ["tip", "mid"] and summary["points"]["count"] == 2


def test_a_right_hand_is_predicted_as_the_mirror_of_the_same_left_hand(setup, tmp_path, capsys):
    """The mirrored image with --right reaches the network exactly as the image with --left."""
    pixels = _radiograph((230, 170), seed=5)
    write_png(tmp_path / "left.png", pixels)
    write_png(tmp_path / "right.png", pixels[:, ::-1].copy())
    assert _run(setup, tmp_path / "left.png", "--left", out="mirror-l")[0] == 0
    status, out = _run(setup, tmp_path / "right.png", "--right", out="mirror-r")
    assert status == 0, capsys.readouterr().err
    left = pd.read_csv(setup[0] / "mirror-l/left/landmarks.csv")
    right = pd.read_csv(out / "right/landmarks.csv")
    np.testing.assert_allclose(right["x"], (170 - 1) - left["x"], atol=1e-3)
    np.testing.assert_allclose(right["y"], left["y"], atol=1e-3)
    for s in ("radius", "capitate", "metacarpal_5"):
        a = np.asarray(Image.open(setup[0] / f"mirror-l/left/masks/{s}.png"))
        b = np.asarray(Image.open(out / f"right/masks/{s}.png"))
        np.testing.assert_array_equal(b, a[:, ::-1])
    summary = json.loads((out / "right/prediction.json").read_text())
    assert summary["laterality"] == "R" and summary["laterality_source"] == "--right" and summary["projection"] is None


def test_a_lateral_view_is_predicted_with_a_warning(setup, capsys):
    status, out = _run(setup, setup[2] / f"{STEM_LATERAL}.png")
    err = capsys.readouterr().err
    assert status == 0 and "warning: predict:" in err and "a lateral view (projection 2" in err
    assert "lateral view" in json.loads((out / STEM_LATERAL / "prediction.json").read_text())["warnings"][0]


def test_a_flag_that_contradicts_the_filestem_wins_with_a_warning(setup, capsys):
    status, out = _run(setup, setup[2] / f"{STEM_L}.png", "--right", out="forced")
    assert status == 0 and "the file name says L, --right overrides it" in capsys.readouterr().err
    assert json.loads((out / STEM_L / "prediction.json").read_text())["mirrored"] is True


def _bad_files(folder):
    """{file: the reason its one line must give}, one per kind of bad input."""
    folder.mkdir()
    grey = (np.arange(100 * 80) % 251).reshape(100, 80).astype(np.uint8)
    bad = {}
    path = folder / "0003_0662359226_01_WRI-L1_M011.png"
    path.write_bytes(b"\x00\x01 not a png " * 20)
    bad[path] = "not an image file"
    path = folder / "0004_0662359226_01_WRI-L1_M011.png"
    write_png(path, _radiograph((200, 150)))
    path.write_bytes(path.read_bytes()[:2000])
    bad[path] = "cannot decode PNG"
    path = folder / "0005_0662359226_01_WRI-L1_M011.png"
    Image.fromarray(np.stack([grey] * 3, 2)).save(path)
    bad[path] = "a colour PNG (mode RGB)"
    path = folder / "0006_0662359226_01_WRI-L1_M011.png"
    Image.fromarray(grey).convert("P").save(path)
    bad[path] = "a palette PNG (mode P)"
    path = folder / "0007_0662359226_01_WRI-L1_M011.png"
    write_png(path, _radiograph((40, 300)))
    bad[path] = "image of 40x300 px is too small"
    path = folder / "0008_0662359226_01_WRI-L1_M011.png"
    write_png(path, np.zeros((80, 10001), np.uint16))
    bad[path] = "image of 80x10001 px is too large"
    path = folder / "scan.png"
    write_png(path, _radiograph((200, 150)))
    bad[path] = "laterality unknown"
    bad[folder / "0009_0662359226_01_WRI-L1_M011.png"] = "no such file"
    return bad


@pytest.mark.slow  # a subprocess, as a user runs it: torch and MONAI load again (about 10 s)
def test_bad_inputs_get_one_line_each_and_the_good_images_are_still_predicted(setup, tmp_path):
    root, models, images = setup
    bad = _bad_files(tmp_path / "bad")
    good = [images / f"{STEM_L}.png", images / f"{STEM_R}.png"]
    args = ["predict", *map(str, [good[0], *bad, good[1]]), "--model", str(models["denseseg"])]
    done = run_cli([*args, "--out", str(tmp_path / "out")], cwd=root / "project")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = _lines(done.stderr)
    assert len(lines) == len(bad), done.stderr
    for line, (path, why) in zip(lines, bad.items()):
        assert line.startswith(f"error: predict: {path}: ") and why in line, line
    assert {p.name for p in (tmp_path / "out").iterdir()} == {STEM_L, STEM_R}
    assert len(_lines(done.stdout)) == 2


@pytest.mark.parametrize(
    ("args", "model", "why"),
    [
        (["--points", "{root}/points-heatreg.csv"], "heatreg", "only DenseSeg models locate extra points"),
        (["--points", "{root}/bad-points.csv"], "denseseg", "line 3: unknown structure 'femur'"),
        (["--estimator", "argmax"], "denseseg", "--estimator argmax: this model has affine, softmin"),
        (["--boneage", "{root}/no-such-model"], "denseseg", "no-such-model: "),  # no module, or no model there
        (["--device", "tpu"], "denseseg", "device 'tpu'"),
        (["--set", "predict.min_side=0"], "denseseg", "params.yaml [predict.min_side]"),
        (["--set", "nope.key=1"], "denseseg", "'nope' is not a section"),
    ],
)
def test_a_bad_option_stops_before_any_image_with_one_line(setup, capsys, args, model, why):
    root = setup[0]
    (root / "points-heatreg.csv").write_text("structure,x,y\nradius,1,2\n")
    (root / "bad-points.csv").write_text("structure,x,y\nradius,1,2\nfemur,3,4\n")
    args = [a.format(root=root) for a in args]
    status, out = _run(setup, setup[2] / f"{STEM_L}.png", *args, model=model, out="never")
    err = capsys.readouterr().err
    assert status == 2 and len(_lines(err)) == 1 and err.startswith("error: predict: ") and why in err, err
    assert not out.exists()


def test_a_missing_model_is_one_line(setup, capsys):
    root, _, images = setup
    args = [images / f"{STEM_L}.png", "--model", root / "nothing", "--out", root / "x", "--root", root / "project"]
    status = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert status == 2 and len(_lines(err)) == 1 and "no trained model" in err


def test_heatreg_predicts_its_trained_landmarks_and_polygon_masks(setup, capsys):
    status, out = _run(setup, setup[2] / f"{STEM_L}.png", model="heatreg", out="heatreg")
    assert status == 0, capsys.readouterr().err
    table = pd.read_csv(out / STEM_L / "landmarks.csv")
    trained = np.zeros(WRIST.n_landmarks, bool)
    trained[::5] = True
    assert table["x"].notna().to_numpy().tolist() == trained.tolist()  # the others are empty, not invented
    summary = json.loads((out / STEM_L / "prediction.json").read_text())
    assert summary["landmarks"]["found"] == trained.sum() and summary["estimator"] == "subpixel"


def test_bone_age_comes_from_the_bone_age_model_on_the_working_landmarks(setup, capsys, monkeypatch):
    """``--boneage``: a saved ``denseseg.bone_age`` ensemble ages the image from its landmarks at the working size.

    The model is trained on synthetic wrists whose size sets the age. The landmarks it must be fed are computed
    here from the command's own CSV (original pixels mapped back into the mirrored working frame), and what the
    command fed it is recorded: the test fails if the command fed another frame or another landmark order. (Its
    ages alone need not tell the frames apart: on some CPUs both frames fall into the same bucket.)
    """
    params = BoneAgeParams(
        bucket_months=4, max_months=240, max_points=80, bone_hidden=[32, 32, 32], head_hidden=64, members=2,
        monitor="val_mae_months",
    )  # fmt: skip
    template = next(wrist_cases(1, seed=0, height=HEIGHT, width=WIDTH))[2]
    samples = growing_wrists(template, 128, seed=0)
    model, _ = train_ensemble(
        params, bone_age_training(epochs=30), samples, None, anatomy=WRIST, height=HEIGHT, width=WIDTH, seed=0
    )
    folder = setup[0] / "bone-age"
    model.save(folder)
    fed, predict = [], BoneAgeModel.predict
    monkeypatch.setattr(
        BoneAgeModel, "predict", lambda self, points: fed.append(np.array(points)) or predict(self, points)
    )
    status, out = _run(setup, setup[2] / f"{STEM_R}.png", "--boneage", folder, out="age")
    assert status == 0, capsys.readouterr().err
    summary = json.loads((out / STEM_R / "prediction.json").read_text())
    frame = summary["working_frame"]
    table = pd.read_csv(out / STEM_R / "landmarks.csv")
    x = ((190 - 1) - table["x"].to_numpy() + 0.5) * frame["scale"] + frame["pad_left"] - 0.5  # mirrored right hand
    y = (table["y"].to_numpy() + 0.5) * frame["scale"] + frame["pad_top"] - 0.5
    working = np.stack([x, y], -1).astype(np.float32)[None]
    loaded = BoneAgeModel.from_folder(folder)
    expected = loaded.predict(working)[0]
    assert summary["bone_age_model"] == str(folder)
    assert summary["bone_age_months"] == pytest.approx(float(expected))
    assert expected % params.bucket_months == params.bucket_months / 2  # a bucket's centre
    np.testing.assert_allclose(fed[0], working, atol=0.01)  # the working frame, in the anatomy's landmark order
    original = table[["x", "y"]].to_numpy(np.float32)[None]
    assert np.abs(original - working).max() > 5  # ... which the original pixels are not


def test_help_is_listed_by_the_pipeline_command(capsys):
    from pipelines.cli import _parser

    assert "predict IMAGE" in _parser().epilog
    assert main(["--help"]) == 0 and "--boneage" in capsys.readouterr().out


@pytest.mark.real_data
def test_the_four_real_radiographs_are_predicted(setup, shared_data, capsys):
    real = sorted((shared_data / "grazpedwri-dx" / "images").glob("*.png"))
    assert len(real) == 4
    status, out = _run(setup, *real, out="real")
    err = capsys.readouterr().err
    assert status == 0, err
    assert sum("lateral view" in line for line in _lines(err)) == sum("WRI-L2" in p.name for p in real) == 2
    for path in real:
        folder = out / path.stem
        with Image.open(path) as im:
            size = im.size
        with Image.open(folder / "masks" / "radius.png") as im:
            assert im.size == size
        with Image.open(folder / "overlay.png") as im:
            assert max(im.size) <= 1024 and abs(im.size[0] / im.size[1] - size[0] / size[1]) < 0.01
        summary = json.loads((folder / "prediction.json").read_text())
        assert summary["mirrored"] == ("WRI-R" in path.name)
        assert summary["image"]["bit_depth"] == 16
        table = pd.read_csv(folder / "landmarks.csv")
        assert len(table) == WRIST.n_landmarks and table["inside"].sum() == summary["landmarks"]["inside_image"]
