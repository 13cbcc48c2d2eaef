"""The release's patients, studies and images, and their rows of ``dataset.csv``.

Why: downstream stages read the real GRAZPEDWRI-DX metadata format, so the
phantom plans its images the way the real release is organised (several studies
per patient, a PA and a lateral view per study, occasional "other" views,
study-level flags) and formats every field exactly as the real file does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

COLUMNS = (
    "filestem",
    "patient_id",
    "study_number",
    "timehash",
    "gender",
    "age",
    "laterality",
    "projection",
    "initial_exam",
    "ao_classification",
    "cast",
    "diagnosis_uncertain",
    "osteopenia",
    "fracture_visible",
    "metal",
    "pixel_spacing",
    "device_manufacturer",
)
FLAG_COLUMNS = ("initial_exam", "cast", "diagnosis_uncertain", "osteopenia", "fracture_visible", "metal")
# Frequent real AO/OTA codes (distal radius/ulna, paediatric), with rough relative weights.
AO_CODES = (
    ("23r-M/2.1", 22),
    ("23r-M/3.1; 23u-M/2.1", 11),
    ("23r-M/3.1; 23u-E/7", 10),
    ("23r-M/3.1", 10),
    ("23-M/3.1", 10),
    ("23-M/2.1", 9),
    ("23r-E/2.1; 23u-E/7", 4),
    ("23r-E/2.1", 4),
    ("22r-D/2.1", 1),
    ("23r-E/1", 1),
    ("23u-E/7", 1),
)
_STREAM_PLAN = 1


class PlanSettings(BaseModel):
    """Knobs of the release plan (``phantom`` in params.yaml, the one source of their values)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_patients: int
    p_right: float
    p_lateral: float
    p_other: float
    p_cast: float
    p_metal: float
    p_followup: float  # chance of each further study, up to max_studies
    max_studies: int = Field(ge=1, le=99)
    age_min: float
    age_max: float

    @model_validator(mode="after")
    def _check_plan(self):
        if self.n_patients < 1 or self.n_patients > 9999:
            raise ValueError(f"n_patients must be 1..9999 (4-digit patient ids), got {self.n_patients}")
        for name in ("p_right", "p_lateral", "p_other", "p_cast", "p_metal", "p_followup"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
        if not 0.0 <= self.age_min < self.age_max <= 99.0:
            raise ValueError(f"age range must satisfy 0 <= min < max <= 99, got {self.age_min}..{self.age_max}")
        return self


def format_age(age: float) -> str:
    """Real style: one decimal, an integer without ``.0`` (``14.1``, ``12``)."""
    text = f"{round(age, 1):.1f}"
    return text[:-2] if text.endswith(".0") else text


def make_filestem(
    patient_id: int, timehash: int, study: int, laterality: str, projection: int, sex: str, age: float
) -> str:
    """``PPPP_TTTTTTTTTT_SS_WRI-{L|R}{1|2|3}_{M|F|O}AAA`` with AAA = floor of the printed age."""
    years = int(np.floor(float(format_age(age))))
    return f"{patient_id:04d}_{timehash:010d}_{study:02d}_WRI-{laterality}{projection}_{sex}{years:03d}"


def _draw_age(rng: np.random.Generator, lo: float, hi: float) -> float:
    if rng.random() < 0.8:  # the real release is mostly school children
        age = rng.normal(11.5, 3.3)
    else:
        age = rng.uniform(lo, hi)
    return float(np.clip(age, lo, hi))


def plan_release(seed: int, settings: PlanSettings) -> pd.DataFrame:
    """All images of the release as a table: the 17 csv columns (typed) plus ``index`` and ``image_part``.

    Rows are sorted by filestem (the real file's order); ``index`` is the row
    number, which seeds each image's rendering.
    """
    rng = np.random.default_rng([int(seed), _STREAM_PLAN])
    ao_codes = [c for c, _ in AO_CODES]
    ao_p = np.array([w for _, w in AO_CODES], float)
    ao_p /= ao_p.sum()
    rows = []
    for pid in range(1, settings.n_patients + 1):
        sex = "M" if rng.random() < 0.59 else "F"
        side = "R" if rng.random() < settings.p_right else "L"
        age0 = _draw_age(rng, settings.age_min, settings.age_max)
        n_studies = 1
        while n_studies < settings.max_studies and rng.random() < settings.p_followup:
            n_studies += 1
        time = int(rng.integers(10_000_000, 1_300_000_000))
        days = 0.0
        fracture = rng.random() < 0.68
        ao = str(rng.choice(ao_codes, p=ao_p)) if fracture and rng.random() < 0.9 else ""
        metal_from = int(rng.integers(1, n_studies + 1)) if rng.random() < settings.p_metal else None
        for study in range(1, n_studies + 1):
            age = min(age0 + days / 365.25, settings.age_max)
            agfa = rng.random() < 0.006
            flags = {
                "initial_exam": study == 1 and rng.random() < 0.9,
                "cast": rng.random() < (settings.p_cast * (0.6 if study == 1 else 1.8)),
                "diagnosis_uncertain": rng.random() < 0.03,
                "osteopenia": False,
                "fracture_visible": fracture and rng.random() < 0.95,
                "metal": metal_from is not None and study >= metal_from,
            }
            flags["osteopenia"] = rng.random() < (0.3 if flags["cast"] else 0.06)
            projections = [1]
            if rng.random() < settings.p_lateral:
                projections.append(2)
            if rng.random() < settings.p_other:
                projections.append(3)
            order = rng.permutation(len(projections))
            t = time
            for k in order:
                t += int(rng.integers(20, 120))
                proj = projections[k]
                rows.append(
                    {
                        "filestem": make_filestem(pid, t, study, side, proj, sex, age),
                        "patient_id": pid,
                        "study_number": study,
                        "timehash": t,
                        "gender": sex,
                        "age": float(format_age(age)),
                        "laterality": side,
                        "projection": proj,
                        "ao_classification": ao,
                        **flags,
                        "pixel_spacing": 0.143 if agfa else 0.144,
                        "device_manufacturer": "Agfa" if agfa else "Siemens",
                    }
                )
            gap = float(rng.uniform(5, 60))
            days += gap
            time += int(gap * 86400)
    plan = pd.DataFrame(rows).sort_values("filestem", kind="stable").reset_index(drop=True)
    plan.insert(0, "index", np.arange(len(plan)))
    plan["image_part"] = 1 + (plan["index"] * 4) // max(len(plan), 1)
    return plan


def csv_bytes(plan: pd.DataFrame) -> bytes:
    """``dataset.csv`` exactly as the real release writes it: UTF-8 BOM, CRLF, flags ``1`` or blank."""
    lines = [",".join(COLUMNS)]
    for row in plan.itertuples(index=False):
        r = row._asdict()
        fields = []
        for col in COLUMNS:
            value = r[col]
            if col in FLAG_COLUMNS:
                fields.append("1" if value else "")
            elif col == "age":
                fields.append(format_age(value))
            elif col == "pixel_spacing":
                fields.append(f"{value:.3f}")
            else:
                text = str(value)
                if any(ch in text for ch in ',"\r\n'):
                    raise ValueError(f"{r['filestem']}: field {col} cannot be written unquoted: {text!r}")
                fields.append(text)
        lines.append(",".join(fields))
    return ("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8")


def image_path(row) -> str:
    """Release-relative path of an image: ``images_part{1..4}/<filestem>.png``."""
    return f"images_part{int(row['image_part'])}/{row['filestem']}.png"
