"""A method's one-pass validation gives exactly the numbers of ``step`` followed by ``predict``.

DenseSeg and HeatReg override ``validation_outputs`` to share one forward pass (and DenseSeg runs
only its primary estimator); the oracle is the base class's two-pass default on the same network.
"""

import numpy as np
import pytest
import torch
import yaml

from denseseg.anatomy import WRIST
from denseseg.methods.base import LandmarkSpace, Method
from denseseg.methods.registry import method_class
from tests.conftest import PROJECT
from tests.predict.models import HEIGHT, TINY_NET, WIDTH, wrist_template


def _method(name: str):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())["train"]["methods"][name]
    params["backbone"] = dict(TINY_NET)
    template = wrist_template()
    structure = np.repeat(np.arange(len(WRIST.structures)), list(WRIST.landmark_counts.values()))
    space = LandmarkSpace(WRIST, np.arange(WRIST.n_landmarks), template.flat_uv(), structure, template)
    cls = method_class(name)
    method = cls(cls.Params(**params), space, torch.full((len(WRIST.structures),), 2.0))
    torch.manual_seed(3)
    network = method.build_network().eval()
    if name == "denseseg":
        with torch.no_grad():
            network.seg_head[-1].bias.fill_(1.0)  # masks where the landmarks are, so the estimators have work
    return method, network


def _batch(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n_structures = len(WRIST.structures)
    masks = torch.from_numpy((rng.random((2, n_structures, HEIGHT, WIDTH)) > 0.6).astype(np.float32))
    uv = torch.from_numpy(rng.uniform(-1, 1, (2, n_structures, 2, HEIGHT, WIDTH)).astype(np.float32))
    uv[(masks == 0)[:, :, None].expand_as(uv)] = float("nan")
    points = wrist_template().flat_points().astype(np.float32)
    landmarks = torch.from_numpy(np.stack([points, points + 1.5]))
    return {
        "item": ["a", "b"],
        "image": torch.from_numpy(rng.random((2, 1, HEIGHT, WIDTH)).astype(np.float32)),
        "masks": masks,
        "uv": uv,
        "landmarks": landmarks,
        "present": torch.ones(2, n_structures, dtype=torch.bool),
    }


@pytest.mark.parametrize("name", ["denseseg", "heatreg"])
def test_one_pass_validation_equals_step_then_predict(name):
    method, network = _method(name)
    batch = _batch()
    with torch.no_grad():
        loss, preds = method.validation_outputs(network, batch)
        two_pass_loss, two_pass = Method.validation_outputs(method, network, batch)
    assert type(method).validation_outputs is not Method.validation_outputs  # the override is what is tested
    assert loss == two_pass_loss
    primary = method.estimators[0]
    for one, two in zip(preds, two_pass, strict=True):
        np.testing.assert_array_equal(one.masks, two.masks)
        np.testing.assert_array_equal(one.landmarks[primary], two.landmarks[primary])
        assert np.isfinite(one.landmarks[primary]).any()  # the comparison is not between two NaN arrays
    metrics = method.validate(network, batch)
    assert set(metrics) == {"loss", "dice", "tre_px"} and metrics["loss"] == loss
