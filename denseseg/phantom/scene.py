"""One phantom image: metadata in, 16-bit radiograph and its ground truth out.

Why: this is the unit of parallel work. Every random choice for an image comes
from a Generator seeded by (seed, image index), and the patient's anatomy from
(seed, patient id), so an image's bytes do not depend on which shard or worker
renders it, and the same child looks alike in all of their studies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from denseseg.anatomy import WRIST
from denseseg.phantom.artefacts import burn_marker, cast_attenuation, collimation_mask, metal_attenuation
from denseseg.phantom.atlas import atlas
from denseseg.phantom.growth import growth_state
from denseseg.phantom.render import Exposure, band_noise, bone_attenuation, expose, tissue_thickness
from denseseg.phantom.variation import Pose, ShapeVariation, instance_contours, project_view

# Limb outline (atlas mm, left hand PA): forearm below, hand and thumb web above.
TISSUE_OUTLINE_MM = np.array(
    [
        [-27, 170],
        [-26, 60],
        [-24.5, 10],
        [-23.5, -20],
        [-27, -50],
        [-33, -90],
        [-37, -130],
        [-38, -175],
        [40, -175],
        [44, -120],
        [56, -95],
        [55, -78],
        [47, -60],
        [37, -42],
        [32, -20],
        [31, 10],
        [30, 60],
        [30, 170],
    ]
)
CAST_OUTLINE_MM = np.array([[-33, 175], [-32, -25], [-34, -42], [40, -46], [39, -25], [37, 175]])
METAL_ANCHOR_MM = np.array([14.0, 10.0])

_STREAM_PATIENT, _STREAM_IMAGE = 2, 7


class RenderSettings(BaseModel):
    """Image-size and framing knobs shared by every image of a release (``phantom`` in params.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    height_min: int
    height_max: int
    aspect_min: float  # width / height
    aspect_max: float
    p_crop: float = Field(ge=0, le=1)
    # the imaging chain: "v1" flat bones, no scatter or processing (the default: every measured figure is on
    # it); "v2" tubular bones (cortex and marrow), trabecular texture, scatter, edge-enhancing processing
    imaging: Literal["v1", "v2"] = "v1"

    @model_validator(mode="after")
    def _check_render(self):
        if not 32 <= self.height_min <= self.height_max:
            raise ValueError(
                f"image height range must satisfy 32 <= min <= max, got {self.height_min}..{self.height_max}"
            )
        if not 0.2 <= self.aspect_min <= self.aspect_max <= 2.0:
            raise ValueError(
                f"aspect range must satisfy 0.2 <= min <= max <= 2, got {self.aspect_min}..{self.aspect_max}"
            )
        return self


@dataclass(frozen=True)
class ImageSpec:
    """The metadata of one image that decides what is rendered."""

    index: int  # position in the release (row order of dataset.csv), seeds the image
    filestem: str
    patient_id: int
    sex: str  # M | F | O
    age: float
    laterality: str  # L | R
    projection: int  # 1 PA, 2 lateral, 3 other
    cast: bool = False
    metal: bool = False
    osteopenia: bool = False


@dataclass
class Synthesis:
    image: np.ndarray  # uint16 (H, W), as stored (right hands mirrored)
    truth: dict[str, np.ndarray] = field(default_factory=dict)  # bone -> (N, 2) float32 original pixels (PA only)
    info: dict = field(default_factory=dict)


def patient_rng(seed: int, patient_id: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _STREAM_PATIENT, int(patient_id)])


def image_rng(seed: int, index: int, sub: int = 0) -> np.random.Generator:
    """The image's stream; ``sub`` > 0 gives independent streams for optional artefacts, so that adding
    a cast or metal changes nothing else in the image."""
    return np.random.default_rng([int(seed), _STREAM_IMAGE, int(index), int(sub)])


def _framing(rng: np.random.Generator, settings: RenderSettings, scale: float) -> tuple[int, int, float, float, tuple]:
    height = int(rng.integers(settings.height_min, settings.height_max + 1))
    width = int(round(height * rng.uniform(settings.aspect_min, settings.aspect_max)))
    angle = float(np.clip(rng.normal(0, 6), -15, 15))
    if rng.random() < settings.p_crop:  # only part of the forearm / wrist in view
        field_mm = rng.uniform(55, 80) * scale
        centre = (rng.uniform(-10, 18) * scale, rng.uniform(-5, 40) * scale)
    else:
        field_mm = rng.uniform(100, 140) * scale
        centre = (rng.uniform(-2, 7) * scale, rng.uniform(-25, -5) * scale)
    return height, width, height / field_mm, angle, centre


def synthesise(spec: ImageSpec, seed: int, settings: RenderSettings) -> Synthesis:
    """Render one image of the release and, for PA views, the truth contours of its present bones."""
    if spec.projection not in (1, 2, 3):
        raise ValueError(f"{spec.filestem}: projection must be 1, 2 or 3, got {spec.projection}")
    if spec.laterality not in ("L", "R"):
        raise ValueError(f"{spec.filestem}: laterality must be L or R, got {spec.laterality!r}")
    prng = patient_rng(seed, spec.patient_id)
    offset = float(np.clip(prng.normal(0, 0.7), -1.8, 1.8))
    patient_shape = ShapeVariation.draw(prng, strength=1.0)
    rng = image_rng(seed, spec.index)
    image_shape = ShapeVariation.draw(rng, strength=0.3, deviation_sd=4.0)

    growth = growth_state(spec.age, spec.sex, offset, WRIST.structures)
    bones_mm = instance_contours(growth, [patient_shape, image_shape])
    bones_mm = project_view(bones_mm, spec.projection, rng)
    squeeze = {1: 1.0, 2: 0.5, 3: 0.75}[spec.projection]
    tissue_mm = TISSUE_OUTLINE_MM * growth.scale
    tissue_mm = np.stack([4 + squeeze * (tissue_mm[:, 0] - 4), tissue_mm[:, 1]], axis=1)
    cast_mm = CAST_OUTLINE_MM * growth.scale
    cast_mm = np.stack([4 + squeeze * (cast_mm[:, 0] - 4), cast_mm[:, 1]], axis=1)

    height, width, px_per_mm, angle, centre = _framing(rng, settings, growth.scale)
    pose = Pose(height, width, px_per_mm, angle, centre)
    shape = (height, width)
    bones_px = {name: pose.to_image(pts) for name, pts in bones_mm.items()}

    v2 = settings.imaging == "v2"
    texture = band_noise(shape, (0.2 if v2 else 0.15) * px_per_mm, (1.0 if v2 else 0.8) * px_per_mm, rng)
    density = {}
    for name in bones_px:
        d = 1.0 if name in ("radius", "ulna") else 0.9
        d *= 0.6 + 0.4 * growth.maturity[name]
        density[name] = d * (0.75 if spec.osteopenia else 1.0) * rng.uniform(0.95, 1.05)
    long_bones = {n for n, t in atlas().items() if t.long_bone}
    attenuation = 0.5 * rng.uniform(0.7, 1.2) * tissue_thickness(pose.to_image(tissue_mm), shape, px_per_mm)
    attenuation += bone_attenuation(bones_px, density, shape, px_per_mm, texture, long_bones, tube=v2)
    if spec.cast:
        attenuation += cast_attenuation(pose.to_image(cast_mm), shape, px_per_mm, image_rng(seed, spec.index, 1))
    if spec.metal:
        anchor = pose.to_image((METAL_ANCHOR_MM * growth.scale)[None])[0]
        attenuation += metal_attenuation(anchor, angle, shape, px_per_mm, image_rng(seed, spec.index, 2))
    raw = expose(attenuation, Exposure.draw(rng, settings.imaging), px_per_mm, rng)

    inside = collimation_mask(shape, rng)
    lo = float(raw.min())
    hi = float(np.percentile(raw, 99.9))
    top = rng.uniform(0.85, 0.97) * 65535.0
    scaled = np.clip((raw - lo) / max(hi - lo, 1e-6), 0, 1) * top
    image = np.where(inside, scaled, 0.0).round().astype(np.uint16)

    flipped = spec.laterality == "R"
    if flipped:  # a right hand is the mirror image of a left one
        image = np.ascontiguousarray(image[:, ::-1])
        inside = inside[:, ::-1]
    burn_marker(image, spec.laterality, inside, rng)
    image[0, 0] = image[0, 0] if (image == 0).any() else 0  # keep the full 0..65535 span

    truth = {}
    if spec.projection == 1:
        for name, pts in bones_px.items():
            p = pts.astype(np.float64).copy()
            if flipped:
                p[:, 0] = (width - 1) - p[:, 0]
            truth[name] = p.astype(np.float32)
    info = {
        "height": height,
        "width": width,
        "px_per_mm": float(px_per_mm),
        "bone_age": growth.bone_age,
        "flipped": flipped,
        "present": [name for name in WRIST.structures if growth.present[name]],
        "radius_physis_open": growth.physis_open["radius_epiphysis"],
        "ulna_physis_open": growth.physis_open["ulna_epiphysis"],
    }
    return Synthesis(image=image, truth=truth, info=info)
