"""QC: a good landmark polygon passes, a shifted one fails with a reason."""

import numpy as np

from denseseg.shape.contours import outline, resample_closed
from denseseg.shape.quality import bone_qc


def test_good_and_bad_landmarks():
    yy, xx = np.mgrid[:60, :60]
    mask = (xx - 30) ** 2 + (yy - 30) ** 2 <= 15**2
    landmarks = resample_closed(outline(mask), 30)
    good = bone_qc(landmarks, mask, 0.2)
    assert good.passed and good.dice > 0.95 and good.reason == ""
    bad = bone_qc(landmarks + [14.0, 0.0], mask, 0.2)
    assert not bad.passed and "dice" in bad.reason
    nan = bone_qc(landmarks * np.nan, mask, 0.2)
    assert not nan.passed


def test_residual_bound():
    yy, xx = np.mgrid[:60, :60]
    mask = (xx - 30) ** 2 + (yy - 30) ** 2 <= 15**2
    landmarks = resample_closed(outline(mask), 30)
    assert not bone_qc(landmarks, mask, 3.0, max_residual_px=1.0).passed
