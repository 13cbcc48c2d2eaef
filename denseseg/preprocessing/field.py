"""The exposed field: the part of a radiograph that the collimator left open.

Why: a collimator blade leaves an unexposed band along a side of the image
(black in the phantom and in many real radiographs). A bone under that band
is invisible, so its mask, its outline and its landmarks end at the band's
edge, not at the image's. Treated as anatomy, such an edge gives landmarks
without identity: on the demo, the registration's worst errors (55-73 px) came
from one reference whose ulna ended at a collimator edge 6 px above the image
edge (``docs/registration.md``). Ingest measures the band on each side and
stores the field in the manifest; ``WorkingFrame.view_box`` then ends the
image's view there, and every "is this point on the picture?" question of
contours, registration and scoring asks about the exposed field.

Detection, per side, on the working image inside its footprint: each pixel
line across the side (a column for the top and bottom, a row for the left and
right) has a run of dark pixels (value at most ``dark_at_most``) starting at the
side's edge. Air in the picture also is dark, but it only lengthens runs where
no tissue reaches the edge; a blade darkens every line. The side's lines are
split into ``bins`` groups and each group's shortest run taken: when every
group starts dark, the side is collimated, and its band depth is the deepest of
the groups' shortest runs (a blade may be tilted by a degree or two). A band is
at most ``max_margin`` of the image's extent across its side.

Measured against the phantom's blades (``benchmarks/collimation.py``, demo): no
band found where there is none, the depth within 2.1 px of the true blade's
deepest point (median 0.8 px: a partly exposed working pixel counts as
exposed), and a third of the true bands of at least 1 px missed, all shallow
(median 1.4 px, at most 4.9 px): a tilted blade that narrows to nothing along a
side leaves some lines exposed at the edge. ``contours.edge_tol_px`` (2.5 px)
covers most of both.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from denseseg.shape.view_box import Box, as_box


class FieldParams(BaseModel):
    """How ingest finds the exposed field (``ingest.field`` in ``params.yaml``).

    Args:
        enabled: detect collimator bands (False: the field is the whole picture).
        dark_at_most: working-image values (16-bit) at most this count as unexposed.
        max_margin: a band covers at most this share of the image's extent across its side.
        bins: groups of pixel lines per side; every group must start dark for a band.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool
    dark_at_most: float = Field(ge=0)
    max_margin: float = Field(gt=0, lt=0.5)
    bins: int = Field(ge=1)


def _band_depth(dark: np.ndarray, params: FieldParams) -> int:
    """Depth in pixels of the band along the first axis of ``dark`` (lines along axis 1); 0 when none."""
    depth_cap = max(1, int(math.floor(params.max_margin * dark.shape[0])))
    strip = dark[:depth_cap]
    exposed = ~strip
    runs = np.where(exposed.any(0), np.argmax(exposed, axis=0), depth_cap)
    if runs.size < params.bins:
        return 0
    shortest = np.array([part.min() for part in np.array_split(runs, params.bins)])
    return int(shortest.max()) if shortest.min() >= 1 else 0


def exposed_field(image: np.ndarray, footprint: Box, params: FieldParams) -> tuple[float, float, float, float]:
    """The band depths (px) on the (top, left, bottom, right) sides of ``image`` inside ``footprint``.

    ``footprint``: the pixel-edge box the original covers (``WorkingFrame.footprint_box``).
    A side without a band, and every side when detection is off, has depth 0.
    """
    if not params.enabled:
        return (0.0, 0.0, 0.0, 0.0)
    top, left, bottom, right = (int(round(v + 0.5)) for v in as_box(footprint))  # first / after-last pixel
    inner = np.asarray(image)[top:bottom, left:right] <= params.dark_at_most
    if inner.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    lines = (inner, inner.T, inner[::-1], inner.T[::-1])  # each side's band runs along the first axis
    return tuple(float(_band_depth(side, params)) for side in lines)
