"""Seed annotations: per-bone masks of a few PA images, like a clinician's manual work.

Why: the paper starts from a small set of manually segmented radiographs and
propagates them to the whole dataset. The phantom writes the same kind of
input from its truth, in a plain format a clinician could also produce, so the
real annotations can replace it without code changes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from denseseg.io.atomic import write_text_atomic
from denseseg.io.png import write_png
from denseseg.phantom.raster import polygon_mask

README = """# Seed annotations

Manual (or phantom) segmentations of a few frontal (PA, projection 1) wrist
radiographs of the release. The propagation stage learns from them.

## Layout

    annotations.csv
    <filestem>/<structure>.png

- `annotations.csv`: UTF-8 text, comma separated, header
  `filestem,structure,mask_path`, one row per annotated bone of an image.
  - `filestem`: the image's filestem in the release's `dataset.csv`
    (e.g. `0001_1297860395_01_WRI-L1_M014`).
  - `structure`: one of the 17 bone names below, spelled exactly.
  - `mask_path`: the mask's path relative to this folder, normally
    `<filestem>/<structure>.png`.
- A bone of an annotated image that has no row is ABSENT in that image (not yet
  ossified, or outside the field of view). Annotate each visible bone fully.
- Each mask is an 8-bit greyscale PNG with exactly the size of the release image
  (same width and height), in the SAME orientation as the stored image (do not
  mirror right hands): 255 = bone, 0 = background. Bones may overlap: each bone
  has its own mask, and a pixel can be 255 in several of them.

## Bone names

radius, ulna, radius_epiphysis, ulna_epiphysis, scaphoid, lunate, triquetrum,
pisiform, trapezium, trapezoid, capitate, hamate, metacarpal_1 (thumb),
metacarpal_2, metacarpal_3, metacarpal_4, metacarpal_5 (little finger).

The metaphysis belongs to `radius`/`ulna`; the epiphysis above the growth plate
is `radius_epiphysis`/`ulna_epiphysis` (annotate it as its own bone also when
the plate has closed).

## Producing them

Any tool that exports one binary mask per bone works (e.g. 3D Slicer, ITK-SNAP,
CVAT mask export): save each bone as `<filestem>/<structure>.png` with 0/255
values and list it in `annotations.csv`.
"""


def choose_seed_images(plan: pd.DataFrame, n: int) -> list[str]:
    """``n`` PA images spread over ages and patients, chosen deterministically from the plan.

    One PA image per patient first (their earliest), sorted by age and taken at
    evenly spaced ranks; if more are asked than there are patients, the rest are
    filled the same way from the remaining PA images.
    """
    if n <= 0:
        return []
    pa_rows = plan[plan["projection"] == 1].sort_values("index")
    if len(pa_rows) == 0:
        return []
    first = pa_rows.drop_duplicates("patient_id", keep="first")
    rest = pa_rows[~pa_rows["filestem"].isin(first["filestem"])]
    chosen: list[str] = []
    for pool in (first, rest):
        need = n - len(chosen)
        if need <= 0:
            break
        pool = pool.sort_values(["age", "index"], kind="stable")
        take = min(need, len(pool))
        ranks = np.unique(np.round(np.linspace(0, len(pool) - 1, take)).astype(int))
        chosen.extend(pool["filestem"].iloc[ranks].tolist())
    return sorted(chosen)


def write_seed_image(
    seed_dir: Path, filestem: str, contours: dict[str, np.ndarray], shape: tuple[int, int], bone_order: tuple[str, ...]
) -> list[dict]:
    """Rasterise one image's truth contours into 0/255 masks; return its rows of ``annotations.csv``."""
    rows = []
    for bone in bone_order:
        if bone not in contours:
            continue
        mask = polygon_mask(contours[bone], shape)
        if not mask.any():  # outside the field of view: absent in this image
            continue
        rel = f"{filestem}/{bone}.png"
        write_png(Path(seed_dir) / rel, (mask * 255).astype(np.uint8))
        rows.append({"filestem": filestem, "structure": bone, "mask_path": rel})
    return rows


def write_annotation_index(seed_dir: Path, rows: list[dict]) -> None:
    lines = ["filestem,structure,mask_path"] + [f"{r['filestem']},{r['structure']},{r['mask_path']}" for r in rows]
    write_text_atomic(Path(seed_dir) / "annotations.csv", "\n".join(lines) + "\n")
    write_text_atomic(Path(seed_dir) / "README.md", README)
