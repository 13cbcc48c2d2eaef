"""Per-image anatomy: the atlas grown to an age, deformed smoothly and posed in an image.

Why: a dataset of identical shapes would teach nothing. Variation comes in three
layers, each seeded: a patient layer (the same child looks alike in every
study), an image layer (wrist deviation, small per-bone jitter) and the pose
(rotation, magnification, framing). All of it is a smooth map of the atlas
points, so dense correspondence to the atlas is kept exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denseseg.phantom.atlas import BoneTemplate, atlas, polygon_centroid
from denseseg.phantom.growth import GrowthState

WRIST_CENTRE_MM = np.array([2.0, -20.0])  # pivot of radial/ulnar deviation (capitate head)
DISTAL_GROUP = (
    "scaphoid",
    "lunate",
    "triquetrum",
    "pisiform",
    "trapezium",
    "trapezoid",
    "capitate",
    "hamate",
    "metacarpal_1",
    "metacarpal_2",
    "metacarpal_3",
    "metacarpal_4",
    "metacarpal_5",
)
_EPIPHYSIS_ASPECT = 2.6  # width / height of a newly appeared epiphysis


def _rotation(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def young_shape(template: BoneTemplate, m: float) -> np.ndarray:
    """The bone at maturity ``m``: a small round (or flat, for epiphyses) centre growing into the adult form.

    Point i of the young shape lies on the ray from the centroid through adult
    point i, so the correspondence to the atlas is preserved at every age.
    """
    pts = template.points
    if m >= 1.0:
        return pts.copy()
    c = polygon_centroid(pts)
    rel = pts - c
    direction = rel / np.maximum(np.linalg.norm(rel, axis=1, keepdims=True), 1e-9)
    area = abs(0.5 * np.sum(rel[:, 0] * np.roll(rel[:, 1], -1) - np.roll(rel[:, 0], -1) * rel[:, 1]))
    if template.name.endswith("epiphysis"):
        ry = np.sqrt(area / (np.pi * _EPIPHYSIS_ASPECT))
        rx = ry * _EPIPHYSIS_ASPECT
        # the ellipse radius along each direction
        r = 1.0 / np.sqrt((direction[:, 0] / rx) ** 2 + (direction[:, 1] / ry) ** 2)
    else:
        r = np.full(len(pts), np.sqrt(area / np.pi))
    round_shape = direction * r[:, None]
    w = m**0.7
    size = 0.22 + 0.78 * m**0.8
    return c + size * ((1.0 - w) * round_shape + w * rel)


@dataclass(frozen=True)
class ShapeVariation:
    """Random parameters of one patient's (or one image's) anatomy, drawn once from a Generator."""

    bone_affine: dict[str, np.ndarray]  # 2x3 affine per bone, about its centroid
    field_k: np.ndarray  # (J, 2) wave vectors of a smooth displacement field (1/mm)
    field_a: np.ndarray  # (J, 2) amplitudes (mm)
    field_phase: np.ndarray  # (J,)
    deviation_deg: float  # radial (+) / ulnar (-) deviation of the hand about the wrist

    @classmethod
    def draw(cls, rng: np.random.Generator, strength: float = 1.0, deviation_sd: float = 0.0) -> ShapeVariation:
        affines = {}
        for name, template in atlas().items():
            rot = rng.normal(0, 3.0 if not template.long_bone else 1.2) * strength
            scale = 1.0 + rng.normal(0, 0.05) * strength
            aspect = 1.0 + rng.normal(0, 0.04) * strength
            shift = rng.normal(0, 0.6, size=2) * strength
            lin = _rotation(rot) @ np.diag([scale * aspect, scale / aspect])
            affines[name] = np.concatenate([lin, shift[:, None]], axis=1)
        j = 3
        angles = rng.uniform(0, 2 * np.pi, size=j)
        freq = rng.uniform(1 / 120, 1 / 50, size=j) * 2 * np.pi
        field_k = np.stack([np.cos(angles), np.sin(angles)], axis=1) * freq[:, None]
        field_a = rng.normal(0, 0.9, size=(j, 2)) * strength
        return cls(affines, field_k, field_a, rng.uniform(0, 2 * np.pi, size=j), float(rng.normal(0, deviation_sd)))

    def apply(self, name: str, points: np.ndarray, centroid: np.ndarray) -> np.ndarray:
        aff = self.bone_affine[name]
        out = (points - centroid) @ aff[:, :2].T + centroid + aff[:, 2]
        phase = out @ self.field_k.T + self.field_phase  # (N, J)
        out = out + np.sin(phase) @ self.field_a
        if self.deviation_deg and name in DISTAL_GROUP:
            out = (out - WRIST_CENTRE_MM) @ _rotation(self.deviation_deg).T + WRIST_CENTRE_MM
        return out


def instance_contours(growth: GrowthState, variations: list[ShapeVariation]) -> dict[str, np.ndarray]:
    """Contours (atlas mm, scaled to the child) of the bones present at this age, in WRIST order."""
    out = {}
    for name, template in atlas().items():
        if not growth.present[name]:
            continue
        pts = young_shape(template, growth.maturity[name])
        if name in growth.physis_open and not growth.physis_open[name]:
            pts = pts + np.array([0.0, 1.2])  # fused: the epiphysis sits on its metaphysis
        centroid = polygon_centroid(template.points)
        for variation in variations:
            pts = variation.apply(name, pts, centroid)
        out[name] = pts * growth.scale
    return out


def project_view(contours: dict[str, np.ndarray], projection: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Distort a PA anatomy into a lateral (2) or other/oblique (3) distractor view (no truth)."""
    if projection == 1:
        return contours
    out = {}
    squeeze = 0.28 if projection == 2 else 0.62
    shear = rng.uniform(-0.15, 0.15)
    for name, pts in contours.items():
        p = pts.copy()
        p[:, 0] = 4.0 + squeeze * (p[:, 0] - 4.0) + shear * p[:, 1] * (projection == 2)
        if projection == 2 and name == "metacarpal_1":  # the thumb projects in front of the hand
            p = (p - p.mean(0)) @ _rotation(-25).T + p.mean(0) + np.array([9.0, 4.0])
        out[name] = p
    return out


@dataclass(frozen=True)
class Pose:
    """Map from atlas mm (scaled anatomy) to left-hand image pixels."""

    height: int
    width: int
    px_per_mm: float
    angle_deg: float
    centre_mm: tuple[float, float]  # the anatomy point placed at the image centre

    def to_image(self, points_mm: np.ndarray) -> np.ndarray:
        rel = (np.asarray(points_mm, float) - np.asarray(self.centre_mm)) @ _rotation(self.angle_deg).T
        centre_px = np.array([(self.width - 1) / 2.0, (self.height - 1) / 2.0])
        return rel * self.px_per_mm + centre_px
