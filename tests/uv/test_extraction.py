import numpy as np

from denseseg.anatomy import JSRT
from denseseg.uv.extraction import ExtractionParams, extract_landmarks, locate
from denseseg.uv.maps import dense_uv, item_crops, landmark_uv


def _maps(template, cases, mode="cartesian"):
    out = []
    for masks, flat in cases:
        crops, _ = item_crops(masks, flat, template, mode, extrapolate=True)
        out.append(dense_uv(crops, JSRT.structures, 256, 256))
    return np.stack([u for u, _ in out]), np.stack([m for _, m in out])


def test_exact_map_recovers_landmarks_floor(jsrt_shapes):
    template, cases = jsrt_shapes
    uv, masks = _maps(template, cases)
    truth = np.stack([flat for _, flat in cases])
    res = extract_landmarks(uv, template.flat_uv(), JSRT.landmark_counts.values(), masks)
    err = np.linalg.norm(res.points - truth, axis=2)
    assert res.total_missing == 0
    assert np.median(err) < 0.25 and np.percentile(err, 95) < 1.0  # loose; benchmark: 0.04 / 0.25 px
    soft = extract_landmarks(
        uv,
        template.flat_uv(),
        JSRT.landmark_counts.values(),
        masks,
        ExtractionParams(method="softmin", k=5, temperature=1.0),
    )
    assert np.median(np.linalg.norm(soft.points - truth, axis=2)) < 2.0


def test_polar_mode_extracts_too(jsrt_shapes):
    template, cases = jsrt_shapes
    uv, masks = _maps(template, cases[:2], "polar")
    truth = np.stack([flat for _, flat in cases[:2]])
    res = extract_landmarks(uv, landmark_uv(template, "polar"), JSRT.landmark_counts.values(), masks)
    assert np.median(np.linalg.norm(res.points - truth, axis=2)) < 1.0


def test_empty_and_tiny_masks_give_nan_and_count(jsrt_shapes):
    template, cases = jsrt_shapes
    uv, masks = _maps(template, cases[:1])
    uv[0, 2] = np.nan  # heart map gone
    masks[0, 3] = False
    masks[0, 3, 50, 50] = True  # clavicle: one pixel (all NaN uv there or not)
    res = extract_landmarks(uv, template.flat_uv(), JSRT.landmark_counts.values(), masks)
    assert np.isnan(res.points[0, 94:120]).all()
    assert res.n_missing[0] >= 26
    tiny = locate(np.zeros((2, 3, 3)), np.zeros((4, 2)), np.eye(3, dtype=bool))
    assert np.isfinite(tiny).all() and tiny.shape == (4, 2)


def test_any_template_point_is_located(jsrt_shapes):
    template, cases = jsrt_shapes
    masks, flat = cases[0]
    crops, _ = item_crops(masks, flat, template, extrapolate=True)
    heart = flat[94:120]
    mid_img = (heart[3] + heart[4]) / 2
    mid_tpl = (template.points["heart"][3] + template.points["heart"][4]) / 2
    crop = crops["heart"]
    found = locate(crop.uv, template.to_uv("heart", mid_tpl[None]), crop.mask, origin=(crop.top, crop.left))
    assert np.linalg.norm(found[0] - mid_img) < 1.0


def test_torch_batch_input(jsrt_shapes):
    import torch

    template, cases = jsrt_shapes
    uv, masks = _maps(template, cases[:2])
    res = extract_landmarks(
        torch.from_numpy(uv), template.flat_uv(), JSRT.landmark_counts.values(), torch.from_numpy(masks)
    )
    assert res.points.shape == (2, 166, 2) and res.total_missing == 0


def test_isotropic_search_helps_on_elongated_structures(jsrt_shapes):
    """Clavicles span about 2:1 in their template box; raw uv distances favour one axis."""
    template, cases = jsrt_shapes
    uv, masks = _maps(template, cases)
    truth = np.stack([flat for _, flat in cases])
    scales = np.stack([template.uv_scale(s) for s in JSRT.structures])
    assert scales[3, 0] > 2 * scales[3, 1]  # right clavicle: much wider than tall
    counts = JSRT.landmark_counts.values()
    raw = extract_landmarks(uv, template.flat_uv(), counts, masks)
    iso = extract_landmarks(uv, template.flat_uv(), counts, masks, uv_scales=scales)
    clavicles = slice(120, 166)
    err_raw = np.linalg.norm(raw.points - truth, axis=2)[:, clavicles]
    err_iso = np.linalg.norm(iso.points - truth, axis=2)[:, clavicles]
    assert np.percentile(err_iso, 95) <= np.percentile(err_raw, 95)
    assert np.percentile(err_iso, 95) < 0.5
