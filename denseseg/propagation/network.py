"""The segmentation network of label propagation and where it runs.

A MONAI residual UNet with one sigmoid output per bone: bones overlap in a
radiograph, so the outputs are independent (multi-label), not a softmax. The
channel widths are a parameter so that the demo trains on a CPU in minutes and
the full configuration on a GPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from monai.networks.nets import UNet
from pydantic import BaseModel, ConfigDict, Field


class NetworkParams(BaseModel):
    """The propagation UNet (``propagate.network`` in ``params.yaml``).

    Args:
        channels: widths per level; each level but the deepest halves the resolution.
        num_res_units: residual units per level.
        dropout: dropout probability.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: tuple[int, ...] = Field(min_length=2)
    num_res_units: int = Field(ge=0)
    dropout: float = Field(ge=0, lt=1)


def build_unet(n_outputs: int, channels: Sequence[int], num_res_units: int, dropout: float) -> UNet:
    """A 2-D residual UNet, one input channel (the radiograph), ``n_outputs`` logits.

    Every level but the deepest halves the resolution, so inputs must be a
    multiple of ``divisor(channels)`` (the trainer pads them).
    """
    channels = tuple(int(c) for c in channels)
    if len(channels) < 2 or min(channels) < 1:
        raise ValueError(f"channels needs at least two positive widths, got {channels}")
    if n_outputs < 1:
        raise ValueError(f"n_outputs must be positive, got {n_outputs}")
    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=int(n_outputs),
        channels=channels,
        strides=(2,) * (len(channels) - 1),
        num_res_units=int(num_res_units),
        dropout=float(dropout),
        norm="INSTANCE",
    )


def divisor(channels: Sequence[int]) -> int:
    """The factor image sides must be a multiple of for ``build_unet(channels=...)``."""
    return 2 ** (len(tuple(channels)) - 1)


def pick_device(spec: str = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; ``cpu``/``cuda[:i]`` as asked."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but no CUDA GPU is available")
    return device


def to_device(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """Move the model; channels_last memory layout on the GPU (faster convolutions)."""
    model = model.to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model


def autocast(device: torch.device):
    """bf16 autocast on the GPU; full precision on the CPU (bf16 is slow there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A (N, C, H, W) batch on ``device``, channels_last on the GPU."""
    x = x.to(device, non_blocking=True)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x
