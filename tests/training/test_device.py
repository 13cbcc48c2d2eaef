"""Device helpers: one code path, with autocast and channels_last only on CUDA."""

from __future__ import annotations

import pytest
import torch

from denseseg.training.device import autocast, resolve_device, to_device


def test_auto_picks_cuda_only_when_available():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_an_unknown_or_unavailable_device_is_refused():
    with pytest.raises(ValueError, match="'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_autocast_on_the_cpu_changes_nothing():
    a = torch.rand(3, 3, generator=torch.Generator().manual_seed(0))
    with autocast(torch.device("cpu")):
        product = a @ a
    assert product.dtype == torch.float32 and torch.equal(product, a @ a)


def test_to_device_moves_tensors_makes_images_channels_last_and_keeps_names():
    batch = {"item": ["a", "b"], "image": torch.rand(2, 3, 4, 5), "landmarks": torch.rand(2, 7, 2)}
    moved = to_device(batch, torch.device("cpu"), channels_last=True)
    assert moved["item"] == ["a", "b"]
    assert moved["image"].is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(moved["image"], batch["image"]) and torch.equal(moved["landmarks"], batch["landmarks"])
    assert to_device(batch, torch.device("cpu"), channels_last=False)["image"].is_contiguous()
