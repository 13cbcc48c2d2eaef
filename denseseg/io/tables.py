"""Parquet tables with explicit schemas, checked on read and on write.

Every artefact table of the pipeline has a schema here, so that a renamed or
missing column is a one-line error naming the file, never a KeyError deep down.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from denseseg.io.atomic import atomic_file


class SchemaError(ValueError):
    """A table does not have the columns or types its artefact promises."""


def _schema(*fields: tuple[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(name, dtype) for name, dtype in fields])


# the manifest's collimator bands, in WorkingFrame.field's order (top, left, bottom, right)
FIELD_COLUMNS = ("field_top", "field_left", "field_bottom", "field_right")

# ingest: one row per kept image
MANIFEST = _schema(
    ("filestem", pa.string()),
    ("patient_id", pa.string()),
    ("study_number", pa.int32()),
    ("age", pa.float32()),
    ("sex", pa.string()),
    ("laterality", pa.string()),  # as in the release: L or R
    ("flipped", pa.bool_()),  # mirrored to a left hand by ingest
    ("projection", pa.int8()),
    ("cast", pa.bool_()),
    ("metal", pa.bool_()),
    ("fracture_visible", pa.bool_()),
    ("osteopenia", pa.bool_()),
    ("ao_classification", pa.string()),
    ("device_manufacturer", pa.string()),
    ("pixel_spacing_mm", pa.float32()),  # of the original image
    ("orig_height", pa.int32()),
    ("orig_width", pa.int32()),
    ("height", pa.int32()),  # working resolution
    ("width", pa.int32()),
    ("scale", pa.float32()),  # working px per original px (isotropic)
    ("pad_top", pa.float32()),
    ("pad_left", pa.float32()),
    # collimator bands (denseseg.preprocessing.field): depth in working px inside the footprint, 0 for none
    *((name, pa.float32()) for name in FIELD_COLUMNS),
    ("image_path", pa.string()),  # relative to the ingest output folder
)

# any stage: items that were excluded, with the reason
REJECTS = _schema(
    ("filestem", pa.string()),
    ("stage", pa.string()),
    ("reason", pa.string()),
)

# landmarks in working-resolution pixels, (x, y) = (column, row)
LANDMARKS = _schema(
    ("filestem", pa.string()),
    ("structure", pa.string()),
    ("index", pa.int16()),  # within the structure
    ("x", pa.float32()),
    ("y", pa.float32()),
)

# phantom truth: dense atlas contour points in ORIGINAL image pixels (the file as stored)
TRUTH_CONTOURS = _schema(
    ("filestem", pa.string()),
    ("structure", pa.string()),
    ("point", pa.int32()),  # index along the atlas contour (closed, counter-clockwise in a left hand)
    ("x", pa.float32()),
    ("y", pa.float32()),
)

SPLITS = _schema(
    ("filestem", pa.string()),
    ("patient_id", pa.string()),
    ("split", pa.string()),  # train | val | test
)


def check_schema(table: pa.Table, schema: pa.Schema, source: str) -> pa.Table:
    """Return ``table`` cast to ``schema``; raise SchemaError naming ``source`` otherwise."""
    missing = [name for name in schema.names if name not in table.column_names]
    if missing:
        raise SchemaError(f"{source}: missing column(s) {', '.join(missing)}; found {', '.join(table.column_names)}")
    table = table.select(schema.names)
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
        raise SchemaError(f"{source}: column types do not match the schema: {err}") from None


def write_table(df: pd.DataFrame | pa.Table, path: str | os.PathLike, schema: pa.Schema) -> None:
    """Write a table atomically as zstd Parquet after checking it against ``schema``."""
    table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
    table = check_schema(table, schema, str(path)).replace_schema_metadata(None)
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: str | os.PathLike, schema: pa.Schema, filters=None) -> pd.DataFrame:
    """Read a Parquet table and check its schema; a clear error for a missing file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: table not found (did the stage that writes it run?)")
    table = pq.read_table(path, filters=filters)
    return check_schema(table, schema, str(path)).to_pandas()


def empty_frame(schema: pa.Schema) -> pd.DataFrame:
    return schema.empty_table().to_pandas()


# contours: ordered outline points per image and structure, working pixels, (x, y).
# Closed (first point not repeated), counter-clockwise on screen, starting at the
# top-most point; evenly spaced by arc length. Sharded like the mask store.
CONTOURS = _schema(
    ("filestem", pa.string()),
    ("structure", pa.string()),
    ("point", pa.int32()),  # index along the outline
    ("x", pa.float32()),
    ("y", pa.float32()),
    ("border", pa.bool_()),  # on the image edge (the field of view cut the bone here)
)

# register: quality control per image and structure
QC = _schema(
    ("filestem", pa.string()),
    ("structure", pa.string()),
    ("dice", pa.float32()),  # landmark polygon vs mask; NaN when not registered
    ("residual_px", pa.float32()),  # symmetric mean closest-point distance after registration
    ("order_reversals", pa.int32()),  # landmarks stepping backwards along the outline (a fold)
    ("inverse_gap_px", pa.float32()),  # largest forward/reverse fit disagreement along the outline
    ("passed", pa.bool_()),  # this bone passed QC
    ("image_passed", pa.bool_()),  # every bone of the image passed: its landmarks are released
    ("reason", pa.string()),  # empty when passed
)

# phantom truth: one row per PA image. ``bones_present``: ossified bones (WRIST order), each
# with a row group in TRUTH_CONTOURS; ``bones_visible``: those with at least one pixel
# inside the image (a cropped view can leave a present bone out of the field).
TRUTH_IMAGES = _schema(
    ("filestem", pa.string()),
    ("patient_id", pa.string()),
    ("age", pa.float32()),  # chronological, as in dataset.csv
    ("bone_age", pa.float32()),  # the skeletal age the anatomy was grown to
    ("sex", pa.string()),
    ("laterality", pa.string()),
    ("flipped", pa.bool_()),  # stored mirrored (a right hand); truth is in stored coordinates
    ("height", pa.int32()),
    ("width", pa.int32()),
    ("px_per_mm", pa.float32()),  # true magnification of the phantom (not the csv pixel_spacing)
    ("cast", pa.bool_()),
    ("metal", pa.bool_()),
    ("radius_physis_open", pa.bool_()),
    ("ulna_physis_open", pa.bool_()),
    ("bones_present", pa.list_(pa.string())),
    ("bones_visible", pa.list_(pa.string())),
)


def reasons_by_item(path: str | os.PathLike) -> dict[str, list[str]]:
    """{filestem: its reasons, in file order} from a REJECTS table; empty when there is no such file."""
    if not Path(path).exists():
        return {}
    out: dict[str, list[str]] = {}
    for row in read_table(path, REJECTS).itertuples():
        out.setdefault(row.filestem, []).append(row.reason)
    return out


def reject_frame(rows, stage: str, by: tuple[str, ...] = ("filestem",)) -> pd.DataFrame:
    """REJECTS rows of one stage from (filestem, reason) pairs, sorted (stably) by the ``by`` columns."""
    frame = pd.DataFrame([(filestem, stage, reason) for filestem, reason in rows], columns=REJECTS.names)
    return frame.sort_values(list(by), kind="stable", ignore_index=True)
