import numpy as np
import pytest

from denseseg.anatomy import JSRT


@pytest.fixture(scope="session")
def jsrt_shapes(shared_data):
    """(template of 40 real JSRT shapes, 6 other shapes at 256 x 256 with polygon masks)."""
    from denseseg.io.jsrt import polygon_masks, read_landmarks_csv, to_working
    from denseseg.shape.template import build_template

    lm = read_landmarks_csv(shared_data / "jsrt-landmarks/landmarks.csv")
    names = sorted(lm)
    arr = np.stack([to_working(lm[n]) for n in names[:46]])
    return build_template(arr[:40], JSRT), [(polygon_masks(a), a) for a in arr[40:]]
