"""What a dataset release says about itself: its counts, its QC, ``release.json`` and the datasheet.

The datasheet is ``templates/DATASHEET.md`` (``string.Template`` placeholders)
filled from the counts; nothing in it or in ``release.json`` depends on the time,
so the same inputs give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from string import Template

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from denseseg.anatomy import Anatomy, AnatomyName

SOURCE_CITATION = (
    "Nagy, E., Janisch, M., Hržić, F., Sorantin, E., Tschauner, S. A pediatric wrist trauma X-ray dataset "
    "(GRAZPEDWRI-DX) for machine learning. Sci Data 9, 222 (2022). https://doi.org/10.1038/s41597-022-01328-z"
)
PHANTOM_SOURCE = (
    "the embedded **wrist phantom**: synthetic radiographs in the exact GRAZPEDWRI-DX release format, "
    "rendered from an anatomical atlas (no patient data). Figures on the phantom do not transfer to real images "
    "without checking."
)
REAL_SOURCE = "the **GRAZPEDWRI-DX** release of paediatric wrist trauma radiographs (University Hospital Graz)."
SPLITS = ("train", "val", "test")


class ReleaseParams(BaseModel):
    """The release's name, version, anatomy and licence (``release`` in ``params.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    anatomy: AnatomyName
    licence: str


def release_counts(
    released: Sequence[str], qc: pd.DataFrame, splits: pd.DataFrame, images: pd.DataFrame, anatomy: Anatomy
) -> dict:
    """Images, patients, landmarks, working size and the split sizes of the released images.

    Args:
        released: the released images.
        qc: the QC table (every registered image).
        splits: the SPLITS rows of the released images.
        images: the MANIFEST rows of the released images.
        anatomy: its structures and landmarks.
    """
    return {
        "images": len(released),
        "images_in_qc": int(qc["filestem"].nunique()),
        "patients": int(splits["patient_id"].nunique()),
        "landmarks_per_image": anatomy.n_landmarks,
        "bones": len(anatomy.structures),
        "height": int(images["height"].iloc[0]) if len(images) else 0,
        "width": int(images["width"].iloc[0]) if len(images) else 0,
        "split": {
            part: {
                "images": int((splits["split"] == part).sum()),
                "patients": int(splits.loc[splits["split"] == part, "patient_id"].nunique()),
            }
            for part in SPLITS
        },
    }


def qc_summary(registration: dict) -> dict:
    """The QC threshold, the reference and (on the phantom) the accuracy, from the register stage's metrics."""
    out = {"dice_threshold": registration.get("dice_threshold")}
    reference = registration.get("reference")
    if isinstance(reference, dict):
        out["reference"] = f"image {reference.get('filestem')}, {reference.get('method')}"
    if registration.get("median_px") is not None:
        out["accuracy"] = {k: registration[k] for k in ("median_px", "mean_px", "p95_px")}
    on_cut = (registration.get("template") or {}).get("landmarks_on_reference_cut")
    if on_cut:
        out["landmarks_on_reference_cut"] = dict(on_cut)  # {structure: "index ranges"}: no anatomical point
    return out


def release_json(params: ReleaseParams, counts: dict, qc: dict, synthetic: bool) -> str:
    """``release.json``: name, version, licence, source and its citation, counts and QC."""
    info = {
        "name": params.name,
        "version": params.version,
        "licence": params.licence,
        "source": "wrist phantom (synthetic)" if synthetic else "GRAZPEDWRI-DX",
        "source_citation": SOURCE_CITATION,
        "counts": counts,
        "qc": qc,
    }
    return json.dumps(info, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def datasheet(params: ReleaseParams, counts: dict, qc: dict, synthetic: bool) -> str:
    """``DATASHEET.md``: provenance, counts, QC, known limitations, licence and credit."""
    acc = qc.get("accuracy")
    accuracy_line = (
        f"- Landmark error against the phantom's true atlas points (each template landmark's own): median "
        f"{acc['median_px']:.3f} px, mean {acc['mean_px']:.3f} px, p95 {acc['p95_px']:.3f} px (working pixels).\n"
        if acc
        else ""
    )
    on_cut = qc.get("landmarks_on_reference_cut") or {}
    cut_line = (
        "  They are: " + "; ".join(f"{s} {ranges}" for s, ranges in sorted(on_cut.items())) + ".\n" if on_cut else ""
    )
    split_rows = "".join(
        f"| {part} | {counts['split'][part]['images']} | {counts['split'][part]['patients']} |\n" for part in SPLITS
    )
    template = Template(files("denseseg.release").joinpath("templates/DATASHEET.md").read_text(encoding="utf-8"))
    return template.substitute(
        name=params.name,
        version=params.version,
        licence=params.licence,
        citation=SOURCE_CITATION,
        source=PHANTOM_SOURCE if synthetic else REAL_SOURCE,
        reference=qc.get("reference", "see qc.parquet"),
        dice_threshold=qc.get("dice_threshold", "n/a"),
        accuracy_line=accuracy_line,
        reference_cut_line=cut_line,
        split_rows=split_rows,
        **{k: counts[k] for k in ("landmarks_per_image", "height", "width", "images", "images_in_qc", "patients")},
        bones=counts["bones"],
    )
