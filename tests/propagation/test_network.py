"""The propagation network: one logit per bone, any input size padded to its divisor."""

from __future__ import annotations

import pydantic
import pytest
import torch

from denseseg.nets.unet import build_unet
from denseseg.propagation.network import NetworkParams, build_network, divisor


def test_network_has_one_output_per_bone():
    torch.manual_seed(0)
    params = NetworkParams(channels=(4, 8, 16), num_res_units=1, dropout=0.0)
    out = build_network(17, params)(torch.zeros(2, 1, 48, 64))
    assert out.shape == (2, 17, 48, 64)
    assert divisor(params) == 4


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(pydantic.ValidationError, match="channels"):
        NetworkParams(channels=(8,), num_res_units=0, dropout=0.0)
    with pytest.raises(ValueError, match="channels"):
        build_unet(17, channels=(8,), num_res_units=0, dropout=0.0)
    with pytest.raises(ValueError, match="n_outputs"):
        build_unet(0, (4, 8), 0, 0.0)
