"""The shared backbone: a MONAI UNet that gives ``features`` channels per pixel (paper 3.3).

Paper configuration: channels 64-128-256-512 (each level halves the resolution),
two residual units per level, instance norm with affine parameters, LeakyReLU and
convolutions without bias; 64 features per pixel (6.5 M parameters, see
docs/models.md). The widths are params, so the CPU demo runs narrower.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

NORM = ("instance", {"affine": True})
ACT = ("leakyrelu", {"negative_slope": 0.01, "inplace": True})


class BackboneParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[int]  # output channels per level; each level after the first halves the resolution
    num_res_units: int = Field(ge=0)  # residual units per level (paper: 2)
    features: int = Field(ge=1)  # channels per pixel of the output (paper: 64)

    @field_validator("channels")
    @classmethod
    def _at_least_two_levels(cls, value: list[int]) -> list[int]:
        if len(value) < 2 or min(value) < 1:
            raise ValueError(f"channels needs at least two positive widths, got {value}")
        return value


def build_backbone(params: BackboneParams) -> nn.Module:
    """A 2-D MONAI UNet from 1 input channel to ``params.features`` (its last layer is a plain convolution)."""
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=2,
        in_channels=1,
        out_channels=params.features,
        channels=tuple(params.channels),
        strides=(2,) * (len(params.channels) - 1),
        num_res_units=params.num_res_units,
        norm=NORM,
        act=ACT,
        bias=False,
    )


def size_divisor(params: BackboneParams) -> int:
    """Image height and width must be multiples of this (one halving per level after the first)."""
    return 2 ** (len(params.channels) - 1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
