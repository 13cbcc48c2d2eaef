"""check_images: every ingested image decoded once; unreadable or mis-sized ones are rejects with the reason."""

import numpy as np
import pandas as pd
import pytest

from denseseg.io.ingested import check_images, read_working_frames
from denseseg.io.png import write_png


def _manifest(rows):
    return pd.DataFrame(rows, columns=["filestem", "image_path", "height", "width"])


def test_readable_images_their_size_and_the_rejects_with_reasons(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((6, 4), np.uint16))
    write_png(tmp_path / "b.png", np.zeros((5, 4), np.uint16))  # not the manifest's size
    (tmp_path / "c.png").write_bytes(b"not a png")
    manifest = _manifest([("a", "a.png", 6, 4), ("b", "b.png", 6, 4), ("c", "c.png", 6, 4), ("d", "missing.png", 6, 4)])
    readable, size, rejects = check_images(tmp_path, manifest)
    assert readable == ["a"] and size == (6, 4)
    reasons = dict(rejects)
    assert set(reasons) == {"b", "c", "d"}
    assert "differs from the manifest's (6, 4)" in reasons["b"] and "unreadable" in reasons["c"]


def test_no_readable_image_or_several_sizes_is_an_error(tmp_path):
    (tmp_path / "c.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="no readable ingested image"):
        check_images(tmp_path, _manifest([("c", "c.png", 6, 4)]))
    write_png(tmp_path / "a.png", np.zeros((6, 4), np.uint16))
    write_png(tmp_path / "b.png", np.zeros((5, 4), np.uint16))
    with pytest.raises(ValueError, match="several working sizes"):
        check_images(tmp_path, _manifest([("a", "a.png", 6, 4), ("b", "b.png", 5, 4)]))


def test_working_frames_need_ingests_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"manifest.parquet: missing; the image frames .* come from ingest"):
        read_working_frames(tmp_path / "manifest.parquet")
