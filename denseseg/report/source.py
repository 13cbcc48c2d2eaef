"""What every report section is built from: a parsed JSON input (``Source``) and the error of a malformed one."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from denseseg.evaluation.tables import format_cell
from denseseg.report.document import DASH, Note


class ReportInputError(ValueError):
    """An input of the report is present but not what its stage writes (one line, naming the file)."""


@dataclass(frozen=True)
class Source:
    """A parsed JSON input and the file it came from: ``source["a", "b"]`` is ``data["a"]["b"]`` or an error."""

    name: str
    data: Mapping

    def __getitem__(self, path):
        keys = path if isinstance(path, tuple) else (path,)
        node = self.data
        for depth, key in enumerate(keys):
            if not isinstance(node, Mapping) or key not in node:
                raise ReportInputError(f"{self.name}: no key {'.'.join(map(str, keys[: depth + 1]))!r}")
            node = node[key]
        return node

    def get(self, path, default=None):
        try:
            return self[path]
        except ReportInputError:
            return default

    def number(self, path) -> float | int:
        value = self[path]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            keys = path if isinstance(path, tuple) else (path,)
            raise ReportInputError(f"{self.name}: {'.'.join(map(str, keys))!r} is {value!r}, not a number")
        return value


def finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def missing_note(what: str, stage: str) -> Note:
    return Note(f"{what}: not run (stage `{stage}`); its output is absent, so this part of the report is empty.")


def mean_std(stats, scale: float = 1.0, precision: int = 1) -> str:
    if not isinstance(stats, Mapping):
        return DASH
    return format_cell(stats.get("mean"), stats.get("std"), scale, precision)
