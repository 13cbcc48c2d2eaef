"""Builders of synthetic inputs in the real formats, shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HEADER = (
    "filestem,patient_id,study_number,timehash,gender,age,laterality,projection,initial_exam,"
    "ao_classification,cast,diagnosis_uncertain,osteopenia,fracture_visible,metal,pixel_spacing,device_manufacturer"
)


def csv_row(stem: str, age: float, cast: bool = False, spacing: str = "0.144") -> str:
    """A dataset.csv row consistent with its filestem (PPPP_TTTTTTTTTT_SS_WRI-Xn_GAAA)."""
    patient, timehash, study, rest = stem.split("_", 3)
    code, sex_age = rest.split("_")
    laterality, projection, sex = code[4], code[5], sex_age[0]
    return (
        f"{stem},{int(patient)},{int(study)},{int(timehash)},{sex},{age},{laterality},{projection},1,"
        f"23r-M/2.1,{'1' if cast else ''},,,1,,{spacing},Siemens"
    )


def write_release(root: Path, rows: list[str], images: dict[str, np.ndarray], header: str = HEADER) -> Path:
    """A release in the real layout: BOM + CRLF dataset.csv and 16-bit PNGs in images_part1."""
    from denseseg.io.png import write_png

    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.csv").write_bytes(("\ufeff" + "\r\n".join([header, *rows]) + "\r\n").encode("utf-8"))
    for stem, pixels in images.items():
        write_png(root / "images_part1" / f"{stem}.png", pixels)
    return root


def gradient_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A 16-bit image with a bright block on the left half of the upper part (to see flips)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 2000, size=(height, width)).astype(np.uint16)
    image[height // 4 : height // 2, : width // 3] = 60000
    return image


def write_ingest(folder: Path, images: dict[str, np.ndarray], spacing_mm: float, scale: float) -> Path:
    """An ingest output folder: working-resolution 16-bit PNGs under images/ and a MANIFEST table.

    Every item gets the same original ``pixel_spacing_mm`` and working ``scale``
    (working px per original px), so mm per working pixel is ``spacing_mm / scale``.
    """
    import pandas as pd

    from denseseg.io.png import write_png
    from denseseg.io.tables import FIELD_COLUMNS, MANIFEST, write_table

    rows = []
    for stem, pixels in sorted(images.items()):
        write_png(folder / "images" / f"{stem}.png", pixels)
        height, width = pixels.shape
        rows.append(
            {
                "filestem": stem,
                "patient_id": stem,
                "study_number": 1,
                "age": 12.0,
                "sex": "M",
                "laterality": "L",
                "flipped": False,
                "projection": 1,
                "cast": False,
                "metal": False,
                "fracture_visible": False,
                "osteopenia": False,
                "ao_classification": "",
                "device_manufacturer": "Siemens",
                "pixel_spacing_mm": spacing_mm,
                "orig_height": round(height / scale),
                "orig_width": round(width / scale),
                "height": height,
                "width": width,
                "scale": scale,
                "pad_top": 0.0,
                "pad_left": 0.0,
                **dict.fromkeys(FIELD_COLUMNS, 0.0),
                "image_path": f"images/{stem}.png",
            }
        )
    write_table(pd.DataFrame(rows, columns=MANIFEST.names), folder / "manifest.parquet", MANIFEST)
    return folder


def project_params(section: str, **overrides) -> dict:
    """A section of the project's ``params.yaml`` (dotted, e.g. ``register.registration``), keys overridden.

    Tests of the library build its parameter models from the values the pipeline
    runs with, changing only what a test is about.
    """
    import yaml

    node = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    for key in section.split("."):
        node = node[key]
    unknown = set(overrides) - set(node)
    if unknown:
        raise KeyError(f"params.yaml {section} has no key(s) {', '.join(sorted(unknown))}")
    return {**node, **overrides}


def make_trainer(n_outputs: int, channels, num_res_units: int, seed: int, **training):
    """A CPU propagation trainer with the pipeline's training params (``propagate.training``), changed where asked."""
    from denseseg.propagation.network import NetworkParams
    from denseseg.propagation.trainer import SegmentationTrainer, TrainConfig

    network = NetworkParams(channels=channels, num_res_units=num_res_units, dropout=0.0)
    config = TrainConfig(**project_params("propagate.training", **training))
    return SegmentationTrainer(n_outputs, network, config, seed=seed, device="cpu")
