"""The GRAZPEDWRI-DX release: ``dataset.csv`` schema, codes, filestems and image paths.

The metadata file is UTF-8 with a BOM and CRLF line endings; flags are ``1`` or
blank. Column problems are errors (nothing can be trusted); row problems become
reasons, so that one bad row never stops a release of 20,000.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

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
LATERALITIES = ("L", "R")
PROJECTIONS = (1, 2, 3)  # 1 frontal (PA), 2 lateral, 3 other
GENDERS = ("M", "F", "O")

FILESTEM = re.compile(
    r"^(?P<patient>\d{4})_(?P<timehash>\d{10})_(?P<study>\d{2})_WRI-(?P<laterality>[LR])(?P<projection>[123])"
    r"_(?P<gender>[MFO])(?P<age>\d{3})$"
)


class MetadataError(ValueError):
    """``dataset.csv`` cannot be used at all (missing file, wrong columns)."""


def read_metadata(path: str | os.PathLike) -> pd.DataFrame:
    """Read ``dataset.csv`` as strings (blank stays blank) and check its columns."""
    path = Path(path)
    if not path.exists():
        raise MetadataError(f"{path}: dataset.csv not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError) as err:
        raise MetadataError(f"{path}: not a readable CSV ({err})".replace("\n", " ")) from None
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        unexpected = [c for c in df.columns if c not in COLUMNS]
        hint = f"; unexpected column(s): {', '.join(unexpected)}" if unexpected else ""
        raise MetadataError(f"{path}: missing column(s) {', '.join(missing)}{hint}")
    return df[list(COLUMNS)]


@dataclass(frozen=True)
class ImageRecord:
    """One validated row of ``dataset.csv``."""

    filestem: str
    patient_id: str
    study_number: int
    age: float
    sex: str
    laterality: str
    projection: int
    pixel_spacing_mm: float
    device_manufacturer: str
    ao_classification: str
    flags: dict[str, bool]


def _flag(value: str, column: str) -> bool:
    if value == "":
        return False
    if value.strip() == "1":
        return True
    raise ValueError(f"column {column}: flag must be 1 or blank, found {value!r}")


def _number(value: str, column: str, kind=float):
    try:
        number = kind(value)
    except ValueError:
        raise ValueError(f"column {column}: not a number: {value!r}") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError(f"column {column}: not finite: {value!r}")
    return number


def parse_row(row: dict[str, str]) -> ImageRecord:
    """Validate one row; raise ValueError with the reason when it is not usable."""
    stem = row["filestem"]
    if "/" in stem or "\\" in stem or ".." in stem or os.path.isabs(stem):
        raise ValueError(f"filestem {stem!r} would escape the release root")
    laterality = row["laterality"]
    if laterality not in LATERALITIES:
        raise ValueError(f"unknown laterality code {laterality!r} (expected L or R)")
    projection = _number(row["projection"], "projection", int) if row["projection"].isdigit() else None
    if projection not in PROJECTIONS:
        raise ValueError(f"unknown projection code {row['projection']!r} (expected 1, 2 or 3)")
    gender = row["gender"]
    if gender not in GENDERS:
        raise ValueError(f"unknown gender code {gender!r} (expected M, F or O)")
    age = _number(row["age"], "age")
    if not 0 <= age < 30:
        raise ValueError(f"column age: {age} years is outside 0..30")
    spacing = _number(row["pixel_spacing"], "pixel_spacing") if row["pixel_spacing"] else float("nan")
    if spacing == spacing and not 0 < spacing < 1:
        raise ValueError(f"column pixel_spacing: {spacing} mm is implausible")
    flags = {column: _flag(row[column], column) for column in FLAG_COLUMNS}
    match = FILESTEM.match(stem)
    if not match:
        raise ValueError(f"filestem {stem!r} does not follow PPPP_TTTTTTTTTT_SS_WRI-<L|R><1|2|3>_<M|F|O>AAA")
    expected = {
        "patient": int(_number(row["patient_id"], "patient_id", int)),
        "timehash": int(_number(row["timehash"], "timehash", int)),
        "study": int(_number(row["study_number"], "study_number", int)),
        "laterality": laterality,
        "projection": projection,
        "gender": gender,
        "age": int(math.floor(age)),
    }
    found = {
        "patient": int(match["patient"]),
        "timehash": int(match["timehash"]),
        "study": int(match["study"]),
        "laterality": match["laterality"],
        "projection": int(match["projection"]),
        "gender": match["gender"],
        "age": int(match["age"]),
    }
    mismatched = [f"{k} {found[k]!r} != row {expected[k]!r}" for k in expected if expected[k] != found[k]]
    if mismatched:
        raise ValueError(f"filestem does not match its row: {'; '.join(mismatched)}")
    return ImageRecord(
        filestem=stem,
        patient_id=str(expected["patient"]),
        study_number=expected["study"],
        age=age,
        sex=gender,
        laterality=laterality,
        projection=projection,
        pixel_spacing_mm=spacing,
        device_manufacturer=row["device_manufacturer"],
        ao_classification=row["ao_classification"],
        flags=flags,
    )


def validate_metadata(df: pd.DataFrame) -> tuple[list[ImageRecord], list[tuple[str, str]]]:
    """Split rows into valid records and (filestem, reason) rejects; CSV line numbers in reasons."""
    records, rejects, seen = [], [], set()
    for line, row in enumerate(df.to_dict("records"), start=2):
        try:
            record = parse_row(row)
        except ValueError as err:
            rejects.append((row["filestem"], f"dataset.csv line {line}: {err}"))
            continue
        if record.filestem in seen:
            rejects.append((record.filestem, f"dataset.csv line {line}: duplicate filestem"))
            continue
        seen.add(record.filestem)
        records.append(record)
    return records, rejects


def select(records: list[ImageRecord], projections=(1,), exclude_cast=False, exclude_metal=False) -> list[ImageRecord]:
    """The images a study uses: by default every frontal (PA) view."""
    return [
        r
        for r in records
        if r.projection in projections
        and not (exclude_cast and r.flags["cast"])
        and not (exclude_metal and r.flags["metal"])
    ]


def index_images(root: str | os.PathLike, patterns=("images_part*", "images")) -> dict[str, Path]:
    """Map filestem -> PNG path over the release's image folders (one scan, no per-file stat)."""
    root = Path(root)
    found: dict[str, Path] = {}
    for pattern in patterns:
        for folder in sorted(root.glob(pattern)):
            if not folder.is_dir():
                continue
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.endswith(".png"):
                        found.setdefault(entry.name[:-4], Path(entry.path))
    return found


def inside(root: str | os.PathLike, path: str | os.PathLike) -> bool:
    """True when ``path`` (after resolving links) lies inside ``root``."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())
