"""The datasheet and release.json from the template, against counts made by hand."""

import json

import pandas as pd

from denseseg.anatomy import WRIST
from denseseg.release.contents import (
    SOURCE_CITATION,
    ReleaseParams,
    datasheet,
    qc_summary,
    release_counts,
    release_json,
)

PARAMS = ReleaseParams(name="wrist-lms", version="2.1.0", anatomy="wrist", licence="CC BY 4.0")


def _counts():
    qc = pd.DataFrame({"filestem": ["a", "a", "b", "c"]})
    splits = pd.DataFrame({"filestem": ["a", "b"], "patient_id": ["p1", "p2"], "split": ["train", "test"]})
    images = pd.DataFrame({"filestem": ["a", "b"], "height": [192, 192], "width": [112, 112]})
    return release_counts(["a", "b"], qc, splits, images, WRIST)


def test_counts_of_the_released_images():
    counts = _counts()
    assert (counts["images"], counts["images_in_qc"], counts["patients"]) == (2, 3, 2)
    assert (counts["landmarks_per_image"], counts["bones"], counts["height"], counts["width"]) == (710, 17, 192, 112)
    assert counts["split"] == {
        "train": {"images": 1, "patients": 1},
        "val": {"images": 0, "patients": 0},
        "test": {"images": 1, "patients": 1},
    }


def test_the_datasheet_fills_every_placeholder():
    registration = {
        "dice_threshold": 0.8,
        "reference": {"filestem": "ref-1", "method": "medoid"},
        "median_px": 0.8988,
        "mean_px": 1.97315,
        "p95_px": 7.2978,
        "template": {"method": "mean", "landmarks_on_reference_cut": {"ulna": "32-42", "radius": "37-52"}},
    }
    qc = qc_summary(registration)
    assert qc == {
        "dice_threshold": 0.8,
        "reference": "image ref-1, medoid",
        "accuracy": {"median_px": 0.8988, "mean_px": 1.97315, "p95_px": 7.2978},
        "landmarks_on_reference_cut": {"ulna": "32-42", "radius": "37-52"},
    }
    sheet = datasheet(PARAMS, _counts(), qc, synthetic=True)
    assert sheet.startswith("# wrist-lms 2.1.0: datasheet\n\n## What it is\n")
    assert "Masks of the 17 wrist bones and 710 corresponding contour landmarks per image" in sheet
    assert "the working resolution (192 x 112, H x W)" in sheet and "the embedded **wrist phantom**" in sheet
    assert "- Images: 2 released of 3 registered; patients: 2.\n" in sheet
    assert "| train | 1 | 1 |\n| val | 0 | 0 |\n| test | 1 | 1 |\n" in sheet
    assert "and its mask >= 0.8 (threshold" in sheet and "reference's outlines (image ref-1, medoid)" in sheet
    assert "median 0.899 px, mean 1.973 px, p95 7.298 px (working pixels).\n" in sheet
    assert "mark no anatomical point in any image.\n  They are: radius 37-52; ulna 32-42.\n" in sheet
    assert f"> {SOURCE_CITATION}\n" in sheet and sheet.count("CC BY 4.0") == 2 and "$" not in sheet
    real = datasheet(PARAMS, _counts(), qc_summary({}), synthetic=False)
    assert "the **GRAZPEDWRI-DX** release" in real and "Landmark error" not in real
    assert "reference's outlines (see qc.parquet)" in real and "They are:" not in real


def test_release_json_is_sorted_and_ends_with_a_newline():
    text = release_json(PARAMS, _counts(), {"dice_threshold": 0.8}, synthetic=False)
    info = json.loads(text)
    assert text.endswith("}\n") and list(info) == sorted(info)
    assert info["source"] == "GRAZPEDWRI-DX" and info["version"] == "2.1.0" and info["counts"]["images"] == 2
