import numpy as np
import pytest
import torch
from torch import nn

from denseseg.anatomy import WRIST
from denseseg.bone_age.model import BoneAgeModel, BoneAgeModelError, build_network, ensemble_logits
from tests.bone_age.conftest import HEIGHT, WIDTH, params


class _Constant(nn.Module):
    """A member that always gives the same logits (to test how members are combined)."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", torch.tensor(logits, dtype=torch.float32))
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, points, mask):
        return self.logits.expand(points.shape[0], -1)


def test_equal_weights_are_the_mean_of_member_logits_and_differ_from_5_4_3_2_1():
    count = 60
    first, others = torch.full((count,), -1.0), torch.full((count,), -1.0)
    first[0], others[1] = 10.0, 4.0  # member 1 sure of bucket 0; members 2-5 of bucket 1
    members = [_Constant(first.tolist())] + [_Constant(others.tolist()) for _ in range(4)]
    model = BoneAgeModel(WRIST, HEIGHT, WIDTH, params(members=5), members)
    landmarks = np.zeros((1, 710, 2))
    stacked = torch.stack([first, others, others, others, others])[:, None]
    assert torch.equal(model.logits(landmarks), stacked.mean(0))
    assert model.predict(landmarks).tolist() == [6.0]  # bucket 1, [4, 8): its centre
    weights = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0])[:, None, None] / 15  # the published notebook's accumulation
    assert int((stacked * weights).sum(0).argmax()) == 0  # would have said bucket 0 (2 months)


def test_model_logits_are_the_mean_of_the_trained_networks(wrist_template):
    torch.manual_seed(0)
    members = [build_network(WRIST, params()).eval() for _ in range(3)]
    model = BoneAgeModel(WRIST, HEIGHT, WIDTH, params(members=3), members)
    landmarks = np.stack([wrist_template, wrist_template * 1.1])
    points, mask = model.inputs(landmarks)
    with torch.no_grad():
        each = torch.stack([m(points, mask) for m in members])
    assert torch.allclose(model.logits(landmarks), each.mean(0))
    assert torch.equal(ensemble_logits(each), each.mean(0))


def test_an_image_without_any_bone_is_nan_and_one_without_a_bone_still_gets_an_age(wrist_template):
    torch.manual_seed(0)
    model = BoneAgeModel(WRIST, HEIGHT, WIDTH, params(), [build_network(WRIST, params())])
    landmarks = np.stack([wrist_template] * 3)
    landmarks[1, :80] = np.nan  # no radius
    landmarks[2] = np.nan
    months = model.predict(landmarks)
    assert np.isfinite(months[:2]).all() and np.isnan(months[2])
    with pytest.raises(ValueError, match="working resolution 192 x 112"):
        model.predict(landmarks[:, :700])


def test_save_load_round_trip_and_a_truncated_file_is_a_clear_error(tmp_path, wrist_template):
    torch.manual_seed(0)
    members = [build_network(WRIST, params()).eval() for _ in range(2)]
    model = BoneAgeModel(WRIST, HEIGHT, WIDTH, params(), members, {"source": "registration"})
    path = model.save(tmp_path / "boneage")
    state = torch.load(path, weights_only=True)
    assert (state["format"], state["anatomy"], state["height"], state["width"]) == (
        "denseseg-boneage/1",
        "wrist",
        192,
        112,
    )
    assert state["bucket_months"] == 4 and len(state["members"]) == 2 and state["info"] == {"source": "registration"}
    loaded = BoneAgeModel.from_folder(tmp_path / "boneage")
    landmarks = np.stack([wrist_template * s for s in (0.8, 1.0, 1.2)])
    assert torch.equal(loaded.logits(landmarks), model.logits(landmarks))
    assert np.array_equal(loaded.predict(landmarks), model.predict(landmarks))

    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(BoneAgeModelError, match="model.pt: unreadable bone-age model"):
        BoneAgeModel.from_folder(tmp_path / "boneage")
    assert issubclass(BoneAgeModelError, ValueError)
    with pytest.raises(BoneAgeModelError, match="no bone-age model"):
        BoneAgeModel.from_folder(tmp_path / "elsewhere")
    torch.save({"format": "denseseg-model/1"}, path)
    with pytest.raises(BoneAgeModelError, match="not a denseseg-boneage/1 file"):
        BoneAgeModel.from_folder(tmp_path / "boneage")
