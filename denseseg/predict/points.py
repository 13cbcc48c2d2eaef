"""Extra template points to locate on a new radiograph, without retraining (DenseSeg models only).

A points file is a CSV with a ``structure`` column and either ``x,y`` (a
position in the template's coordinates, i.e. working pixels of the model's mean
training shape, the ``points`` of the model's template) or ``u,v`` (the uv
value itself, in the model's uv frame); an optional ``name`` labels each row.
Template positions become uv values by ``Template.to_uv``, which is the
cartesian frame: a model trained on polar uv maps takes ``u,v`` only.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from denseseg.predict.radiograph import RadiographError
from denseseg.shape.template import Template

POSITION_COLUMNS = {"xy": ("x", "y"), "uv": ("u", "v")}


@dataclass(frozen=True)
class ExtraPoints:
    """Validated rows of a points file.

    Attributes:
        source: the file.
        names: (M,) labels (the ``name`` column, or the row number).
        structures: (M,) structure of each point.
        given: ``xy`` (template coordinates) or ``uv``.
        values: (M, 2) the values as given.
        uv: (M, 2) uv targets in the model's uv frame.
    """

    source: Path
    names: tuple[str, ...]
    structures: tuple[str, ...]
    given: str
    values: np.ndarray
    uv: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RadiographError(f"{where}: column {column}: not a number: {text!r}") from None
    if not math.isfinite(value):
        raise RadiographError(f"{where}: column {column}: not finite: {text!r}")
    return value


def read_points(path: str | os.PathLike, template: Template) -> ExtraPoints:
    """Read and check a points file against the model's template; RadiographError naming the row otherwise."""
    path = Path(path)
    if not path.is_file():
        raise RadiographError(f"{path}: points file not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise RadiographError(f"{path}: not a readable CSV ({type(err).__name__}: {err})".replace("\n", " ")) from None
    columns = [c.strip() for c in table.columns]
    table.columns = columns
    kinds = [k for k, cols in POSITION_COLUMNS.items() if set(cols) <= set(columns)]
    if "structure" not in columns or len(kinds) != 1:
        raise RadiographError(
            f"{path}: columns structure,x,y (template coordinates) or structure,u,v expected, found {','.join(columns)}"
        )
    given = kinds[0]
    allowed = {"structure", "name", *POSITION_COLUMNS[given]}
    unexpected = [c for c in columns if c not in allowed]
    if unexpected:
        raise RadiographError(f"{path}: unexpected column(s) {', '.join(unexpected)} (allowed: {', '.join(allowed)})")
    if table.empty:
        raise RadiographError(f"{path}: no points (the file has a header only)")
    names, structures, values = [], [], []
    for line, row in enumerate(table.to_dict("records"), start=2):
        where = f"{path} line {line}"
        structure = row["structure"].strip()
        if structure not in template.structures:
            raise RadiographError(f"{where}: unknown structure {structure!r}; known: {', '.join(template.structures)}")
        a, b = POSITION_COLUMNS[given]
        values.append((_number(row[a], a, where), _number(row[b], b, where)))
        structures.append(structure)
        names.append(row.get("name", "").strip() or str(line - 2))
    values = np.asarray(values, np.float64)
    if given == "xy":
        uv = np.stack([template.to_uv(s, xy) for s, xy in zip(structures, values)])
    else:
        uv = values.copy()
    return ExtraPoints(path, tuple(names), tuple(structures), given, values, uv)
