"""Correspondence error: exact on a known reparametrisation, the right size for a known slide."""

import numpy as np
import pytest

from denseseg.evaluation.correspondence import landmark_errors, summarise_by_group
from denseseg.shape.polyline import point_at_vertex_parameter, vertex_parameter


def circle(n, r=10.0, c=(0.0, 0.0)):
    th = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.column_stack([c[0] + r * np.cos(th), c[1] + r * np.sin(th)])


def test_parameter_round_trip():
    truth = circle(64)
    t = np.array([0.0, 3.25, 63.5])
    assert np.allclose(vertex_parameter(point_at_vertex_parameter(truth, t), truth), t, atol=1e-9)


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


def test_template_identity_is_the_mean_atlas_point_of_what_was_averaged():
    """Registrations that all land 2.5 dense steps further on: the template's landmarks mean those points."""
    from denseseg.evaluation.correspondence import scored_errors, template_identity, true_positions

    ref_truth = circle(80)
    landmarks = ref_truth[::8]
    start = vertex_parameter(landmarks, ref_truth)
    images = [circle(80, r=10.0 + k, c=(k, -k)) for k in range(4)]
    shifts = np.array([2.0, 3.0, 2.5, 2.5])  # mean 2.5 steps along the contour
    registered = [
        (point_at_vertex_parameter(t, start + d), np.ones(len(landmarks), bool), t) for t, d in zip(images, shifts)
    ]
    identity = template_identity(landmarks, ref_truth, registered)
    assert np.allclose(identity, np.mod(start + 2.5, 80), atol=1e-9)  # landmark 0 wraps past the start
    target = circle(80, r=15.0)
    on_template_point = point_at_vertex_parameter(target, start + 2.5)
    errors, _ = scored_errors(
        landmarks, ref_truth, on_template_point, target, (100, 100), (100, 100), margin=-1e9, identity=identity
    )
    assert np.allclose(errors, 0.0, atol=1e-9)
    against_reference, _ = scored_errors(
        landmarks, ref_truth, on_template_point, target, (100, 100), (100, 100), margin=-1e9
    )
    step = np.linalg.norm(target[1] - target[0])
    assert np.allclose(against_reference, 2.5 * step, rtol=0.01)  # the same points, scored as the reference's (a chord)
    assert np.allclose(true_positions(landmarks, ref_truth, target), point_at_vertex_parameter(target, start))


def test_template_identity_needs_enough_evidence_per_landmark():
    from denseseg.evaluation.correspondence import template_identity

    ref_truth = circle(40)
    landmarks = ref_truth[::4]
    start = vertex_parameter(landmarks, ref_truth)
    seen = np.zeros(len(landmarks), bool)
    seen[:3] = True
    registered = [(point_at_vertex_parameter(ref_truth, start + 1.0), seen, ref_truth) for _ in range(3)]
    registered.append((point_at_vertex_parameter(ref_truth, start + 1.0), np.ones(len(landmarks), bool), ref_truth))
    identity = template_identity(landmarks, ref_truth, registered, min_images=3)
    assert np.allclose(identity[:3], start[:3] + 1.0) and np.allclose(identity[3:], start[3:])
    with pytest.raises(ValueError, match="not the same atlas"):
        template_identity(landmarks, ref_truth, [(landmarks, seen, circle(41))])


def test_template_identity_adds_the_mean_offset_to_the_reference_parameter_across_the_wrap():
    """Every image's landmarks sit 2 vertex steps on from the reference's, which lie near the contour's end."""
    from denseseg.evaluation.correspondence import template_identity

    truth = circle(80)
    start = np.array([77.25, 78.5, 5.0])
    landmarks = point_at_vertex_parameter(truth, start)
    moved = point_at_vertex_parameter(truth, start + 2.0)
    registered = [(moved, np.ones(3, bool), truth)] * 3
    np.testing.assert_allclose(template_identity(landmarks, truth, registered), np.mod(start + 2.0, 80), atol=1e-9)
