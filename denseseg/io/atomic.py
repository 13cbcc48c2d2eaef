"""Atomic writes: a stage killed half way leaves nothing a rerun would trust.

Files are written to a temporary sibling and renamed into place; directories are
built in a ``<name>.partial`` sibling and swapped in whole when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it to ``dest`` on success."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(dest: str | os.PathLike, data: bytes) -> None:
    with atomic_file(dest) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(dest: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(dest, text.encode("utf-8"))


def partial_dir(dest: str | os.PathLike) -> Path:
    """A fresh, empty staging directory for ``dest`` (leftovers of a killed run are removed)."""
    dest = Path(dest)
    staging = dest.with_name(dest.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


def commit_dir(staging: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Replace ``dest`` by the completed ``staging`` directory."""
    staging, dest = Path(staging), Path(dest)
    if dest.exists():
        old = dest.with_name(dest.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(dest, old)
        os.replace(staging, dest)
        shutil.rmtree(old)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, dest)


def json_ready(obj):
    """JSON has no NaN or infinity: non-finite floats become null, in nested dicts and lists too."""
    import math

    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {key: json_ready(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(value) for value in obj]
    return obj


def write_json_atomic(dest: str | os.PathLike, obj) -> None:
    """Deterministic, valid JSON (sorted keys, fixed indent, missing figures as null), written atomically."""
    import json

    write_text_atomic(dest, json.dumps(json_ready(obj), indent=2, sort_keys=True, allow_nan=False) + "\n")
