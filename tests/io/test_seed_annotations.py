"""Seed annotations: masks mapped into the working frame; a seed with any bad row is rejected, with every reason."""

import numpy as np
import pandas as pd
import pytest

from denseseg.io.png import write_png
from denseseg.io.seed_annotations import SeedAnnotationError, read_seed_annotations
from denseseg.preprocessing.working_frame import WorkingFrame

STRUCTURES = ["radius", "ulna"]
FRAME = WorkingFrame.fit(40, 20, 20, 20, flipped=False)  # 40 x 20 original, letterboxed into 20 x 20 at scale 0.5


def _folder(tmp_path, rows):
    pd.DataFrame(rows, columns=["filestem", "structure", "mask_path"]).to_csv(tmp_path / "annotations.csv", index=False)
    return tmp_path


def test_good_seeds_are_warped_and_bad_ones_rejected_with_every_reason(tmp_path):
    block = np.zeros((40, 20), np.uint8)
    block[10:30, 4:16] = 255
    write_png(tmp_path / "good/radius.png", block)
    write_png(tmp_path / "good/ulna.png", block)
    write_png(tmp_path / "bad/radius.png", np.zeros((40, 20), np.uint8))
    write_png(tmp_path / "bad/ulna.png", np.zeros((10, 10), np.uint8))
    rows = [
        ("good", "radius", "good/radius.png"),
        ("good", "ulna", "good/ulna.png"),
        ("bad", "radius", "bad/radius.png"),
        ("bad", "ulna", "bad/ulna.png"),
        ("bad", "femur", "bad/radius.png"),
        ("gone", "radius", "good/radius.png"),
        ("broken", "radius", "good/radius.png"),
    ]
    frames = {"good": FRAME, "bad": FRAME, "broken": FRAME}
    seeds = list(read_seed_annotations(_folder(tmp_path, rows), frames, STRUCTURES, readable={"good", "bad"}))
    assert [s.filestem for s in seeds] == ["bad", "broken", "gone", "good"]
    bad, broken, gone, good = seeds
    np.testing.assert_array_equal(good.masks, np.stack([FRAME.warp_mask(block > 0)] * 2))
    assert good.masks.shape == (2, 20, 20) and good.reason is None and good.masks[0].sum() == 60
    assert bad.masks is None and bad.reason.startswith("seed annotation unusable, image propagated as unlabelled: ")
    assert "radius (bad/radius.png): empty mask" in bad.reason and "unknown structure 'femur'" in bad.reason
    assert "ulna (bad/ulna.png): size (10, 10) differs from the image's (40, 20)" in bad.reason
    assert broken.reason == "seed annotation: its ingested image is unreadable"
    assert "not in the ingest manifest" in gone.reason


def test_paths_outside_the_folder_and_a_bad_list_are_refused(tmp_path):
    seeds = list(read_seed_annotations(_folder(tmp_path, [("a", "radius", "../x.png")]), {"a": FRAME}, STRUCTURES))
    assert "mask path outside the seed folder" in seeds[0].reason
    (tmp_path / "annotations.csv").write_text("filestem,mask\na,b\n")
    with pytest.raises(SeedAnnotationError, match="missing column"):
        list(read_seed_annotations(tmp_path, {}, STRUCTURES))
    (tmp_path / "annotations.csv").unlink()
    with pytest.raises(SeedAnnotationError, match="seed annotations not found"):
        list(read_seed_annotations(tmp_path, {}, STRUCTURES))


def test_cells_are_read_as_written_not_as_missing_values(tmp_path):
    """pandas reads "NA" or "null" as a missing value by default; a filestem is a name and stays one."""
    block = np.zeros((40, 20), np.uint8)
    block[10:30, 4:16] = 255
    write_png(tmp_path / "m/radius.png", block)
    rows = [("NA", "radius", "m/radius.png"), ("null", "radius", "m/radius.png")]
    seeds = list(read_seed_annotations(_folder(tmp_path, rows), {"NA": FRAME, "null": FRAME}, STRUCTURES))
    assert [(s.filestem, s.reason) for s in seeds] == [("NA", None), ("null", None)]
    assert all(s.masks[0].sum() == 60 and not s.masks[1].any() for s in seeds)
