"""source_digest: the sha256 of a package's Python sources, computed another way by hand."""

from __future__ import annotations

import hashlib

from denseseg.io.checksums import source_digest


def test_source_digest_is_sha256_of_names_and_bytes_in_name_order(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "z.py").write_bytes(b"z = 1\n")
    (a / "m.py").write_bytes(b"m = 2\n")
    (a / "notes.txt").write_bytes(b"not code")  # only *.py counts
    (b / "x.py").write_bytes(b"x = 3\n")
    expected = hashlib.sha256(b"m.py" + b"m = 2\n" + b"z.py" + b"z = 1\n" + b"x.py" + b"x = 3\n").hexdigest()
    assert source_digest(a, b) == expected
    assert source_digest(b, a) != expected  # folders in the order given


def test_source_digest_changes_with_a_byte_and_with_a_rename(tmp_path):
    (tmp_path / "m.py").write_bytes(b"m = 2\n")
    before = source_digest(tmp_path)
    (tmp_path / "m.py").write_bytes(b"m = 3\n")
    changed = source_digest(tmp_path)
    (tmp_path / "m.py").rename(tmp_path / "n.py")
    assert len({before, changed, source_digest(tmp_path)}) == 3
