"""The propagation network: one logit per bone, any input size padded to its divisor."""

from __future__ import annotations

import pytest
import torch

from denseseg.propagation.network import autocast, build_unet, divisor, pick_device


def test_unet_has_one_output_per_bone():
    torch.manual_seed(0)
    net = build_unet(17, channels=(4, 8, 16), num_res_units=1, dropout=0.0)
    out = net(torch.zeros(2, 1, 48, 64))
    assert out.shape == (2, 17, 48, 64)
    assert divisor((4, 8, 16)) == 4


def test_bad_configuration_is_a_clear_error():
    with pytest.raises(ValueError, match="channels"):
        build_unet(17, channels=(8,), num_res_units=0, dropout=0.0)
    with pytest.raises(ValueError, match="n_outputs"):
        build_unet(0, (4, 8), 0, 0.0)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA"):
            pick_device("cuda")
    with autocast(torch.device("cpu")):
        pass
