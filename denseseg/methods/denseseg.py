"""DenseSeg (paper 2.1.3, 3.3): joint segmentation and uv mapping; landmarks read back from the uv maps.

The network predicts per structure a mask logit and a uv map; at inference the
uv map of a structure is kept only inside its predicted mask (``masked_uv``)
and every landmark of the anatomy, trained on or not, is located by its
template uv value (``denseseg.uv.extraction``). Two estimators are returned:
the paper's softmin (eq. 3, K = 5) and the project's local affine fit, whose
representation floor is about 100x lower on exact maps (docs/uvmaps.md).
``loss.dense: false`` is the paper's "sparse" ablation (landmark sampling only).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from denseseg.losses.denseseg import DenseSegLossParams, denseseg_loss
from denseseg.methods.base import Method, Prediction
from denseseg.nets.backbone import BackboneParams
from denseseg.nets.denseseg_net import DenseSegNet, masked_uv
from denseseg.uv.extraction import ExtractionParams, extract_landmarks


class EstimatorParams(BaseModel):
    """One landmark estimator over the predicted uv maps (see ``denseseg.uv.extraction``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["softmin", "affine"]
    k: int = Field(ge=1)
    k_affine: int = Field(ge=3)
    temperature: float = Field(gt=0)

    def extraction(self) -> ExtractionParams:
        return ExtractionParams(k=self.k, k_affine=self.k_affine, method=self.method, temperature=self.temperature)


class DenseSegParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    backbone: BackboneParams
    loss: DenseSegLossParams
    threshold: float = Field(gt=0, lt=1)  # sigmoid probability for a structure's mask
    estimators: dict[str, EstimatorParams]  # name -> estimator; the first is the primary one


class DenseSeg(Method):
    name = "denseseg"
    Params = DenseSegParams
    locates_any_landmark = True

    def __init__(self, params: DenseSegParams, space, pos_weight):
        super().__init__(params, space, pos_weight)
        if not params.estimators:
            raise ValueError("denseseg.estimators: name at least one landmark estimator")
        self._uv = torch.from_numpy(space.uv[space.trained])
        self._structure = torch.from_numpy(space.structure[space.trained])

    @property
    def estimators(self) -> tuple[str, ...]:
        return tuple(self.params.estimators)

    def build_network(self) -> DenseSegNet:
        return DenseSegNet(self.params.backbone, self.n_structures)

    def step(self, network, batch):
        return self._loss(*network(batch["image"]), batch)

    def _loss(self, seg, uv, batch):
        device = seg.device
        return denseseg_loss(
            seg,
            uv,
            batch,
            self._uv.to(device),
            self._structure.to(device),
            self.pos_weight.to(device),
            self.params.loss,
        )

    def predict(self, network, images):
        with torch.no_grad():
            seg, uv = network(images)
        return self._decode(seg, uv, self.params.estimators)

    def validation_outputs(self, network, batch):
        """One forward pass for the loss and the predictions; only the primary estimator is run."""
        seg, uv = network(batch["image"])
        primary = {name: self.params.estimators[name] for name in self.estimators[:1]}
        return float(self._loss(seg, uv, batch)["loss"]), self._decode(seg, uv, primary)

    def _decode(self, seg, uv, estimators: dict[str, EstimatorParams]) -> list[Prediction]:
        """Masks and, per estimator, the landmarks from the network's outputs."""
        with torch.no_grad():
            probs = torch.sigmoid(seg.float())
            uv = masked_uv(uv.float(), probs, self.params.threshold)
        masks = (probs > self.params.threshold).cpu().numpy()
        uv = uv.cpu().numpy()
        counts = list(self.anatomy.landmark_counts.values())
        scales = self.space.uv_scales()
        found = {
            name: extract_landmarks(uv, self.space.uv, counts, masks, est.extraction(), scales).points
            for name, est in estimators.items()
        }
        return [
            Prediction(masks[b], {name: found[name][b].astype(np.float32) for name in found}) for b in range(len(masks))
        ]
