"""Tiny untrained wrist models in the real model.pt format, and a project folder whose params.yaml fits them.

Untrained weights are enough for the command's contract (files, shapes,
coordinates) and for exact equalities (an extra point vs the model's own
landmark); the seg head's bias is raised so every structure has a mask and
every landmark is located somewhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from denseseg.anatomy import WRIST
from denseseg.inference.predictor import save_model
from denseseg.methods.base import LandmarkSpace
from denseseg.methods.registry import method_class
from denseseg.shape.template import Template
from tests.conftest import PROJECT

HEIGHT, WIDTH = 96, 56  # the tests' working size (params.yaml ingest.height / width)
TINY_NET = {"channels": [4, 8], "num_res_units": 0, "features": 4}


def wrist_template(height: int = HEIGHT, width: int = WIDTH) -> Template:
    """Each bone an ellipse of its landmark count, on a 5 x 4 grid over the working frame."""
    points = {}
    for s, (name, n) in enumerate(WRIST.landmark_counts.items()):
        row, col = divmod(s, 4)
        centre = np.array([(col + 0.5) * width / 4, (row + 0.5) * height / 5])
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        radius = np.array([width / 10, height / 13]) * (1 + 0.05 * s)
        points[name] = centre + radius * np.stack([np.cos(t), np.sin(t)], 1)
    return Template("wrist", points, False, {name: 10 for name in points})


def write_model(
    folder: Path,
    method: str = "denseseg",
    trained: np.ndarray | None = None,
    uv: np.ndarray | None = None,
    seed: int = 0,
) -> Path:
    """An untrained ``method`` model (denseseg | heatreg) of the wrist in ``folder``; returns the folder.

    ``trained``: the landmark indices it predicts (default all); ``uv``: its landmark uv values (default the
    template's cartesian uv; anything else stands for a model trained on polar maps).
    """
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())["train"]["methods"][method]
    params["backbone"] = dict(TINY_NET)
    if method == "heatreg":
        params["heatmap"]["sigma"] = 2.0
    cls = method_class(method)
    template = wrist_template()
    trained = np.arange(WRIST.n_landmarks) if trained is None else np.asarray(trained)
    structure = np.repeat(np.arange(len(WRIST.structures)), list(WRIST.landmark_counts.values()))
    uv = template.flat_uv() if uv is None else uv
    space = LandmarkSpace(WRIST, trained, np.asarray(uv, np.float32), structure, template)
    pos_weight = torch.ones(len(WRIST.structures))
    method_obj = cls(cls.Params(**params), space, pos_weight)
    torch.manual_seed(seed)
    network = method_obj.build_network()
    if method == "denseseg":
        with torch.no_grad():
            network.seg_head[-1].bias.fill_(6.0)  # every structure everywhere: every landmark is found
    info = {"run": f"test-{method}", "dataset": "wrist", "evaluate_on": "wrist", "best_epoch": 1}
    save_model(folder, method, method_obj.Params(**params), space, network, pos_weight, info)
    return folder


def write_project(root: Path, **predict) -> Path:
    """A project folder: the real params.yaml at the tests' working size (``predict`` keys updated)."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["ingest"].update({"height": HEIGHT, "width": WIDTH})
    params["predict"].update({"device": "cpu", "threads": 1, **predict})
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root
