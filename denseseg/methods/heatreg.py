"""Heatmap regression (paper 3.5, eq. 5): one Gaussian heatmap per landmark, squared L2.

The same backbone as DenseSeg with a 1x1 convolution to one map per trained
landmark. Landmarks are decoded by ``decoder`` (``subpixel``: a second-order
refinement around the peak, the default; ``argmax``: the reference's plain
argmax). Its segmentation is the filled polygon of its predicted landmarks (the
landmarks run along each structure's contour), as in the paper. Trained on an
FPS subset it predicts only those landmarks; the others stay NaN.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict

from denseseg.losses.heatmap import HeatmapParams, heatmap_loss_from_features
from denseseg.methods.base import Method, Prediction, polygon_masks
from denseseg.nets.backbone import BackboneParams
from denseseg.nets.heatmap_decode import decode_argmax, decode_subpixel
from denseseg.nets.heatmap_net import HeatmapNet

DECODERS = {"subpixel": decode_subpixel, "argmax": decode_argmax}


class HeatRegParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backbone: BackboneParams
    heatmap: HeatmapParams
    decoder: Literal["subpixel", "argmax"]


class HeatReg(Method):
    name = "heatreg"
    Params = HeatRegParams

    @property
    def estimators(self) -> tuple[str, ...]:
        return (self.params.decoder,)

    def build_network(self) -> HeatmapNet:
        return HeatmapNet(self.params.backbone, self.space.n_trained)

    def step(self, network, batch):
        return {"loss": self._loss(network, network.features(batch["image"]), batch)}

    def _loss(self, network, features, batch):
        # the same squared L2 as heatmap_loss(network(image), ...), in closed form through the 1x1 head:
        # the (B, N, H, W) maps (710 of them on the wrist) are never built
        head = network.head
        return heatmap_loss_from_features(features, head.weight, head.bias, batch["landmarks"], self.params.heatmap)

    def predict(self, network, images):
        with torch.no_grad():
            heatmaps = network(images)
        return self._decode(heatmaps, images.shape[-2:])

    def validation_outputs(self, network, batch):
        """One backbone pass for the loss and the heatmaps."""
        features = network.features(batch["image"])
        loss = float(self._loss(network, features, batch))
        return loss, self._decode(network.head(features), batch["image"].shape[-2:])

    def _decode(self, heatmaps, size) -> list[Prediction]:
        points = DECODERS[self.params.decoder](heatmaps.float()).cpu().numpy()
        full = self.space.expand(points)
        height, width = size
        return [
            Prediction(polygon_masks(full[b], self.anatomy, height, width), {self.params.decoder: full[b]})
            for b in range(len(full))
        ]
