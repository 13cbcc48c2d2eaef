"""Writing a phantom release: images by shard, then the csv and the truth tables.

Why: the release must be writable in parallel shards (thousands of images at
real size) while its bytes stay independent of the shard layout. A shard writes
its PNGs and a truth part file; ``merge_truth`` streams the parts back in image
order into fixed-size row groups, so memory stays flat and the output is the
same whatever the shards were.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from denseseg.io.atomic import atomic_file, write_bytes_atomic
from denseseg.io.png import write_png
from denseseg.io.tables import TRUTH_CONTOURS, TRUTH_IMAGES, check_schema, write_table
from denseseg.phantom.metadata import csv_bytes, image_path
from denseseg.phantom.scene import ImageSpec, RenderSettings, synthesise

IMAGES_PER_ROW_GROUP = 32


def spec_from_row(row) -> ImageSpec:
    return ImageSpec(
        index=int(row["index"]),
        filestem=str(row["filestem"]),
        patient_id=int(row["patient_id"]),
        sex=str(row["gender"]),
        age=float(row["age"]),
        laterality=str(row["laterality"]),
        projection=int(row["projection"]),
        cast=bool(row["cast"]),
        metal=bool(row["metal"]),
        osteopenia=bool(row["osteopenia"]),
    )


def part_name(first_index: int) -> str:
    return f"part-{first_index:07d}.parquet"


def render_shard(rows: pd.DataFrame, seed: int, settings: RenderSettings, release_dir: Path, parts_dir: Path) -> dict:
    """Render the images of ``rows`` into ``release_dir``; PA truth goes to one part file in ``parts_dir``."""
    release_dir, parts_dir = Path(release_dir), Path(parts_dir)
    contour_tables, image_rows = [], []
    for _, row in rows.iterrows():
        result = synthesise(spec_from_row(row), seed, settings)
        write_png(release_dir / image_path(row), result.image)
        if int(row["projection"]) != 1:
            continue
        h, w = result.image.shape
        visible = []
        for bone, pts in result.truth.items():
            n = len(pts)
            contour_tables.append(
                pa.table(
                    {
                        "filestem": pa.array([row["filestem"]] * n, pa.string()),
                        "structure": pa.array([bone] * n, pa.string()),
                        "point": pa.array(np.arange(n, dtype=np.int32)),
                        "x": pa.array(pts[:, 0]),
                        "y": pa.array(pts[:, 1]),
                    }
                )
            )
            inside = (pts[:, 0] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= h - 0.5)
            if inside.any():
                visible.append(bone)
        info = result.info
        image_rows.append(
            {
                "filestem": row["filestem"],
                "patient_id": str(int(row["patient_id"])),
                "age": float(row["age"]),
                "bone_age": info["bone_age"],
                "sex": row["gender"],
                "laterality": row["laterality"],
                "flipped": info["flipped"],
                "height": h,
                "width": w,
                "px_per_mm": info["px_per_mm"],
                "cast": bool(row["cast"]),
                "metal": bool(row["metal"]),
                "radius_physis_open": info["radius_physis_open"],
                "ulna_physis_open": info["ulna_physis_open"],
                "bones_present": info["present"],
                "bones_visible": visible,
            }
        )
    first = int(rows["index"].min()) if len(rows) else 0
    contours = pa.concat_tables(contour_tables) if contour_tables else TRUTH_CONTOURS.empty_table()
    contours = check_schema(contours, TRUTH_CONTOURS, "phantom truth part")
    with atomic_file(parts_dir / ("contours-" + part_name(first))) as tmp:
        pq.write_table(contours, tmp, compression="zstd")
    images = pd.DataFrame(image_rows, columns=TRUTH_IMAGES.names)
    write_table(images, parts_dir / ("images-" + part_name(first)), TRUTH_IMAGES)
    return {"first_index": first, "n_images": int(len(rows)), "n_truth": len(image_rows)}


def write_csv(plan: pd.DataFrame, release_dir: Path) -> None:
    write_bytes_atomic(Path(release_dir) / "dataset.csv", csv_bytes(plan))


def merge_truth(parts_dir: Path, truth_dir: Path) -> tuple[int, int]:
    """Stream the part files (in image order) into ``contours.parquet`` and ``images.parquet``."""
    parts_dir, truth_dir = Path(parts_dir), Path(truth_dir)
    contour_parts = sorted(parts_dir.glob("contours-part-*.parquet"))
    image_parts = sorted(parts_dir.glob("images-part-*.parquet"))
    images = [pq.read_table(p) for p in image_parts]
    images_table = pa.concat_tables(images) if images else TRUTH_IMAGES.empty_table()
    write_table(images_table, truth_dir / "images.parquet", TRUTH_IMAGES)
    n_points = 0
    schema = TRUTH_CONTOURS
    with atomic_file(truth_dir / "contours.parquet") as tmp:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            buffer: list[pa.Table] = []

            def flush():
                nonlocal buffer
                if buffer:
                    writer.write_table(pa.concat_tables(buffer), row_group_size=1 << 30)
                    buffer = []

            for path in contour_parts:
                table = check_schema(pq.read_table(path), schema, str(path))
                n_points += table.num_rows
                if table.num_rows == 0:
                    continue
                filestems = table.column("filestem").to_numpy(zero_copy_only=False)
                starts = np.flatnonzero(np.r_[True, filestems[1:] != filestems[:-1]])
                bounds = np.r_[starts, len(filestems)]
                for a, b in zip(bounds[:-1], bounds[1:]):
                    buffer.append(table.slice(int(a), int(b - a)))
                    if len(buffer) == IMAGES_PER_ROW_GROUP:
                        flush()
            flush()
    return images_table.num_rows, n_points


def read_truth_contours(truth_path: Path, filestem: str) -> dict[str, np.ndarray]:
    """Truth contours of one image: bone -> (N, 2) float32 (x, y) in stored-image pixels."""
    table = pq.read_table(truth_path, filters=[("filestem", "=", filestem)])
    df = check_schema(table, TRUTH_CONTOURS, str(truth_path)).to_pandas()
    out = {}
    for bone, group in df.groupby("structure", sort=False):
        group = group.sort_values("point")
        out[str(bone)] = group[["x", "y"]].to_numpy(np.float32)
    return out
