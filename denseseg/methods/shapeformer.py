"""ShapeFormer (paper 3.5, the authors' earlier work [9]): regress the displacement of an initial shape.

The network (``denseseg.nets.shapeformer``) moves an initial shape of the
trained landmarks onto the image. Initial shape: in training the landmarks of
another training case, as in the paper ("randomly picked from another training
sample"): the batch's landmarks rolled by one (the loop shuffles the batches
with its seeded generator, so the pick is random and replayable); a batch of
one and every evaluation pass (validation, inference) use the mean shape of the
training split instead, stored in the network as a buffer, so a saved model
predicts without the training data and the same image always gives the same
landmarks. ``prepare`` computes that mean shape from the training items.

Loss: the mean squared error of the predicted landmarks in the normalised
frame of ``grid_sample`` ([-1, 1] across the image), over the trained
landmarks and both coordinates: the squared L2 distance of [9]'s shape
regression, made independent of the image size so one learning rate fits the
demo's 128 x 128 and the paper's 256 x 256. Segmentation is the filled polygon
of each structure's predicted landmarks (``polygon_masks``), as for HeatReg.
Trained on an FPS subset it predicts those landmarks only; the others are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from denseseg.methods.base import Method, Prediction, polygon_masks
from denseseg.nets.shapeformer import ShapeFormerNet, ShapeFormerNetParams, to_normalised, to_pixels


class ShapeFormerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    network: ShapeFormerNetParams


def mean_shape(items: Sequence[dict]) -> torch.Tensor:
    """Mean (M, 2) of the items' landmarks in the normalised frame (streamed; NaN landmarks skipped).

    Raises ValueError when there are no items or a landmark is never finite.
    """
    total, count = None, None
    for item in items:
        height, width = item["image"].shape[-2:]
        points = to_normalised(torch.as_tensor(item["landmarks"], dtype=torch.float64), height, width)
        finite = torch.isfinite(points)
        values = torch.where(finite, points, torch.zeros_like(points))
        total = values if total is None else total + values
        count = finite.double() if count is None else count + finite.double()
    if total is None:
        raise ValueError("no training items: the mean shape cannot be computed")
    if (count == 0).any():
        missing = sorted(set(torch.nonzero(count == 0)[:, 0].tolist()))
        raise ValueError(f"landmarks {missing[:10]} are missing in every training item: no mean shape")
    return (total / count).float()


class ShapeFormer(Method):
    name = "shapeformer"
    Params = ShapeFormerParams

    def __init__(self, params: ShapeFormerParams, space, pos_weight):
        super().__init__(params, space, pos_weight)
        self.initial_shape: torch.Tensor | None = None

    def prepare(self, train_set: Sequence[dict]) -> None:
        """The mean training shape, the initial shape of every evaluation pass."""
        shape = mean_shape(train_set)
        if shape.shape[0] != self.space.n_trained:
            raise ValueError(f"training items hold {shape.shape[0]} landmarks, the space {self.space.n_trained}")
        self.initial_shape = shape

    def build_network(self) -> ShapeFormerNet:
        """The network; its initial shape is the prepared mean shape (zeros until ``prepare`` or a state dict)."""
        network = ShapeFormerNet(self.params.network, self.space.n_trained)
        if self.initial_shape is not None:
            network.set_initial_shape(self.initial_shape)
        return network

    def step(self, network, batch):
        images, target = batch["image"], batch["landmarks"].float()
        height, width = images.shape[-2:]
        initial = None  # the stored mean shape
        if network.training and len(target) > 1:
            initial = torch.roll(target, shifts=1, dims=0)  # another case's shape
            # a landmark missing in the other case starts from the mean shape
            fallback = network.initial_shape.float()[None].expand_as(initial)
            initial = torch.where(torch.isfinite(initial), initial, to_pixels(fallback, height, width))
        predicted = network(images, initial)
        finite = torch.isfinite(target)
        if not finite.any():
            raise ValueError(f"batch {batch.get('item')}: no finite landmark to train on")
        error = to_normalised(predicted.float(), height, width) - to_normalised(target, height, width)
        loss = (error[finite] ** 2).mean()
        return {"loss": loss}

    def predict(self, network, images):
        with torch.no_grad():
            points = network(images).float().cpu().numpy()
        full = self.space.expand(points.astype(np.float32))
        height, width = images.shape[-2:]
        return [
            Prediction(polygon_masks(full[b], self.anatomy, height, width), {"landmarks": full[b]})
            for b in range(len(full))
        ]
