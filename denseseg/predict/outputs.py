"""The files of one predicted radiograph (format ``denseseg-prediction/1``; docs/predict.md describes them).

``<folder>/``: ``landmarks.csv`` (structure, index, x, y, inside), ``landmarks.json``,
``masks/<structure>.png`` (8-bit 0/255 at the original size), ``overlay.png``,
``prediction.json`` and, with extra points, ``points.csv``. Coordinates are
(x, y) = (column, row) in the original image's pixels, pixel centres at
integers, in the image's own orientation (a right hand is not mirrored); a
value not predicted is empty in CSV and null in JSON. The folder is built
beside its place and swapped in whole, so a killed run leaves no half folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from denseseg.anatomy import Anatomy
from denseseg.evaluation.overlays import encode_rgb_png
from denseseg.io.atomic import commit_dir, partial_dir, write_json_atomic
from denseseg.io.png import encode_png
from denseseg.predict.overlay import render_overlay
from denseseg.predict.points import ExtraPoints
from denseseg.predict.predictor import RadiographPrediction
from denseseg.predict.radiograph import Laterality, Radiograph

FORMAT = "denseseg-prediction/1"
COORDINATES = "x = column, y = row in the original image's pixels (pixel centres at integers), image orientation"


def _inside(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Finite points within the image (pixel edges at -0.5 and size - 0.5)."""
    x, y = points[:, 0], points[:, 1]
    with np.errstate(invalid="ignore"):
        return np.isfinite(points).all(1) & (x >= -0.5) & (x <= width - 0.5) & (y >= -0.5) & (y <= height - 0.5)


def _pairs(points: np.ndarray) -> list:
    return [[round(float(x), 4), round(float(y), 4)] if np.isfinite([x, y]).all() else None for x, y in points]


def landmark_table(anatomy: Anatomy, landmarks: np.ndarray, height: int, width: int) -> pd.DataFrame:
    """One row per landmark of the anatomy: structure, index within it, x, y, inside the image."""
    counts = anatomy.landmark_counts
    return pd.DataFrame(
        {
            "structure": np.repeat(list(counts), list(counts.values())),
            "index": np.concatenate([np.arange(n) for n in counts.values()]),
            "x": landmarks[:, 0],
            "y": landmarks[:, 1],
            "inside": _inside(landmarks, height, width),
        }
    )


def points_table(points: ExtraPoints, found: np.ndarray, height: int, width: int) -> pd.DataFrame:
    """One row per extra point: name, structure, what was given (template_x/y or u/v), its uv, x, y, inside."""
    given = {"template_x": points.values[:, 0], "template_y": points.values[:, 1]} if points.given == "xy" else {}
    return pd.DataFrame(
        {
            "name": list(points.names),
            "structure": list(points.structures),
            **given,
            "u": points.uv[:, 0],
            "v": points.uv[:, 1],
            "x": found[:, 0],
            "y": found[:, 1],
            "inside": _inside(found, height, width),
        }
    )


def _csv(table: pd.DataFrame, path: Path) -> None:
    table.to_csv(path, index=False, float_format="%.4f", na_rep="", lineterminator="\n")


def write_prediction(
    folder: str | os.PathLike,
    radiograph: Radiograph,
    side: Laterality,
    prediction: RadiographPrediction,
    anatomy: Anatomy,
    model: dict,
    points: ExtraPoints | None = None,
    bone_age: dict | None = None,
    warnings: tuple[str, ...] = (),
    overlay_max_side: int = 1024,
) -> dict:
    """Write the folder of one prediction and return its ``prediction.json`` summary.

    Args:
        folder: the output folder (replaced whole).
        radiograph: the decoded input.
        side: its laterality and where it came from.
        prediction: the prediction.
        anatomy: the model's anatomy (structure names and landmark counts).
        model: facts about the model (folder, run, method, dataset), copied into the JSON files.
        points: the extra points asked for, or None.
        bone_age: ``{"months": float | None, "model": folder}`` with a bone-age model, else None.
        warnings: messages worth keeping with the result (e.g. a lateral view).
        overlay_max_side: the overlay's longer side at most, in px.
    """
    folder = Path(folder)
    staging = partial_dir(folder)
    height, width = radiograph.pixels.shape
    table = landmark_table(anatomy, prediction.landmarks, height, width)
    _csv(table, staging / "landmarks.csv")
    image = {"file": str(radiograph.path), "height": height, "width": width, "bit_depth": radiograph.bit_depth}
    offsets = anatomy.landmark_offsets()
    write_json_atomic(
        staging / "landmarks.json",
        {
            "format": FORMAT,
            "image": image,
            "laterality": side.side,
            "model": model,
            "estimator": prediction.estimator,
            "coordinates": COORDINATES,
            "structures": {
                s: _pairs(prediction.landmarks[offsets[s] : offsets[s] + n]) for s, n in anatomy.landmark_counts.items()
            },
        },
    )
    (staging / "masks").mkdir()
    for s, mask in zip(anatomy.structures, prediction.masks):
        (staging / "masks" / f"{s}.png").write_bytes(encode_png(mask.astype(np.uint8) * np.uint8(255)))
    found = None
    if points is not None:
        found = prediction.points if prediction.points is not None else np.full((len(points), 2), np.nan)
        _csv(points_table(points, found, height, width), staging / "points.csv")
    rgb = render_overlay(radiograph.pixels, prediction.masks, prediction.landmarks, found, overlay_max_side)
    (staging / "overlay.png").write_bytes(encode_rgb_png(rgb))
    frame = prediction.frame
    counts = anatomy.landmark_counts
    finite = np.isfinite(prediction.landmarks).all(1)
    summary = {
        "format": FORMAT,
        "image": image,
        "laterality": side.side,
        "laterality_source": side.source,
        "projection": side.projection,
        "mirrored": frame.flipped,
        "model": model,
        "estimator": prediction.estimator,
        "working_frame": {
            "height": frame.height,
            "width": frame.width,
            "scale": frame.scale,
            "pad_top": frame.pad_top,
            "pad_left": frame.pad_left,
            "flipped": frame.flipped,
        },
        "landmarks": {
            "total": int(len(finite)),
            "found": int(finite.sum()),
            "inside_image": int(table["inside"].sum()),
        },
        "structures": {
            s: {
                "mask_area_px": int(prediction.masks[i].sum()),
                "landmarks": int(counts[s]),
                "landmarks_found": int(finite[offsets[s] : offsets[s] + counts[s]].sum()),
            }
            for i, s in enumerate(anatomy.structures)
        },
        "points": None
        if points is None
        else {"file": str(points.source), "count": len(points), "found": int(np.isfinite(found).all(1).sum())},
        "bone_age_months": None if bone_age is None else bone_age["months"],
        "bone_age_model": None if bone_age is None else bone_age["model"],
        "warnings": list(warnings),
    }
    write_json_atomic(staging / "prediction.json", summary)
    commit_dir(staging, folder)
    return summary
