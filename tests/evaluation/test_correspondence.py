"""Correspondence error: exact on a known reparametrisation, the right size for a known slide."""

import numpy as np

from denseseg.evaluation.correspondence import contour_parameter, landmark_errors, point_at_parameter, summarise_by_group


def circle(n, r=10.0, c=(0.0, 0.0)):
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([c[0] + r * np.cos(th), c[1] + r * np.sin(th)])


def test_parameter_round_trip():
    truth = circle(64)
    t = np.array([0.0, 3.25, 63.5])
    assert np.allclose(contour_parameter(point_at_parameter(truth, t), truth), t, atol=1e-9)


def test_errors_zero_for_true_positions_and_slide_measured():
    ref_truth, tgt_truth = circle(80), circle(80, r=20.0, c=(5.0, 5.0))
    landmarks = ref_truth[::8]
    registered = tgt_truth[::8]
    assert np.allclose(landmark_errors(landmarks, ref_truth, registered, tgt_truth), 0, atol=1e-9)
    slid = tgt_truth[1::8]  # one dense step along the target
    err = landmark_errors(landmarks, ref_truth, slid, tgt_truth)
    assert np.allclose(err, np.linalg.norm(tgt_truth[1] - tgt_truth[0]), atol=1e-9)


def test_summary_by_group():
    out = summarise_by_group({"a": [np.array([1.0, 2.0])], "b": [np.array([3.0])]}, {"g1": ("a",), "g2": ("b", "c")})
    assert out["median_px"] == 2.0 and out["groups"]["g1"]["mean_px"] == 1.5 and out["groups"]["g2"]["n"] == 1


def test_scored_errors_leave_out_points_outside_the_image():
    from denseseg.evaluation.correspondence import scored_errors

    ref_truth = circle(80, r=10.0, c=(20.0, 20.0))
    tgt_truth = circle(80, r=10.0, c=(20.0, 5.0))  # the top of the target is outside the image
    landmarks = ref_truth[::8]
    errors, left_out = scored_errors(landmarks, ref_truth, tgt_truth[::8], tgt_truth, (40, 40), (40, 40))
    assert left_out > 0 and len(errors) + left_out == len(landmarks)
    assert np.allclose(errors, 0, atol=1e-9)
