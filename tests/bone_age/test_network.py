import numpy as np
import pytest
import torch

from denseseg.anatomy import WRIST
from denseseg.bone_age.features import bone_inputs
from denseseg.bone_age.model import build_network
from tests.bone_age.conftest import HEIGHT, params


def _inputs(template, n=4, seed=0):
    rng = np.random.default_rng(seed)
    landmarks = template[None] * rng.uniform(0.8, 1.2, (n, 1, 1)) + rng.normal(0, 0.5, (n, 710, 2))
    features = bone_inputs(landmarks, WRIST, 80, HEIGHT)
    return torch.from_numpy(features.points), torch.from_numpy(features.mask)


def test_parameter_count_matches_the_layer_shapes():
    network = build_network(WRIST, params())
    per_bone = (160 * 32 + 32) + 2 * 32 + (32 * 32 + 32) + 2 * 32 + (32 * 32 + 32) + 2 * 32  # Linear + BatchNorm
    head = (17 * 32 * 64 + 64) + (64 * 60 + 60)  # two fully connected layers, 60 buckets of 4 months
    assert sum(p.numel() for p in network.parameters()) == per_bone + head
    linears = [m for m in network.bone if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(160, 32), (32, 32), (32, 32)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in network.bone) == 3


def test_an_absent_bone_changes_nothing_through_the_masked_path(wrist_template):
    """Garbage (NaN, large values) in an absent bone's slots: the same logits in eval and in training mode."""
    torch.manual_seed(0)
    network = build_network(WRIST, params())
    points, mask = _inputs(wrist_template)
    mask[1, 4] = False  # the scaphoid of image 1 is absent
    clean = points.clone()
    clean[1, 4] = 0
    garbage = points.clone()
    garbage[1, 4] = 1e6
    garbage[1, 4, :3] = float("nan")
    for mode in (network.eval, network.train):
        mode()
        reference = network(clean, mask)
        state = {k: v.clone() for k, v in network.state_dict().items()}
        assert torch.equal(network(garbage, mask), reference)
        network.load_state_dict(state)
    # the test can fail: with the bone present, its values do reach the output
    network.eval()
    present = mask.clone()
    present[1, 4, :30] = True
    assert not torch.allclose(network(clean, present)[1], network(garbage.nan_to_num(0), present)[1])


def test_an_absent_bone_feeds_exact_zeros_to_the_head(wrist_template):
    torch.manual_seed(1)
    network = build_network(WRIST, params()).eval()
    points, mask = _inputs(wrist_template, n=2)
    mask[0, 7] = False
    with torch.no_grad():
        features = network.bone(points.reshape(2 * 17, 160)).reshape(2, 17, 32)
        features[0, 7] = 0
        expected = network.head(features.reshape(2, 17 * 32))
        assert torch.allclose(network(points, mask), expected, atol=1e-6)


def test_inputs_of_another_shape_are_refused():
    network = build_network(WRIST, params())
    with pytest.raises(ValueError, match="17 x 80"):
        network(torch.zeros(1, 17, 60, 2), torch.ones(1, 17, 60, dtype=torch.bool))
