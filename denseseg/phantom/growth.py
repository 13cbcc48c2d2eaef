"""Age model: how big the bones are and which ones have ossified at a given age.

Why: bone age must be learnable from the phantom's shapes, as it is from real
radiographs. Everything is driven by a *bone age* (chronological age times a
sex tempo plus an individual offset): overall size grows, carpal ossification
centres appear in their textbook order, young centres are small and round and
grow into the adult shape, and the distal radius/ulna growth plates close in
late adolescence (the epiphysis fuses to the metaphysis).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Bone age (years) at which an ossification centre appears (boys' tempo).
ONSET_YEARS: dict[str, float] = {
    "capitate": 0.15,
    "hamate": 0.4,
    "radius_epiphysis": 1.0,
    "triquetrum": 2.5,
    "lunate": 3.5,
    "trapezium": 4.8,
    "trapezoid": 5.3,
    "scaphoid": 5.6,
    "ulna_epiphysis": 6.6,
    "pisiform": 10.0,
}
# Years from onset until a centre has its adult shape and relative size.
MATURATION_YEARS = {"radius_epiphysis": 12.0, "ulna_epiphysis": 8.0}
DEFAULT_MATURATION_YEARS = 7.0
# Bone age (years) at which the growth plate closes (epiphysis fused).
PHYSIS_CLOSURE_YEARS = {"radius_epiphysis": 16.6, "ulna_epiphysis": 16.2}
FEMALE_TEMPO = 1.1  # girls mature about 10 % faster


def bone_age(age: float, sex: str, offset: float = 0.0) -> float:
    """Skeletal age from chronological age, sex and an individual offset (years)."""
    tempo = FEMALE_TEMPO if sex == "F" else 1.0
    return float(max(0.0, age * tempo + offset))


def body_scale(bone_age_years: float, sex: str) -> float:
    """Linear size of the hand relative to the adult atlas (about 0.45 at birth, 1 at 17)."""
    growth = (1.0 - np.exp(-bone_age_years / 5.5)) / (1.0 - np.exp(-17.0 / 5.5))
    scale = 0.45 + 0.55 * min(growth, 1.02)
    return float(scale * (0.94 if sex == "F" else 1.0))


def maturity(bone: str, bone_age_years: float) -> float:
    """0 before the centre appears, rising to 1 when it has its adult form; 1 for bones present at birth."""
    onset = ONSET_YEARS.get(bone)
    if onset is None:
        return 1.0
    span = MATURATION_YEARS.get(bone, DEFAULT_MATURATION_YEARS)
    return float(np.clip((bone_age_years - onset) / span, 0.0, 1.0))


def is_present(bone: str, bone_age_years: float) -> bool:
    onset = ONSET_YEARS.get(bone)
    return onset is None or bone_age_years > onset


def physis_open(epiphysis: str, bone_age_years: float) -> bool:
    return bone_age_years < PHYSIS_CLOSURE_YEARS[epiphysis]


@dataclass(frozen=True)
class GrowthState:
    """Everything the age implies for one image."""

    bone_age: float
    scale: float
    present: dict[str, bool]
    maturity: dict[str, float]
    physis_open: dict[str, bool]


def growth_state(age: float, sex: str, offset: float, bones: tuple[str, ...]) -> GrowthState:
    ba = bone_age(age, sex, offset)
    return GrowthState(
        bone_age=ba,
        scale=body_scale(ba, sex),
        present={b: is_present(b, ba) for b in bones},
        maturity={b: maturity(b, ba) for b in bones},
        physis_open={e: physis_open(e, ba) for e in PHYSIS_CLOSURE_YEARS},
    )
