"""A trained model applied to one new radiograph, with every result mapped back to the original pixels."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from denseseg.inference.predictor import ModelError, Predictor
from denseseg.methods.denseseg import DenseSeg
from denseseg.nets.denseseg_net import masked_uv
from denseseg.predict.params import Preprocessing
from denseseg.predict.points import ExtraPoints, read_points
from denseseg.predict.radiograph import NetworkInput, RadiographError, masks_to_original, network_input
from denseseg.preprocessing.working_frame import WorkingFrame
from denseseg.uv.extraction import locate


@dataclass(frozen=True)
class RadiographPrediction:
    """One radiograph's prediction; coordinates are (x, y) = (column, row), NaN where not predicted.

    Attributes:
        frame: original <-> working pixels.
        input: the network's input.
        estimator: the landmark estimator used.
        working_masks: (S, H, W) bool, the method's masks at the working resolution (left-hand view).
        working_landmarks: (N, 2) the full landmark set in working pixels.
        masks: (S, H0, W0) bool at the original pixels, in the original orientation.
        landmarks: (N, 2) in original pixels.
        points: (M, 2) the extra points in original pixels, or None.
        working_points: (M, 2) the same in working pixels, or None.
    """

    frame: WorkingFrame
    input: NetworkInput
    estimator: str
    working_masks: np.ndarray
    working_landmarks: np.ndarray
    masks: np.ndarray
    landmarks: np.ndarray
    points: np.ndarray | None = None
    working_points: np.ndarray | None = None


class RadiographPredictor:
    """A model folder plus the preprocessing its training images had.

    Args:
        predictor: the trained model (``denseseg.inference.Predictor``).
        preprocessing: working size and intensity scale of its training images.
    """

    def __init__(self, predictor: Predictor, preprocessing: Preprocessing):
        self.predictor, self.preprocessing = predictor, preprocessing
        self.method = predictor.method
        self.anatomy = self.method.anatomy

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, preprocessing: Preprocessing, device: str = "auto"
    ) -> RadiographPredictor:
        try:
            predictor = Predictor.from_folder(folder, device)
        except (ValueError, KeyError) as err:  # ModelError, a bad device, an unknown anatomy or method
            raise ModelError(str(err).replace("\n", " ")) from None
        return cls(predictor, preprocessing)

    @property
    def info(self) -> dict:
        return self.predictor.info

    @property
    def estimators(self) -> tuple[str, ...]:
        return self.method.estimators

    @property
    def locates_points(self) -> bool:
        """Whether the model predicts uv maps, in which any template point can be located."""
        return isinstance(self.method, DenseSeg)

    def _cartesian(self) -> bool:
        """The model's landmark uv are the template's cartesian uv (``Template.to_uv``), as in cartesian caches."""
        space = self.method.space
        return bool(np.allclose(space.uv, space.template.flat_uv(), atol=1e-5))

    def read_points(self, path: str | os.PathLike) -> ExtraPoints:
        """A points file checked against this model (DenseSeg; template coordinates need cartesian uv)."""
        if not self.locates_points:
            raise RadiographError(
                f"{path}: the model is {self.method.name}, which predicts no uv maps; only DenseSeg models "
                "locate extra points"
            )
        points = read_points(path, self.method.space.template)
        if points.given == "xy" and not self._cartesian():
            raise RadiographError(f"{path}: the model's uv maps are not cartesian; give the points as u,v")
        return points

    def predict(
        self,
        pixels: np.ndarray,
        side: str,
        estimator: str | None = None,
        points: ExtraPoints | None = None,
        source: str = "image",
    ) -> RadiographPrediction:
        """Predict one radiograph.

        Args:
            pixels: uint16 (H0, W0) original image in the 16-bit range (``read_radiograph``).
            side: L or R; a right hand is mirrored to a left one for the network and back for the outputs.
            estimator: landmark estimator name (default: the method's primary one).
            points: extra template points to locate (DenseSeg models only).
            source: the image's name for messages.
        """
        estimator = estimator or self.estimators[0]
        if estimator not in self.estimators:
            raise ValueError(f"unknown estimator {estimator!r}; this model has {', '.join(self.estimators)}")
        if side not in ("L", "R"):
            raise ValueError(f"side must be L or R, got {side!r}")
        inp = network_input(pixels, side == "R", self.preprocessing, source)
        images = torch.from_numpy(inp.image[None, None].copy())
        pred = self.predictor.predict(images)[0]
        working = pred.landmarks[estimator].astype(np.float64)
        found = found_working = None
        if points is not None and len(points):
            found_working = self.locate(images, points, estimator)[0]
            found = inp.frame.to_original(found_working)
        return RadiographPrediction(
            frame=inp.frame,
            input=inp,
            estimator=estimator,
            working_masks=pred.masks,
            working_landmarks=working,
            masks=masks_to_original(pred.masks, inp.frame),
            landmarks=inp.frame.to_original(working),
            points=found,
            working_points=found_working,
        )

    def locate(self, images: torch.Tensor, points: ExtraPoints, estimator: str) -> np.ndarray:
        """(B, M, 2) working-pixel positions of extra points in the predicted uv maps of ``images`` (B, 1, H, W).

        The same maps, masks, estimator and neighbour scaling as the model's own
        landmarks (``DenseSeg.predict``), so a template landmark given as a point
        lands where the model puts that landmark.
        """
        if not self.locates_points:
            raise RadiographError(f"{points.source}: the model is {self.method.name}; only DenseSeg locates points")
        params = self.method.params
        with torch.no_grad():
            seg, uv = self.predictor.network(images.to(self.predictor.device))
            probs = torch.sigmoid(seg.float())
            uv = masked_uv(uv.float(), probs, params.threshold).cpu().numpy()
        masks = (probs > params.threshold).cpu().numpy()
        extraction = params.estimators[estimator].extraction()
        template = self.method.space.template
        structures = np.asarray(points.structures)
        out = np.full((len(images), len(points), 2), np.nan)
        for b in range(len(images)):
            for name in dict.fromkeys(points.structures):
                rows = np.flatnonzero(structures == name)
                s = self.anatomy.index(name)
                out[b, rows] = locate(
                    uv[b, s], points.uv[rows], masks[b, s], extraction, uv_scale=template.uv_scale(name)
                )
        return out
