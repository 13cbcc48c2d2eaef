"""QC: a good landmark polygon passes; a shifted, folded or inconsistent one fails with its reason; an image
passes when every bone does."""

from types import SimpleNamespace

import numpy as np

from denseseg.shape.contours import outline, resample_closed
from denseseg.shape.polyline import order_reversals
from denseseg.shape.quality import QCParams, bone_qc, image_qc

PARAMS = QCParams(
    dice_threshold=0.8, max_residual_px=None, max_order_reversals=None, max_inverse_gap_px=None, require_all_bones=True
)


def _disc():
    yy, xx = np.mgrid[:60, :60]
    mask = (xx - 30) ** 2 + (yy - 30) ** 2 <= 15**2
    return mask, outline(mask)


def _bone(landmarks, residual_px=0.2, inverse_gap_px=0.0):
    return SimpleNamespace(landmarks=landmarks, residual_px=residual_px, inverse_gap_px=inverse_gap_px)


def test_good_and_bad_landmarks():
    mask, contour = _disc()
    landmarks = resample_closed(contour, 30)
    good = bone_qc(_bone(landmarks), mask, contour, PARAMS)
    assert good.passed and good.dice > 0.95 and good.reason == "" and good.order_reversals == 0
    bad = bone_qc(_bone(landmarks + [14.0, 0.0]), mask, contour, PARAMS)
    assert not bad.passed and "dice" in bad.reason
    nan = bone_qc(_bone(landmarks * np.nan), mask, contour, PARAMS)
    assert not nan.passed


def test_residual_and_inverse_gap_bounds():
    mask, contour = _disc()
    landmarks = resample_closed(contour, 30)
    bounded = PARAMS.model_copy(update={"max_residual_px": 1.0, "max_inverse_gap_px": 2.0})
    assert not bone_qc(_bone(landmarks, residual_px=3.0), mask, contour, bounded).passed
    gap = bone_qc(_bone(landmarks, inverse_gap_px=2.5), mask, contour, bounded)
    assert not gap.passed and gap.reason == "inverse-consistency gap 2.50 px > 2.0" and gap.inverse_gap_px == 2.5
    assert bone_qc(_bone(landmarks, inverse_gap_px=1.5), mask, contour, bounded).passed


def test_order_reversals_count_the_folds():
    _, contour = _disc()
    landmarks = resample_closed(contour, 30)
    assert order_reversals(landmarks, contour) == 0
    assert order_reversals(np.roll(landmarks, 7, axis=0), contour) == 0  # another start, same order
    assert order_reversals(landmarks[::-1], contour) == 30  # the whole order reversed: every step, the wrap too
    folded = landmarks.copy()
    folded[[10, 11]] = folded[[11, 10]]  # two neighbours swapped: one step backwards
    assert order_reversals(folded, contour) == 1
    mask = _disc()[0]
    # the polygon's Dice forgives a swap of neighbours; the order bound does not
    strict = PARAMS.model_copy(update={"max_order_reversals": 0})
    q = bone_qc(_bone(folded), mask, contour, strict)
    assert q.dice > 0.9 and not q.passed and q.reason == "1 landmark order reversal(s) > 0"
    assert bone_qc(_bone(folded), mask, contour, PARAMS).passed


def test_an_image_fails_with_every_bone_s_reason():
    mask, contour = _disc()
    good = _bone(resample_closed(contour, 30))
    shifted = _bone(good.landmarks + [14.0, 0.0], residual_px=0.3)
    masks = np.stack([mask, mask, mask, mask])
    structures = ["a", "b", "c", "d"]  # a passes, b fails its Dice, c lost in contours, d lost in registration
    outlines = {"a": contour, "b": contour, "d": contour}
    qc = image_qc(
        structures,
        {"a": good, "b": shifted},
        masks,
        outlines,
        {"d": "registration failed: x"},
        ["c: empty mask"],
        PARAMS,
    )
    assert not qc.passed and [r[0] for r in qc.rows] == structures
    passed, reason = 5, 6  # positions in a row (QC_COLUMNS[1:-1])
    assert qc.rows[0][passed] and qc.rows[0][reason] == "" and not qc.rows[1][passed]
    assert qc.rows[2][passed:] == (False, "empty mask") and np.isnan(qc.rows[2][1])
    assert [r.split(":")[0] for r in qc.reasons] == ["b", "c", "d"] and qc.reasons[1] == "c: empty mask"
    assert qc.reasons[2] == "d: registration failed: x"
    # without require_all_bones a bone the image does not have (c) no longer fails it; one it has (d) does
    lenient = image_qc(
        structures,
        {"a": good, "b": good},
        masks,
        outlines,
        {"d": "registration failed: x"},
        ["c: empty mask"],
        PARAMS.model_copy(update={"require_all_bones": False}),
    )
    assert lenient.reasons == ["d: registration failed: x"]
    assert image_qc(["a"], {"a": good}, masks[:1], {"a": contour}, {}, [], PARAMS).passed
