"""What the nnU-Net baseline leaves behind: test predictions as Parquet, the run's fingerprint and figures.

- ``predictions.parquet`` (``PREDICTION_SCHEMA``): per test item and structure the
  region probability (float16) and the mask (packed bits), so that overlapping
  structures survive (nnU-Net's exported PNG cannot hold an overlap).
- ``run_fingerprint``: what a trained model folder was made with (seed, params, the
  nnunetv2 version, the exported bytes, this package's code); another fingerprint
  retrains instead of reusing the folder.
- ``run_summary``: the plan nnU-Net trained (batch, patch, widths) and the schedule.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from denseseg.io.atomic import atomic_file
from denseseg.io.checksums import checksums, source_digest
from denseseg.nnunet.config import NnUNetParams

PREDICTION_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("structure", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("probability", pa.binary()),  # (H, W) little-endian float16, row-major
        ("mask", pa.binary()),  # np.packbits of the (H, W) mask (probability > threshold)
    ]
)


def prediction_rows(item: str, probabilities: np.ndarray, masks: np.ndarray, structures) -> list[dict]:
    """One ``PREDICTION_SCHEMA`` row per structure of one item's (S, H, W) probabilities and masks."""
    h, w = masks.shape[1:]
    return [
        {
            "item": item,
            "structure": structure,
            "height": h,
            "width": w,
            "probability": probabilities[s].astype("<f2").tobytes(),
            "mask": np.packbits(masks[s]).tobytes(),
        }
        for s, structure in enumerate(structures)
    ]


def write_predictions(path: Path, rows: list[dict]) -> None:
    with atomic_file(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, PREDICTION_SCHEMA), tmp, compression="zstd")


def run_fingerprint(seed: int, params: NnUNetParams, raw: Path) -> str:
    """Changes with the seed, every nnU-Net param, the nnunetv2 version, the exported bytes and the code of
    ``denseseg.nnunet`` (the trainer subclass lives there): a model trained by other code is not reused."""
    from importlib.metadata import version

    import nnunetv2

    blob = {
        "seed": seed,
        "params": params.model_dump(mode="json"),
        "nnunetv2": version("nnunetv2"),
        "package": Path(nnunetv2.__file__).parent.name,
        "data": checksums(raw),
        "code": source_digest(Path(__file__).parent),
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def trained_labels(raw_root: Path) -> dict:
    """dataset.json's labels of the one raw dataset under ``raw_root``."""
    (dataset_json,) = Path(raw_root).glob("Dataset*/dataset.json")
    return json.loads(dataset_json.read_text())["labels"]


def run_summary(plans_file: Path, params: NnUNetParams, raw_root: Path) -> dict:
    """The trained plan (labels, batch, patch, widths per stage) and the schedule, as metrics."""
    plans = json.loads(Path(plans_file).read_text())["configurations"][params.configuration]
    return {
        "labels": len(trained_labels(raw_root)),
        "batch_size": plans["batch_size"],
        "patch_size": plans["patch_size"],
        "features_per_stage": plans["architecture"]["arch_kwargs"]["features_per_stage"],
        "epochs": params.schedule.epochs,
        "iterations_per_epoch": params.schedule.iterations_per_epoch,
    }
