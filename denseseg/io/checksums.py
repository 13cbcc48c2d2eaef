"""sha256 checksums of a folder, in ``sha256sum``'s format (``<digest>  <relative path>``, one a line).

``sha256sum -c SHA256SUMS`` inside the folder checks what ``write_checksums`` wrote,
and so does ``verify_checksums``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from denseseg.io.atomic import write_text_atomic

SUMS = "SHA256SUMS"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def source_digest(*folders: str | os.PathLike) -> str:
    """sha256 over the ``*.py`` files of each folder (file name and bytes, sorted by name, folders in order).

    Identifies the code a result was made by: a checkpoint made by other code is never resumed.
    """
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(Path(folder).glob("*.py")):
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def checksums(folder: str | os.PathLike) -> dict[str, str]:
    """{relative posix path: sha256} of every file under ``folder`` except SHA256SUMS, sorted."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != SUMS)
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in files}


def write_checksums(folder: str | os.PathLike) -> dict[str, str]:
    """Write ``folder/SHA256SUMS`` for every other file (atomically); returns the checksums."""
    sums = checksums(folder)
    write_text_atomic(Path(folder) / SUMS, "".join(f"{d}  {n}\n" for n, d in sums.items()))
    return sums


def verify_checksums(folder: str | os.PathLike) -> list[str]:
    """Files whose sha256 differs from SHA256SUMS (or are missing/unlisted); empty when intact."""
    listed = {}
    for line in (Path(folder) / SUMS).read_text().splitlines():
        digest, _, name = line.partition("  ")
        listed[name] = digest
    actual = checksums(folder)
    return sorted(n for n in set(listed) | set(actual) if listed.get(n) != actual.get(n))
