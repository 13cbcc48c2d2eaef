"""ShapeFormer as a method: initial shapes, loss, the saved initial shape, the predict contract."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from denseseg.anatomy import JSRT
from denseseg.inference.predictor import Predictor, save_model
from denseseg.methods.base import LandmarkSpace
from denseseg.methods.registry import method_class
from denseseg.methods.shapeformer import ShapeFormer, ShapeFormerParams, mean_shape
from denseseg.nets.shapeformer import to_normalised
from denseseg.shape.template import Template
from tests.conftest import PROJECT

HEIGHT, WIDTH = 48, 40
PARAMS = ShapeFormerParams(network={"features": 8, "width": 8, "layers": 1, "k": 4, "iterations": 1})


def space(trained) -> LandmarkSpace:
    rows = [(s, JSRT.landmark_offsets()[s] + i) for s in JSRT.structures for i in range(JSRT.landmark_counts[s])]
    table = pd.DataFrame(
        {"structure": [s for s, _ in rows], "index": [i for _, i in rows], "u": 0.0, "v": 0.0, "used": True}
    )
    template = Template("jsrt", {s: np.random.default_rng(0).random((n, 2)) for s, n in JSRT.landmark_counts.items()})
    return LandmarkSpace.from_table(JSRT, table, trained, template)


def items(n: int, m: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "item": f"case{i}",
            "image": torch.from_numpy(rng.random((1, HEIGHT, WIDTH)).astype(np.float32)),
            "landmarks": torch.from_numpy((rng.random((m, 2)) * [WIDTH - 1, HEIGHT - 1]).astype(np.float32)),
        }
        for i in range(n)
    ]


def batch_of(cases: list[dict]) -> dict:
    return {
        "item": [c["item"] for c in cases],
        "image": torch.stack([c["image"] for c in cases]),
        "landmarks": torch.stack([c["landmarks"] for c in cases]),
    }


def prepared(trained, cases, seed: int = 0):
    method = ShapeFormer(PARAMS, space(trained), torch.ones(len(JSRT.structures)))
    method.prepare(cases)
    torch.manual_seed(seed)
    return method, method.build_network()


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((to_normalised(a.detach(), HEIGHT, WIDTH) - to_normalised(b, HEIGHT, WIDTH)) ** 2).mean())


def test_registry_and_params_yaml_know_shapeformer():
    assert method_class("shapeformer") is ShapeFormer
    train = yaml.safe_load((PROJECT / "params.yaml").read_text())["train"]
    ShapeFormerParams(**train["methods"]["shapeformer"])
    assert train["monitor"]["shapeformer"] == "val_tre_px"


def test_mean_shape_is_the_mean_of_the_normalised_landmarks_skipping_nan():
    cases = items(3, 5)
    cases[1]["landmarks"][2] = float("nan")
    normalised = np.stack([to_normalised(c["landmarks"].double(), HEIGHT, WIDTH).numpy() for c in cases])
    np.testing.assert_allclose(mean_shape(cases).numpy(), np.nanmean(normalised, axis=0), rtol=1e-6)
    for c in cases:
        c["landmarks"][0] = float("nan")
    with pytest.raises(ValueError, match=r"landmarks \[0\] are missing"):
        mean_shape(cases)
    with pytest.raises(ValueError, match="no training items"):
        mean_shape([])


def test_training_starts_from_another_case_and_evaluation_from_the_mean_shape():
    # the untrained network returns its initial shape, so the loss is the MSE of that shape against the target
    cases = items(3, 10)
    method, net = prepared(np.arange(10), cases)
    batch = batch_of(cases)
    target = batch["landmarks"]
    net.train()
    rolled = torch.roll(target, 1, dims=0)  # case 0 starts from case 2, case 1 from case 0, ...
    assert float(method.step(net, batch)["loss"].detach()) == pytest.approx(mse(rolled, target), rel=1e-5)
    net.eval()
    mean_px = net(batch["image"])  # the stored mean shape, in pixels
    assert float(method.step(net, batch)["loss"].detach()) == pytest.approx(mse(mean_px, target), rel=1e-5)
    net.train()
    one = batch_of(cases[:1])  # a batch of one has no other case: the mean shape
    assert float(method.step(net, one)["loss"].detach()) == pytest.approx(mse(mean_px[:1], one["landmarks"]), rel=1e-5)


def test_a_few_steps_reduce_the_loss_on_a_tiny_batch():
    cases = items(4, 12, seed=1)
    for case in cases[1:]:
        case["landmarks"] = cases[0]["landmarks"].clone()  # one shape in four images
    method, net = prepared(np.arange(12), cases)
    net.set_initial_shape(net.initial_shape + 0.2)  # start off the target: the network has to learn the way back
    net.eval()  # the stored shape as the initial shape (and batch norm's running statistics): one loss per step
    batch = batch_of(cases)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = method.step(net, batch)["loss"]
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[0] == pytest.approx(0.04, rel=1e-4)  # 0.2 off in both coordinates of every landmark
    assert losses[-1] < 0.5 * losses[0]


def test_the_initial_shape_survives_save_and_load(tmp_path):
    trained = np.arange(0, JSRT.n_landmarks, 2)
    cases = items(3, len(trained))
    method, net = prepared(trained, cases)
    net.eval()
    save_model(tmp_path / "model", "shapeformer", PARAMS, method.space, net, method.pos_weight, {"run": "test"})
    predictor = Predictor.from_folder(tmp_path / "model", device="cpu")
    loaded = predictor.network
    torch.testing.assert_close(loaded.initial_shape, mean_shape(cases), rtol=0, atol=0)
    assert loaded.initial_shape.abs().sum() > 0  # not the zeros of a fresh network
    images = batch_of(cases)["image"]
    a, b = method.predict(net, images), predictor.predict(images)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.landmarks["landmarks"], y.landmarks["landmarks"])


def test_predict_gives_bool_masks_and_nan_for_untrained_landmarks():
    offsets = JSRT.landmark_offsets()
    heart = np.arange(offsets["heart"], offsets["heart"] + JSRT.landmark_counts["heart"])
    trained = np.concatenate([heart, [0, 1]])  # the heart and two right-lung landmarks
    cases = items(2, len(trained))
    method, net = prepared(trained, cases)
    net.eval()
    preds = method.predict(net, batch_of(cases)["image"])
    assert len(preds) == 2 and method.estimators == ("landmarks",)
    for pred in preds:
        assert pred.masks.shape == (len(JSRT.structures), HEIGHT, WIDTH) and pred.masks.dtype == bool
        points = pred.landmarks["landmarks"]
        assert points.shape == (JSRT.n_landmarks, 2)
        assert np.isfinite(points[trained]).all()
        assert np.isnan(np.delete(points, trained, axis=0)).all()
        # the untrained network predicts the mean shape: the heart's polygon is filled, the left lung is empty
        np.testing.assert_allclose(points[trained], net(batch_of(cases[:1])["image"])[0].detach().numpy(), atol=1e-5)
        assert pred.masks[JSRT.index("heart")].any() and not pred.masks[JSRT.index("left_lung")].any()


def test_the_paper_configuration_gives_the_papers_feature_map():
    from pipelines.overrides import override_arguments
    from stages.config import apply_overrides

    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    pairs = override_arguments(PROJECT / "configs/paper.yaml")[1::2]
    section = apply_overrides(params, pairs)["train"]["methods"]["shapeformer"]
    paper = ShapeFormerParams(**section)
    assert paper.network.features == 64 and paper.network.iterations == 1  # "one-shot"
    net = ShapeFormer(paper, space(np.arange(JSRT.n_landmarks)), torch.ones(5)).build_network().eval()
    with torch.no_grad():
        assert net.features(torch.zeros(1, 1, 256, 256)).shape == (1, 64, 32, 32)
