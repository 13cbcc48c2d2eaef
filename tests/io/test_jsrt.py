import numpy as np
import pytest

from denseseg.io import jsrt


def test_img_reader_on_synthetic_big_endian_file(tmp_path):
    raw = (np.arange(2048 * 2048, dtype=np.uint32) % 4096).astype(np.uint16).reshape(2048, 2048)
    path = tmp_path / "X.IMG"
    raw.astype(">u2").tofile(path)
    assert path.stat().st_size == 8_388_608
    assert np.array_equal(jsrt.read_img(path, display=False), raw)
    assert np.array_equal(jsrt.read_img(path), 4095 - raw)
    small = jsrt.downsample(jsrt.read_img(path))
    assert small.shape == (256, 256)


def test_img_reader_errors(tmp_path):
    (tmp_path / "short.IMG").write_bytes(b"\0" * 1000)
    with pytest.raises(jsrt.JSRTFormatError, match="8388608"):
        jsrt.read_img(tmp_path / "short.IMG")
    np.full((2048, 2048), 5000, ">u2").tofile(tmp_path / "le.IMG")
    with pytest.raises(jsrt.JSRTFormatError, match="12 bits"):
        jsrt.read_img(tmp_path / "le.IMG")
    with pytest.raises(jsrt.JSRTFormatError, match="missing"):
        jsrt.read_img(tmp_path / "none.IMG")


def test_npy_formats_and_masks(tmp_path):
    rng = np.random.default_rng(0)
    flat = rng.uniform(100, 900, size=(166, 2))
    np.save(tmp_path / "flat.npy", flat.reshape(-1))
    got = jsrt.read_landmarks_npy(tmp_path / "flat.npy")
    assert list(got) == list(jsrt.JSRT.structures) and np.array_equal(got["heart"], flat[94:120])
    for s, folder in jsrt.ORGAN_DIRS.items():
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "C1.npy", got[s])
    per = jsrt.read_landmarks_dir(tmp_path, "C1")
    assert all(np.array_equal(per[s], got[s]) for s in got)
    np.save(tmp_path / "bad.npy", flat[:10])
    with pytest.raises(jsrt.JSRTFormatError, match="shape"):
        jsrt.read_landmarks_npy(tmp_path / "bad.npy", "heart")
    assert np.allclose(jsrt.to_working([[0, 0], [1023, 1023]]), [[-0.375, -0.375], [255.375, 255.375]])
    split = jsrt.jsrt_split([f"N{i:03d}" for i in range(200)][::-1])
    assert split["N159"] == "train" and split["N160"] == "test"


def test_shared_csv(shared_data):
    cases = jsrt.read_landmarks_csv(shared_data / "jsrt-landmarks/landmarks.csv")
    assert len(cases) == 246 and "JPCLN016" not in cases
    masks = jsrt.polygon_masks(jsrt.to_working(cases["JPCLN001"]))
    assert masks.shape == (5, 256, 256) and masks.sum((1, 2)).min() > 100


def test_polygon_masks_put_x_in_columns_and_y_in_rows():
    """A tall, narrow box (x 10..20, y 40..100) as every structure's polygon: an independent oracle by slicing."""
    flat = np.zeros((166, 2))
    start = 0
    for n in jsrt.JSRT.landmark_counts.values():
        t = np.linspace(0, 4, n, endpoint=False)
        corners = np.array([[10, 40], [20, 40], [20, 100], [10, 100], [10, 40]], float)
        side = np.floor(t).astype(int)
        flat[start : start + n] = corners[side] + (t - side)[:, None] * (corners[side + 1] - corners[side])
        start += n
    masks = jsrt.polygon_masks(flat, size=128)
    expected = np.zeros((128, 128), bool)
    expected[41:100, 11:20] = True  # the interior, rows from y and columns from x
    for mask in masks:
        assert mask[41:100, 11:20].all() and not mask[:, 25:].any() and not mask[:35].any()
        assert (mask & ~expected).sum() <= 2 * (100 - 40 + 20 - 10) + 4  # at most the boundary pixels besides


def test_a_pickled_npy_is_refused_not_unpickled(tmp_path):
    """Landmark files are plain arrays: one holding Python objects would run code on load, so it is an error."""
    np.save(tmp_path / "objects.npy", np.array([{"heart": [1.0, 2.0]}], dtype=object), allow_pickle=True)
    with pytest.raises(jsrt.JSRTFormatError, match="objects.npy: cannot read .npy"):
        jsrt.read_landmarks_npy(tmp_path / "objects.npy")
