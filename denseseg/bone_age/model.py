"""A trained bone-age ensemble as one folder (``model.pt``), and the predictor built from it.

``model.pt`` is read with ``torch.load(weights_only=True)``: plain values and
tensors only (the anatomy's name, the working height and width the landmarks
are given in, the params with the bucket width, one state dict per member).
The members' logits are averaged with equal weight; the predicted age is the
centre of the most likely bucket of that mean.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from denseseg.anatomy import ANATOMIES, Anatomy
from denseseg.bone_age.buckets import AgeBuckets
from denseseg.bone_age.config import BoneAgeParams
from denseseg.bone_age.features import bone_inputs
from denseseg.bone_age.network import BoneAgeNet
from denseseg.io.atomic import atomic_file
from denseseg.training.device import resolve_device

FORMAT = "denseseg-boneage/1"
MODEL_FILE = "model.pt"


class BoneAgeModelError(ValueError):
    """A bone-age model folder that is missing, truncated or of another format."""


def ensemble_logits(member_logits: Tensor) -> Tensor:
    """(M, B, K) logits of M members -> (B, K), every member with weight 1 / M."""
    if member_logits.ndim != 3 or member_logits.shape[0] == 0:
        raise ValueError(f"member logits of shape {tuple(member_logits.shape)}: expected (M >= 1, B, K)")
    return member_logits.mean(0)


def build_network(anatomy: Anatomy, params: BoneAgeParams) -> BoneAgeNet:
    """One member's network (random weights from the global torch generator)."""
    buckets = AgeBuckets.covering(params.bucket_months, params.max_months)
    return BoneAgeNet(len(anatomy.structures), params.max_points, params.bone_hidden, params.head_hidden, buckets.count)


class BoneAgeModel:
    """Ages in months from landmarks, by an equal-weight ensemble of ``BoneAgeNet`` members.

    Args:
        anatomy: the anatomy the landmarks follow (flat order, 710 for the wrist).
        height: working image height in px (the landmarks' frame; also the coordinate scale).
        width: working image width in px.
        params: the network and bucket params the members were built with.
        members: the trained networks (put in eval mode here).
        info: plain JSON-able facts (training sources, target, best epochs).
    """

    def __init__(
        self,
        anatomy: Anatomy,
        height: int,
        width: int,
        params: BoneAgeParams,
        members: list[nn.Module],
        info: dict | None = None,
    ):
        if not members:
            raise ValueError("a bone-age model needs at least one member")
        self.anatomy, self.height, self.width, self.params = anatomy, int(height), int(width), params
        self.buckets = AgeBuckets.covering(params.bucket_months, params.max_months)
        self.members = [m.eval() for m in members]
        self.info = dict(info or {})
        self.device = next(members[0].parameters()).device

    def inputs(self, landmarks: np.ndarray) -> tuple[Tensor, Tensor]:
        """(points, mask) tensors of (B, N, 2) landmarks at the working resolution."""
        features = bone_inputs(landmarks, self.anatomy, self.params.max_points, float(self.height))
        return (
            torch.from_numpy(features.points).to(self.device),
            torch.from_numpy(features.mask).to(self.device),
        )

    def member_logits(self, landmarks: np.ndarray) -> Tensor:
        """(M, B, K) float32 logits of every member."""
        points, mask = self.inputs(landmarks)
        with torch.no_grad():
            return torch.stack([member(points, mask).float() for member in self.members])

    def logits(self, landmarks: np.ndarray) -> Tensor:
        """(B, K) equal-weight mean of the members' logits."""
        return ensemble_logits(self.member_logits(landmarks))

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        """(B, N, 2) landmarks (working px, NaN for a missing bone) -> (B,) ages in months.

        NaN for an image in which no bone is present (there is nothing to regress from).
        """
        landmarks = np.asarray(landmarks, np.float64)
        if landmarks.ndim != 3 or landmarks.shape[1:] != (self.anatomy.n_landmarks, 2):
            raise ValueError(
                f"landmarks of shape {landmarks.shape}: expected (B, {self.anatomy.n_landmarks}, 2) "
                f"at the working resolution {self.height} x {self.width}"
            )
        if len(landmarks) == 0:
            return np.zeros(0)
        months = self.buckets.decode(self.logits(landmarks)).cpu().numpy()
        _, mask = self.inputs(landmarks)
        months[~mask.any(-1).any(-1).cpu().numpy()] = np.nan
        return months

    def state(self) -> dict:
        """What ``model.pt`` holds (tensors and plain values)."""
        return {
            "format": FORMAT,
            "anatomy": self.anatomy.name,
            "height": self.height,
            "width": self.width,
            "bucket_months": self.params.bucket_months,
            "n_buckets": self.buckets.count,
            "params": self.params.model_dump(mode="json"),
            "members": [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in self.members],
            "info": self.info,
        }

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``folder/model.pt`` atomically; returns its path."""
        path = Path(folder) / MODEL_FILE
        with atomic_file(path) as tmp:
            torch.save(self.state(), tmp)
        return path

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, device: str = "cpu") -> BoneAgeModel:
        """Read ``folder/model.pt`` onto ``device`` (auto | cpu | cuda); a missing, truncated or foreign file
        is a ``BoneAgeModelError``."""
        path = Path(folder) / MODEL_FILE
        if not path.is_file():
            raise BoneAgeModelError(f"{path}: no bone-age model (did the boneage stage run?)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError ... for broken files
            first = str(err).splitlines()[0] if str(err) else ""
            raise BoneAgeModelError(
                f"{path}: unreadable bone-age model ({type(err).__name__}: {first}); re-run the boneage stage"
            ) from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise BoneAgeModelError(f"{path}: not a {FORMAT} file (format {found!r})")
        torch_device = resolve_device(device)
        try:
            anatomy = ANATOMIES[state["anatomy"]]
            params = BoneAgeParams(**state["params"])
            members = []
            for weights in state["members"]:
                network = build_network(anatomy, params)
                network.load_state_dict(weights)
                members.append(network.to(torch_device))
            return cls(anatomy, state["height"], state["width"], params, members, state["info"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise BoneAgeModelError(f"{path}: inconsistent bone-age model ({err})".replace("\n", " ")) from None
