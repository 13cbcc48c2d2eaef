"""Registration: landmarks follow a known warp; the medoid is the typical shape; bad bones -> reasons."""

import numpy as np
import pytest

from denseseg.anatomy import WRIST
from denseseg.evaluation.correspondence import landmark_errors
from denseseg.shape.contours import image_contours
from denseseg.shape.polyline import arc_parameter, snap_to_outline
from denseseg.shape.registration import (
    ReferenceParams,
    RegistrationParams,
    TemplateParams,
    choose_reference,
    groupwise_template,
    landmark_edge_flags,
    make_reference,
    register_image,
)
from denseseg.shape.registration_synthetic import synthetic_image
from tests.builders import project_params


def fit_params(**overrides) -> RegistrationParams:
    """The pipeline's registration params, forward only (``inverse_weight`` 0) unless a test says otherwise."""
    return RegistrationParams(**project_params("register.registration", **{"inverse_weight": 0.0, **overrides}))


def template_params(**overrides) -> TemplateParams:
    return TemplateParams(**project_params("register.template", **overrides))


@pytest.fixture(scope="module")
def images():
    imgs = [synthetic_image(i, scale=0.5) for i in range(3)]
    return imgs, [image_contours(im.masks, WRIST.structures)[0] for im in imgs]


def test_landmarks_follow_known_warp(images):
    imgs, contours = images
    ref = make_reference("r", contours[0], WRIST.landmark_counts)
    assert sum(len(v) for v in ref.landmarks.values()) == 710
    errors = []
    for im, con in zip(imgs[1:], contours[1:]):
        results, problems = register_image(ref, con, fit_params())
        assert not problems and len(results) == 17
        for s, r in results.items():
            assert r.landmarks.shape == (WRIST.landmark_counts[s], 2)
            errors.append(landmark_errors(ref.landmarks[s], imgs[0].truth[s], r.landmarks, im.truth[s]))
    errors = np.concatenate(errors)
    assert np.median(errors) < 1.0  # px at half resolution; identity would be several px
    assert np.percentile(errors, 95) < 3.0


def test_missing_bone_is_a_reason_not_a_crash(images):
    _, contours = images
    ref = make_reference("r", contours[0], WRIST.landmark_counts)
    partial = {k: v for k, v in contours[1].items() if k != "pisiform"}
    results, problems = register_image(ref, partial, fit_params(prealign="cpd"))
    assert "pisiform" in problems and len(results) == 16


def test_medoid_is_the_typical_image():
    base = {"a": np.array([[0.0, 0], [10, 0], [10, 10], [0, 10]]), "b": np.array([[20.0, 0], [30, 0], [25, 8]])}
    odd = {"a": base["a"] * [2.0, 0.5], "b": base["b"]}
    cands = {"x1": base, "x2": {k: v + 0.3 for k, v in base.items()}, "x3": odd}
    params = ReferenceParams(**project_params("register.reference"))
    stem, info = choose_reference(cands, ["a", "b"], params, seed=0)
    assert stem in ("x1", "x2") and info["candidates"] == 3


def test_bone_cut_by_the_image_edge(images):
    """A field of view that cuts the long bones: fitted on the common part, no slide along the shaft."""
    from denseseg.evaluation.correspondence import scored_errors
    from denseseg.shape.contours import border_flags

    imgs, contours = images
    shape = imgs[0].masks.shape[1:]
    ref = make_reference(
        "r", contours[0], WRIST.landmark_counts, {s: border_flags(v, shape) for s, v in contours[0].items()}, shape
    )
    cut_at = 175  # rows >= this are outside the field of view: radius and ulna are cut
    masks = imgs[1].masks.copy()
    masks[:, cut_at:, :] = False
    cropped = masks[:, :cut_at, :]
    con, problems = image_contours(cropped, WRIST.structures)
    flags = {s: border_flags(v, cropped.shape[1:]) for s, v in con.items()}
    assert flags["radius"].any() and flags["ulna"].any()
    results, problems = register_image(ref, con, fit_params(), flags, cropped.shape[1:])
    assert not problems
    errs = []
    for s in ("radius", "ulna"):
        e, left_out = scored_errors(
            ref.landmarks[s], imgs[0].truth[s], results[s].landmarks, imgs[1].truth[s], shape, cropped.shape[1:]
        )
        assert left_out > 0
        errs.append(e)
    errs = np.concatenate(errs)
    assert np.median(errs) < 1.5 and np.percentile(errs, 95) < 5.0


def test_groupwise_template_keeps_identities_and_cancels_reference_deviation():
    """Averaging corresponded landmarks removes the reference's own deviation from the group's mean shape."""
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    mean_shape = np.column_stack([30 + 12 * np.cos(t), 40 + 7 * np.sin(t) + 1.5 * np.cos(3 * t)])
    bump = np.column_stack([np.zeros_like(t), 2.0 * np.exp(-((t - 1.0) ** 2) / 0.05)])  # the reference's quirk
    others = [mean_shape + rng.normal(0, 0.05, mean_shape.shape) for _ in range(6)]
    ref = make_reference("r", {"a": mean_shape + bump}, {"a": 40})
    built = groupwise_template(
        ref, [({"a": o}, None, None) for o in others], fit_params(global_prealign=False), template_params(iterations=1)
    )
    template, info = built.template, built.info
    assert info["images"] == 6 and template.filestem == "r"
    assert template.landmarks["a"].shape == (40, 2)
    gap_ref = closest_distances_to(ref.landmarks["a"], mean_shape).max()
    gap_tpl = closest_distances_to(template.landmarks["a"], mean_shape).max()
    assert gap_ref > 1.5 and gap_tpl < 0.5 * gap_ref  # the quirk is averaged away
    assert not landmark_edge_flags(template)["a"].any()
    # same inputs, same template
    again = groupwise_template(
        ref, [({"a": o}, None, None) for o in others], fit_params(global_prealign=False), template_params(iterations=1)
    )
    assert np.array_equal(again.template.landmarks["a"], template.landmarks["a"])


def closest_distances_to(points, outline):
    return np.linalg.norm(snap_to_outline(points, outline) - points, axis=1)


def test_template_keeps_edge_landmarks_of_a_cut_reference():
    t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    full = np.column_stack([20 + 10 * np.cos(t), 20 + 10 * np.sin(t)])
    cut = full.copy()
    cut[:, 1] = np.minimum(cut[:, 1], 27.5)  # image of height 28: the bottom is the frame's
    flags = cut[:, 1] >= 27.25
    ref = make_reference("r", {"a": cut}, {"a": 30}, {"a": flags}, (28, 60))
    edge = landmark_edge_flags(ref)["a"]
    assert edge.any() and not edge.all()
    imgs = [({"a": cut + [0.2 * k, 0.0]}, {"a": flags}, (28, 60)) for k in range(3)]
    template = groupwise_template(ref, imgs, fit_params(global_prealign=False), template_params(iterations=1)).template
    assert np.array_equal(template.landmarks["a"][edge], ref.landmarks["a"][edge])
    assert np.array_equal(landmark_edge_flags(template)["a"], edge)


def test_inverse_consistency_keeps_accuracy_and_is_deterministic(images):
    imgs, contours = images
    ref = make_reference("r", contours[0], WRIST.landmark_counts)
    fwd, _ = register_image(ref, contours[1], fit_params())
    params = fit_params(inverse_weight=0.35)
    both, problems = register_image(ref, contours[1], params)
    again, _ = register_image(ref, contours[1], params)
    assert not problems and len(both) == 17
    errors = []
    for s, r in both.items():
        np.testing.assert_array_equal(r.landmarks, again[s].landmarks)
        assert r.landmarks.shape == fwd[s].landmarks.shape
        # still on the image's outline, and only moved along it
        np.testing.assert_allclose(snap_to_outline(r.landmarks, contours[1][s]), r.landmarks, atol=1e-9)
        errors.append(landmark_errors(ref.landmarks[s], imgs[0].truth[s], r.landmarks, imgs[1].truth[s]))
    errors = np.concatenate(errors)
    assert np.median(errors) < 1.0
    assert np.percentile(errors, 95) < 3.0


def test_groupwise_template_hands_back_what_it_averaged():
    t = np.linspace(0, 2 * np.pi, 150, endpoint=False)
    shape = np.column_stack([30 + 12 * np.cos(t), 40 + 7 * np.sin(t) + 1.5 * np.cos(3 * t)])
    ref = make_reference("r", {"a": shape}, {"a": 24})
    images = [({"a": shape + [0.3 * k, -0.2 * k]}, None, None) for k in range(4)]
    images.insert(2, ({}, None, None))  # an image without the bone averages nothing
    built = groupwise_template(ref, images, fit_params(global_prealign=False), template_params(iterations=1))
    template, info = built.template, built.info
    averaged = [(a.index, a.landmarks, a.evidence) for a in built.averaged]
    assert [i for i, _, _ in averaged] == [0, 1, 3, 4] and info["images"] == 4
    for i, lms, valid in averaged:
        assert lms["a"].shape == (24, 2) and valid["a"].all()
        assert np.abs(lms["a"] - (ref.landmarks["a"] + images[i][0]["a"][0] - shape[0])).max() < 0.5
    mean = np.mean([lms["a"] for _, lms, _ in averaged], axis=0)
    assert np.abs(template.landmarks["a"] - mean).max() < 0.5  # the template is their (Procrustes) mean


def test_affine_prealignment_starts_from_the_image_pose():
    """An ellipse turned with its image: the pose says how; an ICP from scratch would follow the ellipse's axes."""
    from denseseg.shape.registration import prealign
    from denseseg.shape.umeyama import Similarity

    t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    ellipse = np.column_stack([10 * np.cos(t), 6 * np.sin(t)])
    angle = np.deg2rad(20.0)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pose = Similarity(rot, 1.5, np.array([40.0, 30.0]))
    fixed = pose.apply(ellipse)
    fitted = prealign(fixed, ellipse, "affine", init=pose)
    assert np.abs(fitted.apply(ellipse) - fixed).max() < 0.05  # point by point, not just on the outline
    with pytest.raises(ValueError, match="unknown pre-alignment"):
        prealign(fixed, ellipse, "spline", init=pose)


def test_landmarks_carried_out_of_view_line_the_cut_in_order():
    """A shaft leaving the picture: hidden landmarks spread along the cut instead of piling on its corners."""
    from denseseg.shape.contours import border_flags, image_contours
    from denseseg.shape.registration import register_bone, spread_off_view
    from denseseg.shape.umeyama import Similarity

    yy, xx = np.mgrid[:120, :60]
    whole = ((xx - 30) / 9.0) ** 2 + ((yy - 60) / 50.0) ** 2 <= 1.0  # a long bone, fully in view
    ref_outline = image_contours(whole[None], ["a"], total_points=300)[0]["a"]
    ref = make_reference("r", {"a": ref_outline}, {"a": 60}, {"a": border_flags(ref_outline, (120, 60))}, (120, 60))
    view = (-0.5, -0.5, 79.5, 59.5)  # the radiograph ends at row 79 (letterbox padding below)
    cut = whole.copy()
    cut[80:] = False
    outline = image_contours(cut[None], ["a"], total_points=300)[0]["a"]
    border = border_flags(outline, view)
    assert border.any()
    pose = Similarity.identity()  # the image-level pose (a cut bone keeps it)
    res = register_bone(
        ref.outlines["a"],
        ref.landmarks["a"],
        outline,
        fit_params(),
        pose,
        ref.borders["a"],
        border,
        (120, 60),
        view,
    )
    lms = res.landmarks
    gaps = np.linalg.norm(lms - np.roll(lms, -1, axis=0), axis=1)
    assert gaps.min() > 0.2  # no two landmarks coincide
    on_cut = np.abs(lms[:, 1] - 79.5) < 0.3
    assert on_cut.sum() >= 5
    cut_x = lms[on_cut, 0]
    assert np.all(np.diff(cut_x[np.argsort(np.flatnonzero(on_cut))]) != 0)
    # the helper alone: an off-view run between two in-view neighbours is spread evenly along the edge
    square = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 0.0]])
    dense = np.vstack([np.linspace(square[i], square[(i + 1) % 4], 10, endpoint=False) for i in range(4)])
    edge = dense[:, 1] == 10.0  # the bottom side is the cut
    lm = np.array([[0.0, 5.0], [0.0, 10.0], [0.0, 10.0], [10.0, 5.0], [5.0, 0.0]])  # two piled on a corner
    spread = spread_off_view(lm, np.array([False, True, True, False, False]), dense, edge)
    assert np.allclose(spread[[0, 3, 4]], lm[[0, 3, 4]])
    assert np.allclose(spread[1:3, 1], 10.0) and spread[1, 0] < spread[2, 0]


def test_coincident_landmarks_are_parted_in_order():
    from denseseg.shape.registration import separate_coincident

    square = np.array([[0.0, 0.0], [0.0, 10.0], [10.0, 10.0], [10.0, 0.0]])
    dense = np.vstack([np.linspace(square[i], square[(i + 1) % 4], 20, endpoint=False) for i in range(4)])
    lm = np.array([[0.0, 2.0], [0.0, 6.0], [0.0, 6.0], [0.0, 6.0], [4.0, 10.0], [10.0, 5.0], [5.0, 0.0], [0.0, 2.0]])
    parted = separate_coincident(lm, dense)
    assert np.allclose(parted[[4, 5, 6]], lm[[4, 5, 6]])  # the rest stays
    s = arc_parameter(parted, dense)
    assert np.all(np.diff(s[:5]) > 0.5)  # 2 < three parted ones < 14 (the next landmark), in order
    assert np.abs(s[1:4] - 6.0).max() <= 4.0 + 1e-9  # within half the gaps to the neighbours
    assert np.linalg.norm(parted[7] - parted[0]) > 0.5  # the pair across the start is parted too
    assert np.array_equal(separate_coincident(lm[:3][[0, 1]], dense), lm[:3][[0, 1]])  # too few to part
    folded = np.array([[0.0, 2.0], [4.0, 10.0], [0.0, 3.0], [4.0, 10.0], [10.0, 5.0]])  # 1 and 3 meet, 2 between
    apart = separate_coincident(folded, dense)
    assert np.linalg.norm(apart[1] - apart[3]) >= 0.05 - 1e-9 and np.allclose(apart[[0, 2, 4]], folded[[0, 2, 4]])
