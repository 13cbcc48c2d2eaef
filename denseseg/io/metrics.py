"""A stage's metrics as two files: numbers for DVC, words beside them.

``dvc metrics show`` and ``dvc metrics diff`` read numbers; a refiner's
description, a uv mode or a method's name would make them unreadable. A stage
therefore writes ``<name>.json`` (numbers only) and ``<name>-info.json`` (the
rest, same nesting); readers merge the two back (``read_metrics``), so which file
holds a value never changes what it reads.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def split_metrics(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(numbers, info): a stage's metrics split for DVC, keeping the nesting on both sides.

    Finite ints and floats are numbers, booleans become 0 / 1; lists become
    dicts keyed by position (DVC shows a list as one unreadable value). Strings
    and anything else not numeric go to ``info``; missing figures (None, NaN,
    infinity) are dropped, so that ``dvc metrics diff`` shows them as absent.
    """
    numbers: dict[str, Any] = {}
    info: dict[str, Any] = {}
    for key, value in metrics.items():
        key = str(key)
        if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy scalar
            value = value.item()
        if isinstance(value, (list, tuple)):
            value = {str(i): v for i, v in enumerate(value)}
        if isinstance(value, dict):
            sub_numbers, sub_info = split_metrics(value)
            if sub_numbers:
                numbers[key] = sub_numbers
            if sub_info:
                info[key] = sub_info
        elif isinstance(value, bool):
            numbers[key] = int(value)
        elif isinstance(value, int) or isinstance(value, float) and math.isfinite(value):
            numbers[key] = value
        elif isinstance(value, str):
            info[key] = value
        elif value is not None and not isinstance(value, float):
            info[key] = str(value)
    return numbers, info


def merge_metrics(numbers: dict, info: dict) -> dict:
    """``numbers`` with ``info`` merged in, recursively: the inverse of ``split_metrics`` (lists stay dicts)."""
    out = dict(numbers)
    for key, value in info.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_metrics(out[key], value) if both else value
    return out


def read_metrics(folder: Path, name: str) -> dict:
    """A stage's metrics as it reported them: ``<name>.json`` with ``<name>-info.json`` merged in.

    Missing files read as empty.
    """
    parts = [Path(folder) / f"{name}.json", Path(folder) / f"{name}-info.json"]
    numbers, info = (json.loads(p.read_text()) if p.exists() else {} for p in parts)
    return merge_metrics(numbers, info)
