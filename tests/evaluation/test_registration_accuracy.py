"""RegistrationAccuracy: appended bone by bone, reduced once, against errors computed by hand.

One structure "a" whose truth contour is a square of 4 atlas points; the
reference's landmarks are those 4 points, so landmark k's atlas point is vertex k.
"""

import numpy as np
import pytest

from denseseg.evaluation.correspondence import IDENTITY_REFERENCE, IDENTITY_TEMPLATE, RegistrationAccuracy

REF = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])
VIEW = (100, 100)
GROUPS = {"g": ("a",)}


def scorer(averaged=(), margin=10.0) -> RegistrationAccuracy:
    return RegistrationAccuracy({"a": REF}, {"a": REF}, VIEW, {"a": False}, margin, averaged)


def test_errors_and_their_summaries_are_the_hand_computed_ones():
    acc = scorer()
    target = REF + [5.0, 0.0]
    registered = target + [[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [3.0, 4.0]]  # errors 1, 2, 0, 5
    truth_points = acc.append("a", registered, target, VIEW, cut=False)
    np.testing.assert_allclose(truth_points, target)
    acc.append("a", target, target, VIEW, cut=True)  # four errors of 0, on a bone cut by the image edge
    out = acc.aggregate(GROUPS)
    # all eight: 0 0 0 0 0 1 2 5
    assert (out["median_px"], out["mean_px"], out["max_px"]) == (0.0, 1.0, 5.0)
    assert out["p95_px"] == pytest.approx(5.0 - 0.35 * 3.0)  # between 2 and 5 at 0.95 * 7 = 6.65
    assert out["landmarks_scored"] == 8 and out["landmarks_unscored"] == 0
    assert out["groups"]["g"]["n"] == 8 and out["groups"]["g"]["mean_px"] == 1.0
    # uncut: the first image only (1, 2, 0, 5)
    assert (out["median_px_uncut"], out["mean_px_uncut"], out["landmarks_uncut"]) == (1.5, 2.0, 4)
    assert out["p95_px_uncut"] == pytest.approx(2.0 + 0.85 * 3.0)
    # every true point lies 10 px or more inside the 100 x 100 image: "inside" is all of them
    assert (out["median_px_inside"], out["mean_px_inside"], out["landmarks_inside"]) == (0.0, 1.0, 8)
    assert out["reference_identity"] == {k: out[k] for k in ("median_px", "mean_px", "p95_px")}
    assert out["identity"] == IDENTITY_REFERENCE and out["inside_margin_px"] == 10.0


def test_inside_keeps_only_true_points_away_from_the_edges_and_points_outside_are_unscored():
    acc = scorer(margin=10.0)
    target = REF - [10.0, 0.0]  # x = 0 and x = 10: vertices 0 and 3 within 10 px of the left edge (-0.5)
    registered = target + [[1.0, 0.0], [2.0, 0.0], [4.0, 0.0], [8.0, 0.0]]
    acc.append("a", registered, target, VIEW, cut=False)
    out = acc.aggregate(GROUPS)
    assert out["landmarks_scored"] == 4 and out["mean_px"] == pytest.approx(15.0 / 4)
    assert out["landmarks_inside"] == 2 and out["mean_px_inside"] == pytest.approx(3.0)  # vertices 1 and 2
    outside = scorer()
    off = REF - [15.0, 0.0]  # vertices 0 and 3 at x = -5: not in the image, not scored
    outside.append("a", off, off, VIEW, cut=False)
    figures = outside.aggregate(GROUPS)
    assert figures["landmarks_scored"] == 2 and figures["landmarks_unscored"] == 2


def test_a_template_moves_the_atlas_points_and_shards_merge_in_order():
    # three averaged images put every landmark half a vertex further on: the template's atlas points
    shifted = (REF + np.roll(REF, -1, axis=0)) / 2
    averaged = [({"a": shifted}, {"a": np.ones(4, bool)}, {"a": REF}) for _ in range(3)]
    acc = scorer(averaged)
    target = REF + [30.0, 30.0]
    registered = (target + np.roll(target, -1, axis=0)) / 2  # exactly on the template's atlas points
    whole = acc.fresh()
    whole.append("a", registered, target, VIEW, cut=False)
    whole.append("a", target, target, VIEW, cut=False)
    out = whole.aggregate(GROUPS)
    assert out["identity"] == IDENTITY_TEMPLATE
    # vs the template's points: 0 for the first image, 5 (half a side) for the second; vs the reference's: swapped
    assert (out["mean_px"], out["reference_identity"]["mean_px"]) == (2.5, 2.5)
    assert out["median_px"] == 2.5 and out["max_px"] == 5.0
    parts = [acc.fresh(), acc.fresh()]
    parts[0].append("a", registered, target, VIEW, cut=False)
    parts[1].append("a", target, target, VIEW, cut=False)
    merged = acc.fresh()
    for part in parts:
        merged.extend(part)
    assert merged.aggregate(GROUPS) == out
    assert acc.aggregate(GROUPS)["landmarks_scored"] == 0  # fresh ones never touch the original
    whole.reset()
    assert whole.aggregate(GROUPS)["landmarks_scored"] == 0


def test_without_truth_every_figure_is_null():
    figures = RegistrationAccuracy.unscored_figures()
    assert figures["median_px"] is None and figures["groups"] is None and figures["reference_identity"] is None
    assert {"median_px_inside", "p95_px_uncut", "identity"} <= set(figures)
