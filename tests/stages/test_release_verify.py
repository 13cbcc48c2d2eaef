"""verify_checksums (denseseg.io.checksums) against a SHA256SUMS written with hashlib, in sha256sum's format.

The release-stage tests only change an existing file; a file added to a
release, one removed, or one in a subfolder must be reported too, and an intact
release must pass the standard ``sha256sum -c`` as well as ``verify_checksums``.
"""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from denseseg.io.checksums import checksums, verify_checksums, write_checksums

FILES = {"release.json": b'{"name": "x"}\n', "masks/shard-0000.parquet": b"PAR1\x00\x01", "DATASHEET.md": b"# sheet\n"}


def _release(root: Path) -> Path:
    """A folder with FILES and a SHA256SUMS ("<hex>  <relative path>" lines) computed with hashlib."""
    for name, data in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    lines = [f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in sorted(FILES.items())]
    (root / "SHA256SUMS").write_text("".join(lines))
    return root


def test_checksums_are_the_sha256_of_every_file_but_the_sums_file(tmp_path):
    folder = _release(tmp_path)
    assert checksums(folder) == {name: hashlib.sha256(data).hexdigest() for name, data in sorted(FILES.items())}


def test_an_intact_release_passes_and_so_does_sha256sum(tmp_path):
    folder = _release(tmp_path)
    assert verify_checksums(folder) == []
    if shutil.which("sha256sum"):
        assert subprocess.run(["sha256sum", "--check", "--quiet", "SHA256SUMS"], cwd=folder).returncode == 0


@pytest.mark.parametrize("added", ["notes.txt", "masks/shard-0001.parquet"])
def test_a_file_added_to_a_release_is_reported(tmp_path, added):
    folder = _release(tmp_path)
    (folder / added).write_bytes(b"not listed")
    assert verify_checksums(folder) == [added]


def test_a_removed_file_and_a_changed_file_are_reported_sorted(tmp_path):
    folder = _release(tmp_path)
    (folder / "release.json").unlink()
    (folder / "masks/shard-0000.parquet").write_bytes(b"PAR1\x00\x02")
    assert verify_checksums(folder) == ["masks/shard-0000.parquet", "release.json"]


def test_written_checksums_are_what_hashlib_writes(tmp_path):
    (tmp_path / "a").mkdir()
    expected = _release(tmp_path / "a") / "SHA256SUMS"
    folder = tmp_path / "b"
    shutil.copytree(tmp_path / "a", folder)
    (folder / "SHA256SUMS").unlink()
    sums = write_checksums(folder)
    assert (folder / "SHA256SUMS").read_bytes() == expected.read_bytes()
    assert sums == checksums(folder) and verify_checksums(folder) == []
