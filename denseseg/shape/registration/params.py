"""Parameters of the per-bone registration (``register.registration`` in ``params.yaml``).

Every field is required: ``params.yaml`` is the one source of these values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RegistrationParams(BaseModel):
    """How one reference outline is carried onto one image's outline (``register_bone``).

    Args:
        global_prealign: start each bone from the image-level pose (Umeyama on the bone centroids).
        prealign: per-bone pre-alignment: affine CPD from the image pose, open3d ICP with scaling,
            rigid CPD, or none.
        beta: CPD kernel width, in units of the bone's RMS radius.
        lam: CPD smoothness weight.
        w: CPD outlier weight.
        w_cut: CPD outlier weight when the image edge cut either outline (partial overlap).
        edge_margin_px: cut bones are fitted on the part both images show, this far from the edge.
        max_iter: CPD iterations at most.
        tol: CPD stops when the relative change of its objective falls below this.
        max_points: reference (template) outline points per bone in the fit.
        max_fixed_points: image outline points per bone in the fit (None: ``max_points``).
        low_rank: kernel eigenvectors kept (None: the full solve).
        inverse_weight: fraction of the way each landmark moves towards the reverse fit's position (0: off).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    global_prealign: bool
    prealign: Literal["affine", "icp", "cpd", "none"]
    beta: float = Field(gt=0)
    lam: float = Field(gt=0)
    w: float = Field(ge=0, lt=1)
    w_cut: float = Field(ge=0, lt=1)
    edge_margin_px: float = Field(ge=0)
    max_iter: int = Field(gt=0)
    tol: float = Field(gt=0)
    max_points: int = Field(ge=8)
    max_fixed_points: int | None = Field(ge=8)
    low_rank: int | None = Field(gt=0)
    inverse_weight: float = Field(ge=0, le=1)
