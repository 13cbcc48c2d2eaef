"""QC: a good landmark polygon passes, a shifted one fails with a reason; an image passes when every bone does."""

from types import SimpleNamespace

import numpy as np

from denseseg.shape.contours import outline, resample_closed
from denseseg.shape.quality import QCParams, bone_qc, image_qc


def test_good_and_bad_landmarks():
    yy, xx = np.mgrid[:60, :60]
    mask = (xx - 30) ** 2 + (yy - 30) ** 2 <= 15**2
    landmarks = resample_closed(outline(mask), 30)
    good = bone_qc(landmarks, mask, 0.2, 0.8)
    assert good.passed and good.dice > 0.95 and good.reason == ""
    bad = bone_qc(landmarks + [14.0, 0.0], mask, 0.2, 0.8)
    assert not bad.passed and "dice" in bad.reason
    nan = bone_qc(landmarks * np.nan, mask, 0.2, 0.8)
    assert not nan.passed


def test_residual_bound():
    yy, xx = np.mgrid[:60, :60]
    mask = (xx - 30) ** 2 + (yy - 30) ** 2 <= 15**2
    landmarks = resample_closed(outline(mask), 30)
    assert not bone_qc(landmarks, mask, 3.0, 0.8, max_residual_px=1.0).passed


def test_an_image_fails_with_every_bone_s_reason():
    yy, xx = np.mgrid[:60, :60]
    mask = (xx - 30) ** 2 + (yy - 30) ** 2 <= 15**2
    good = SimpleNamespace(landmarks=resample_closed(outline(mask), 30), residual_px=0.2)
    shifted = SimpleNamespace(landmarks=good.landmarks + [14.0, 0.0], residual_px=0.3)
    masks = np.stack([mask, mask, mask, mask])
    structures = ["a", "b", "c", "d"]  # a passes, b fails its Dice, c lost in contours, d lost in registration
    params = QCParams(dice_threshold=0.8, max_residual_px=None, require_all_bones=True)
    qc = image_qc(
        structures,
        {"a": good, "b": shifted},
        masks,
        {"a": 0, "b": 0, "d": 0},
        {"d": "registration failed: x"},
        ["c: empty mask"],
        params,
    )
    assert not qc.passed and [r[0] for r in qc.rows] == structures
    assert qc.rows[0][3] and qc.rows[0][4] == "" and not qc.rows[1][3]
    assert qc.rows[2][1:] == (qc.rows[2][1], qc.rows[2][2], False, "empty mask") and np.isnan(qc.rows[2][1])
    assert [r.split(":")[0] for r in qc.reasons] == ["b", "c", "d"] and qc.reasons[1] == "c: empty mask"
    assert qc.reasons[2] == "d: registration failed: x"
    # without require_all_bones a bone the image does not have (c) no longer fails it; one it has (d) does
    lenient = image_qc(
        structures,
        {"a": good, "b": good},
        masks,
        {"a": 0, "b": 0, "d": 0},
        {"d": "registration failed: x"},
        ["c: empty mask"],
        params.model_copy(update={"require_all_bones": False}),
    )
    assert lenient.reasons == ["d: registration failed: x"]
    assert image_qc(["a"], {"a": good}, masks[:1], {"a": 0}, {}, [], params).passed
