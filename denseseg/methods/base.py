"""What a method is: a network, its training loss, and how it turns an image into masks and landmarks.

A method never loops over epochs and never touches a file: the shared
``denseseg.training.Trainer`` drives its ``step`` and ``validate``, and the
stages save and load its network. Every method predicts, for a batch of
images, the masks of all structures and the landmarks of the anatomy's full
landmark set (NaN where it cannot predict one), so one evaluation code scores
them all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel
from torch import nn

from denseseg.anatomy import Anatomy
from denseseg.shape.template import Template


@dataclass(frozen=True)
class LandmarkSpace:
    """The landmarks a model is trained on, and the uv target of every landmark of the anatomy.

    Attributes:
        anatomy: the anatomy (structure order = channel order).
        trained: (M,) indices into the full landmark list of the landmarks the cache holds
            (all of them, or an FPS subset).
        uv: (N, 2) template uv value of every landmark of the full set, in the cache's uv frame.
        structure: (N,) channel index of each landmark's structure.
        template: the cache's template (its ``uv_scale`` makes neighbour searches isotropic).
    """

    anatomy: Anatomy
    trained: np.ndarray
    uv: np.ndarray
    structure: np.ndarray
    template: Template

    @classmethod
    def from_table(cls, anatomy: Anatomy, landmark_uv: pd.DataFrame, trained, template: Template) -> LandmarkSpace:
        """From a uv cache's ``landmark_uv`` table (structure, index in the full flat order, u, v, used)."""
        flat = landmark_uv["index"].to_numpy(np.int64)
        if sorted(flat.tolist()) != list(range(anatomy.n_landmarks)):
            raise ValueError(
                f"landmark uv table does not cover the {anatomy.n_landmarks} {anatomy.name} landmarks once"
            )
        uv = np.zeros((anatomy.n_landmarks, 2), np.float32)
        uv[flat] = landmark_uv[["u", "v"]].to_numpy(np.float32)
        structure = np.repeat(np.arange(len(anatomy.structures)), list(anatomy.landmark_counts.values()))
        return cls(anatomy, np.asarray(trained, np.int64), uv, structure, template)

    @property
    def n_trained(self) -> int:
        return len(self.trained)

    def uv_scales(self) -> np.ndarray:
        return np.stack([self.template.uv_scale(s) for s in self.anatomy.structures])

    def expand(self, points: np.ndarray) -> np.ndarray:
        """(B, M, 2) predictions of the trained landmarks -> (B, N, 2) with NaN for the others."""
        out = np.full((points.shape[0], self.anatomy.n_landmarks, 2), np.nan, np.float32)
        out[:, self.trained] = points
        return out


@dataclass
class Prediction:
    """One image's prediction: masks (S, H, W) bool and landmarks per estimator, (N, 2) each (or none)."""

    masks: np.ndarray
    landmarks: dict[str, np.ndarray]


class Method(ABC):
    """Base class: a method's params, its network, its loss, its prediction.

    Args:
        params: the method's validated params (``Params``).
        space: the landmark space of the cache it trains on.
        pos_weight: (S,) positive weights of the structures' BCE, from the training masks.
    """

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]

    def __init__(self, params: BaseModel, space: LandmarkSpace, pos_weight: torch.Tensor):
        self.params = params
        self.space = space
        self.anatomy = space.anatomy
        self.pos_weight = pos_weight

    @property
    def n_structures(self) -> int:
        return len(self.anatomy.structures)

    def prepare(self, train_set: Sequence[dict]) -> None:
        """Learn what the network needs from the training items before it is built (a no-op by default).

        Called once by the train stage before ``build_network``; whatever it learns must end up in the
        network's state dict (a buffer), since a saved model is rebuilt without the training data.
        """
        return None

    @abstractmethod
    def build_network(self) -> nn.Module:
        """A freshly initialised network (the caller seeds torch first)."""

    @abstractmethod
    def step(self, network: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        """Training loss of one batch: ``loss`` plus its named terms."""

    @abstractmethod
    def predict(self, network: nn.Module, images: torch.Tensor) -> list[Prediction]:
        """Masks and landmarks of a batch of images (B, 1, H, W)."""

    @property
    def estimators(self) -> tuple[str, ...]:
        """Names of the landmark estimators ``predict`` returns; the first is the primary one."""
        return ("landmarks",)

    #: True when the method can locate landmarks it was never trained on (DenseSeg, through their uv values)
    locates_any_landmark: ClassVar[bool] = False

    def validation_outputs(self, network: nn.Module, batch: dict) -> tuple[float, list[Prediction]]:
        """The loss of a validation batch and its predictions (at least the primary estimator's).

        The default runs ``step`` and ``predict``: two forward passes. A method whose loss and
        prediction come from the same network outputs overrides it with one (same numbers, less time).
        """
        return float(self.step(network, batch)["loss"]), self.predict(network, batch["image"])

    def validate(self, network: nn.Module, batch: dict) -> dict[str, float]:
        """Validation metrics of one batch: loss, mean Dice and (when the batch has landmarks) TRE in px."""
        with torch.no_grad():
            loss, preds = self.validation_outputs(network, batch)
        masks = batch["masks"].detach().cpu().numpy() > 0.5
        dice, tre = [], []
        for b, pred in enumerate(preds):
            for s in range(self.n_structures):
                if masks[b, s].any():
                    inter = np.logical_and(pred.masks[s], masks[b, s]).sum()
                    dice.append(2.0 * inter / (pred.masks[s].sum() + masks[b, s].sum()))
            primary = pred.landmarks.get(self.estimators[0])
            if primary is not None:
                true = batch["landmarks"][b].detach().cpu().numpy()
                err = np.linalg.norm(primary[self.space.trained] - true, axis=1)
                # a landmark that cannot be found counts as far off, never as skipped
                tre.append(np.where(np.isfinite(err), err, float(max(masks.shape[-2:]))))
        out = {"loss": loss, "dice": float(np.mean(dice)) if dice else float("nan")}
        if tre:
            out["tre_px"] = float(np.nanmean(np.concatenate(tre)))
        return out


def polygon_masks(landmarks: np.ndarray, anatomy: Anatomy, height: int, width: int) -> np.ndarray:
    """Filled polygon of each structure's landmarks (they run along its contour): (S, H, W) bool.

    Structures with fewer than three finite landmarks give an empty mask.
    """
    from skimage.draw import polygon

    masks = np.zeros((len(anatomy.structures), height, width), bool)
    offsets = anatomy.landmark_offsets()
    for s, name in enumerate(anatomy.structures):
        pts = landmarks[offsets[name] : offsets[name] + anatomy.landmark_counts[name]]
        pts = pts[np.isfinite(pts).all(1)]
        if len(pts) >= 3:
            rr, cc = polygon(pts[:, 1], pts[:, 0], shape=(height, width))
            masks[s, rr, cc] = True
    return masks
