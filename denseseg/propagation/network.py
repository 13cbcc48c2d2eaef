"""The segmentation network of label propagation: ``denseseg.nets.unet``, one logit per bone.

Bones overlap in a radiograph, so the outputs are independent sigmoids (multi-label),
not a softmax. The widths are a parameter so that the demo trains on a CPU in minutes
and the full configuration on a GPU.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from denseseg.nets.unet import build_unet, unet_divisor


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


def build_network(n_outputs: int, params: NetworkParams) -> nn.Module:
    """The UNet from one input channel (the radiograph) to ``n_outputs`` bone logits."""
    return build_unet(n_outputs, params.channels, params.num_res_units, params.dropout)


def divisor(params: NetworkParams) -> int:
    """The factor image sides must be a multiple of (the trainer pads them)."""
    return unet_divisor(params.channels)
