"""A plain residual UNet with one logit per structure: label propagation's segmentation network.

A MONAI ``UNet`` with instance norm (no affine), PReLU and biased convolutions, its
last layer a convolution to ``n_outputs`` logits. Why not the DenseSeg backbone
(``backbone.py``: affine instance norm, LeakyReLU, no bias) with a 1x1 head: on the
toy case of ``tests/propagation/test_rounds.py`` that network left one of the two
structures over-segmented (Dice 0.15) for two of four seeds after 20 epochs, where
this one reached 0.93-0.98 in the same loop; the propagation stage's defaults were
measured with this one.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def build_unet(n_outputs: int, channels: Sequence[int], num_res_units: int, dropout: float) -> nn.Module:
    """A 2-D residual UNet, one input channel (the radiograph), ``n_outputs`` logits.

    Every level but the deepest halves the resolution, so inputs must be a
    multiple of ``unet_divisor(channels)`` (callers pad them).
    """
    from monai.networks.nets import UNet

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


def unet_divisor(channels: Sequence[int]) -> int:
    """The factor image sides must be a multiple of for ``build_unet(channels=...)``."""
    return 2 ** (len(tuple(channels)) - 1)
