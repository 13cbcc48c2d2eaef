"""Reading the report's inputs under one project folder: an absent file is None, a malformed one an error.

Every reader takes a path relative to the folder. A file that is not there
(its stage was not run) gives None, so the section says so in a note; a file
that is there but is not what its stage writes raises ``ReportInputError``
naming the file and what is wrong.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from denseseg.io.metrics import merge_metrics
from denseseg.report.document import PNG_SIGNATURE
from denseseg.report.source import ReportInputError, Source


class ReportInputs:
    """The readers of the report's inputs below ``root``."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def json(self, relative: str) -> Source | None:
        """A JSON object as a ``Source`` named after its path."""
        path = self.root / relative
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise ReportInputError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise ReportInputError(f"{path}: a JSON object expected, found {type(data).__name__}")
        return Source(str(path), data)

    def metrics(self, folder: str, name: str) -> Source | None:
        """A stage's metrics ``<folder>/<name>.json`` with its words from ``<name>-info.json`` merged in.

        A stage writes numbers to the first file and words (a mode, a method's
        description) to the second (``stages.base.Stage.write_metrics``); the
        report reads them as one. None when the numbers file is absent.
        """
        numbers = self.json(f"{folder}/{name}.json")
        info = self.json(f"{folder}/{name}-info.json")
        if numbers is None or info is None:
            return numbers
        return Source(f"{numbers.name} (+ {Path(info.name).name})", merge_metrics(dict(numbers.data), info.data))

    def csv(self, relative: str, columns: Sequence[str]) -> pd.DataFrame | None:
        """A CSV table holding at least ``columns``."""
        path = self.root / relative
        if not path.exists():
            return None
        try:
            frame = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError) as err:
            raise ReportInputError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
        return _with_columns(frame, columns, path)

    def parquet(self, relative: str, columns: Sequence[str]) -> pd.DataFrame | None:
        """A Parquet table holding at least ``columns``."""
        path = self.root / relative
        if not path.exists():
            return None
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as err:
            raise ReportInputError(f"{path}: unreadable ({str(err).splitlines()[0]})") from None
        return _with_columns(frame, columns, path)

    def png(self, relative: str) -> bytes | None:
        """The bytes of a PNG file."""
        path = self.root / relative
        if not path.exists():
            return None
        data = path.read_bytes()
        if not data.startswith(PNG_SIGNATURE):
            raise ReportInputError(f"{path}: not a PNG file")
        return data


def _with_columns(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> pd.DataFrame:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportInputError(f"{path}: missing column(s) {', '.join(missing)}")
    return frame
