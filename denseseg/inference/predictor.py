"""A trained model as one folder, and the predictor built from it (nnU-Net's ``nnUNetPredictor`` idea).

``model.pt`` holds the best weights and everything needed to predict without
the training data: the method and its params, the anatomy, the trained
landmark indices, the uv value of every landmark of the anatomy and the
template. It is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel

from denseseg.anatomy import ANATOMIES
from denseseg.io.atomic import atomic_file
from denseseg.methods.base import LandmarkSpace, Method, Prediction
from denseseg.methods.registry import method_class
from denseseg.shape.template import Template
from denseseg.training.device import resolve_device

FORMAT = "denseseg-model/1"
MODEL_FILE = "model.pt"


class ModelError(ValueError):
    """A model folder that is missing, truncated or of another format."""


def save_model(
    folder: str | os.PathLike,
    method: str,
    params: BaseModel,
    space: LandmarkSpace,
    network: torch.nn.Module,
    pos_weight: torch.Tensor,
    info: dict,
) -> Path:
    """Write ``folder/model.pt`` atomically.

    Args:
        folder: the model folder (created).
        method: the method's registry name.
        params: the method's validated params.
        space: the landmark space it was trained on.
        network: the network with the weights to keep.
        pos_weight: the BCE positive weights (kept so the loss can be evaluated again).
        info: plain JSON-able facts (run name, dataset, best epoch).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "format": FORMAT,
        "method": method,
        "params": params.model_dump(mode="json"),
        "anatomy": space.anatomy.name,
        "trained": torch.from_numpy(space.trained),
        "landmark_uv": torch.from_numpy(space.uv),
        "template": space.template.to_dict(),
        "pos_weight": pos_weight.detach().cpu().float(),
        "network": {k: v.detach().cpu() for k, v in network.state_dict().items()},
        "info": info,
    }
    path = folder / MODEL_FILE
    with atomic_file(path) as tmp:
        torch.save(state, tmp)
    return path


class Predictor:
    """Masks and landmarks of new images from a trained model folder.

    Args:
        method: the method (its params and landmark space).
        network: its network with the trained weights, in eval mode.
        device: where it runs.
        info: what ``save_model`` recorded.
    """

    def __init__(self, method: Method, network: torch.nn.Module, device: torch.device, info: dict):
        self.method, self.network, self.device, self.info = method, network, device, info
        self._lock = threading.Lock()  # one forward pass at a time when shards share the predictor (threads runner)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, device: str = "auto") -> Predictor:
        path = Path(folder) / MODEL_FILE
        if not path.exists():
            raise ModelError(f"{path}: no trained model (did `train` run for this model?)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated or not a torch file
            raise ModelError(
                f"{path}: unreadable model file ({type(err).__name__}: {err}); re-run its train stage"
            ) from None
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ModelError(f"{path}: not a {FORMAT} file")
        anatomy = ANATOMIES[state["anatomy"]]
        template = Template.from_dict(state["template"])
        uv = state["landmark_uv"].numpy()
        structure = np.repeat(np.arange(len(anatomy.structures)), list(anatomy.landmark_counts.values()))
        space = LandmarkSpace(anatomy, state["trained"].numpy(), uv, structure, template)
        method_cls = method_class(state["method"])
        method = method_cls(method_cls.Params(**state["params"]), space, state["pos_weight"])
        network = method.build_network()
        try:
            network.load_state_dict(state["network"])
        except RuntimeError as err:
            raise ModelError(
                f"{path}: weights do not fit the {state['method']} network ({err})".replace("\n", " ")
            ) from None
        torch_device = resolve_device(device)
        network.to(torch_device).eval()
        return cls(method, network, torch_device, state["info"])

    def predict(self, images: torch.Tensor) -> list[Prediction]:
        """Images (B, 1, H, W) in [0, 1] at the model's working resolution."""
        with self._lock:
            return self.method.predict(self.network, images.to(self.device))
