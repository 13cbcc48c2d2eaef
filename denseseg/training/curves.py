"""Training curves as a CSV that ``dvc plots`` reads (one row per epoch).

Wall-clock "seconds" are left out by default: same params, same bytes, and the
curve is a DVC output.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence

from denseseg.io.atomic import write_text_atomic


def write_curve(path: str | os.PathLike, history: Sequence[dict], drop: Sequence[str] = ("seconds",)) -> None:
    """Write ``history`` (TrainingResult.history) as CSV, columns in order of first appearance.

    A metric missing from an epoch (no validation that epoch) and non-finite values
    are written as empty cells; floats are written with ``repr`` precision.
    """
    columns: list[str] = []
    for record in history:
        for key in record:
            if key not in drop and key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in history:
        writer.writerow([_cell(record.get(key)) for key in columns])
    write_text_atomic(path, buffer.getvalue())


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)
