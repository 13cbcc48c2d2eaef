"""Per-case rows, their NaN reasons, the group aggregates and the best/median/worst pick, by hand."""

from __future__ import annotations

import math
from types import MappingProxyType

import numpy as np
import pandas as pd
import pytest

from denseseg.anatomy import JSRT, Anatomy
from denseseg.evaluation.cases import aggregate, extremes, item_scores, score_case, structure_summary

# Two structures of two landmarks each, one per group.
TOY = Anatomy(
    name="toy",
    landmark_counts=MappingProxyType({"a": 2, "b": 2}),
    groups=MappingProxyType({"g1": ("a",), "g2": ("b",)}),
)


def square(shape, top, left, size):
    m = np.zeros(shape, bool)
    m[top : top + size, left : left + size] = True
    return m


def toy_case():
    """Structure a: 5x5 square at rows/cols 2..6 predicted 2 px to the right; b: predicted exactly."""
    shape = (20, 20)
    ref = np.stack([square(shape, 2, 2, 5), square(shape, 10, 10, 5)])
    pred = np.stack([square(shape, 2, 4, 5), square(shape, 10, 10, 5)])
    ref_lm = np.array([[2.0, 2.0], [6.0, 6.0], [10.0, 10.0], [14.0, 12.0]])
    # a: (5, 6) is 3-4-5 away from its reference and lies on the bottom edge (row 6); (6, 6) is exact, a corner.
    # b: both 1 px off in x; (11, 10) on the top edge, (13, 12) inside, 1 px from the right edge (col 14).
    pred_lm = np.array([[5.0, 6.0], [6.0, 6.0], [11.0, 10.0], [13.0, 12.0]])
    return ref, pred, ref_lm, pred_lm


def test_a_row_per_structure_with_the_hand_computed_figures():
    ref, pred, ref_lm, pred_lm = toy_case()
    rows = score_case("img", TOY, pred, pred_lm, ref, ref_lm, 0.5)
    assert [r["structure"] for r in rows] == ["a", "b"]
    a, b = rows
    assert a["group"] == "g1" and b["group"] == "g2"
    assert a["dsc"] == pytest.approx(2 * 15 / 50)  # overlap 5 x 3
    assert a["surface_asd_px"] == pytest.approx(1.0)  # worked out in test_surface
    assert a["hd95_px"] == pytest.approx(2.0)
    # a's landmarks: (5, 6) lies on the bottom edge, (6, 6) on the corner: both 0 from the boundary
    assert a["landmark_asd_px"] == pytest.approx(0.0)
    assert a["tre_px"] == pytest.approx((5.0 + 0.0) / 2)
    assert b["dsc"] == 1.0 and b["surface_asd_px"] == 0.0 and b["hd95_px"] == 0.0
    # b: (11, 10) on the top edge -> 0; (13, 12) inside: 1 px from the right edge (col 14)
    assert b["landmark_asd_px"] == pytest.approx(0.5)
    assert b["tre_px"] == pytest.approx(1.0)
    assert a["n_landmarks"] == b["n_landmarks"] == 2


def test_mm_columns_are_the_px_columns_times_the_spacing():
    ref, pred, ref_lm, pred_lm = toy_case()
    for row in score_case("img", TOY, pred, pred_lm, ref, ref_lm, 0.175):
        for key in ("surface_asd", "hd95", "landmark_asd", "tre"):
            assert row[f"{key}_mm"] == pytest.approx(0.175 * row[f"{key}_px"])
    row = score_case("img", TOY, pred, pred_lm, ref, ref_lm, None)[0]
    assert math.isnan(row["tre_mm"]) and row["tre_px"] == pytest.approx(2.5)
    assert "no mm_per_px" in row["reason"]


def test_truth_landmarks_give_their_own_tre_and_none_gives_nan_with_a_reason():
    ref, pred, ref_lm, pred_lm = toy_case()
    truth = pred_lm + np.array([0.0, 2.0])  # 2 px below every prediction
    rows = score_case("img", TOY, pred, pred_lm, ref, ref_lm, 1.0, truth_landmarks=truth)
    assert [r["tre_truth_px"] for r in rows] == [2.0, 2.0]
    assert all(r["reason"] == "" for r in rows)
    rows = score_case("img", TOY, pred, pred_lm, ref, ref_lm, 1.0)
    assert all(math.isnan(r["tre_truth_px"]) and "no truth landmarks" in r["reason"] for r in rows)


def test_landmark_sets_give_tre_columns_per_set():
    ref, pred, ref_lm, pred_lm = toy_case()
    used = np.array([True, False, True, False])
    rows = score_case(
        "img", TOY, pred, pred_lm, ref, ref_lm, 2.0, truth_landmarks=ref_lm, landmark_sets={"used": used, "new": ~used}
    )
    a, b = rows
    assert (a["tre_px_used"], a["tre_px_new"]) == (5.0, 0.0)
    assert (b["tre_px_used"], b["tre_px_new"]) == (1.0, 1.0)
    assert a["tre_mm_used"] == 10.0 and a["tre_truth_px_used"] == 5.0
    assert a["n_landmarks_used"] == 1
    assert list(a).index("tre_px_used") < list(a).index("reason")


def test_nan_predicted_landmarks_give_nan_figures_and_a_reason_never_a_partial_mean():
    ref, pred, ref_lm, pred_lm = toy_case()
    pred_lm[1] = np.nan
    used = np.array([True, False, True, False])
    a, b = score_case("img", TOY, pred, pred_lm, ref, ref_lm, 1.0, landmark_sets={"used": used, "new": ~used})
    assert math.isnan(a["landmark_asd_px"]) and math.isnan(a["tre_px"])
    assert "1 of 2 predicted landmarks are NaN" in a["reason"]
    assert a["tre_px_used"] == 5.0  # the used landmark was predicted
    assert math.isnan(a["tre_px_new"]) and "1 of 1 predicted 'new' landmarks are NaN" in a["reason"]
    assert a["dsc"] == pytest.approx(0.6)  # the masks are still scored
    assert "NaN" not in b["reason"] and b["tre_px"] == 1.0


def test_an_empty_prediction_scores_dsc_zero_and_nan_distances_with_a_reason():
    ref, pred, ref_lm, pred_lm = toy_case()
    pred[0] = False
    a = score_case("img", TOY, pred, pred_lm, ref, ref_lm, 1.0)[0]
    assert a["dsc"] == 0.0
    assert math.isnan(a["surface_asd_px"]) and math.isnan(a["hd95_px"])
    assert "predicted mask is empty" in a["reason"]


def test_a_structure_absent_from_the_reference_is_a_nan_row_with_a_reason():
    ref, pred, ref_lm, pred_lm = toy_case()
    ref[1] = False
    ref_lm[2:] = np.nan
    b = score_case("img", TOY, pred, pred_lm, ref, ref_lm, 1.0)[1]
    for key in ("dsc", "surface_asd_px", "hd95_px", "landmark_asd_px", "tre_px"):
        assert math.isnan(b[key]), key
    assert "absent from the reference" in b["reason"] and "reference landmarks" in b["reason"]
    assert b["n_landmarks"] == 0


def test_a_method_without_landmarks_has_nan_landmark_figures_and_says_why():
    ref, pred, ref_lm, _ = toy_case()
    rows = score_case("img", TOY, pred, None, ref, ref_lm, 1.0)
    assert all(math.isnan(r["tre_px"]) and math.isnan(r["landmark_asd_px"]) for r in rows)
    assert all("predicts no landmarks" in r["reason"] for r in rows)
    assert rows[0]["surface_asd_px"] == pytest.approx(1.0)


def test_bad_shapes_are_named():
    ref, pred, ref_lm, pred_lm = toy_case()
    with pytest.raises(ValueError, match="img: pred_masks"):
        score_case("img", TOY, pred[:1], pred_lm, ref, ref_lm, 1.0)
    with pytest.raises(ValueError, match="img: ref_landmarks"):
        score_case("img", TOY, pred, pred_lm, ref, ref_lm[:3], 1.0)
    with pytest.raises(ValueError, match="mm_per_px"):
        score_case("img", TOY, pred, pred_lm, ref, ref_lm, -1.0)
    with pytest.raises(ValueError, match="set name"):
        score_case("img", TOY, pred, pred_lm, ref, ref_lm, 1.0, landmark_sets={"a b": np.ones(4, bool)})


def jsrt_rows():
    """A hand-made table: DSC per item and structure of JSRT (one NaN)."""
    values = {
        "right_lung": {"p": 0.9, "q": 0.8},
        "left_lung": {"p": 0.7, "q": float("nan")},
        "heart": {"p": 0.6, "q": 0.4},
        "right_clavicle": {"p": 1.0, "q": 0.8},
        "left_clavicle": {"p": 0.9, "q": 0.9},
    }
    return pd.DataFrame(
        [
            {"item": item, "structure": s, "group": JSRT.group_of(s), "dsc": v, "tre_px": float("nan")}
            for s, per_item in values.items()
            for item, v in per_item.items()
        ]
    )


def test_aggregate_matches_a_hand_made_table():
    out = aggregate(jsrt_rows(), JSRT, ["dsc"])
    assert list(out) == ["lungs", "heart", "clavicles", "average", "pooled"]
    lungs, heart, clav = out["lungs"]["dsc"], out["heart"]["dsc"], out["clavicles"]["dsc"]
    assert (lungs["mean"], lungs["n"], lungs["n_missing"]) == (pytest.approx(0.8), 3, 1)
    assert lungs["std"] == pytest.approx(0.1)  # sample std of 0.9, 0.8, 0.7
    assert heart["mean"] == pytest.approx(0.5) and heart["std"] == pytest.approx(math.sqrt(0.02))
    assert clav["mean"] == pytest.approx(0.9) and clav["std"] == pytest.approx(math.sqrt(0.02 / 3))
    average = out["average"]["dsc"]
    assert average["mean"] == pytest.approx((0.8 + 0.5 + 0.9) / 3)
    assert average["std"] == pytest.approx((0.1 + math.sqrt(0.02) + math.sqrt(0.02 / 3)) / 3)
    assert (average["n_groups"], average["n"], average["n_missing"]) == (3, 9, 1)
    pooled = out["pooled"]["dsc"]
    assert pooled["mean"] == pytest.approx(7.0 / 9) and (pooled["n"], pooled["n_missing"]) == (9, 1)


def test_aggregate_of_a_metric_without_values_is_nan_and_counted():
    out = aggregate(jsrt_rows(), JSRT, ["tre_px"])
    assert math.isnan(out["average"]["tre_px"]["mean"])
    assert out["average"]["tre_px"]["n_groups"] == 0
    assert [out[group]["tre_px"]["n"] for group in JSRT.groups] == [0, 0, 0]
    assert out["pooled"]["tre_px"]["n"] == 0 and out["pooled"]["tre_px"]["n_missing"] == 10
    with pytest.raises(KeyError, match="not in the rows"):
        aggregate(jsrt_rows(), JSRT, ["hd95_px"])


def test_structure_summary_is_per_structure():
    out = structure_summary(jsrt_rows(), ["dsc"])
    assert out["heart"]["dsc"]["mean"] == pytest.approx(0.5)
    assert out["left_lung"]["dsc"]["n"] == 1


def test_extremes_pick_best_median_and_worst_by_landmark_asd():
    rows = pd.DataFrame(
        [
            {"item": item, "structure": s, "dsc": 0.5, "landmark_asd_px": v}
            for item, values in {"a": [1.0, 3.0], "b": [0.5, 0.5], "c": [4.0, np.nan], "d": [2.0, 2.2]}.items()
            for s, v in zip(("x", "y"), values, strict=True)
        ]
    )
    assert item_scores(rows).to_dict() == {"a": 2.0, "b": 0.5, "c": 4.0, "d": 2.1}
    assert extremes(rows) == ("b", "a", "c")  # ranks b 0.5, a 2.0, d 2.1, c 4.0: lower-middle is a


def test_extremes_fall_back_to_dsc_where_higher_is_better():
    rows = pd.DataFrame(
        [{"item": i, "structure": "x", "dsc": v, "landmark_asd_px": np.nan} for i, v in zip("pqr", (0.9, 0.5, 0.7))]
    )
    assert extremes(rows) == ("p", "r", "q")


def test_rows_follow_the_schema_and_round_trip_through_parquet(tmp_path):
    from denseseg.evaluation.cases import case_schema
    from denseseg.io.tables import read_table, write_table

    ref, pred, ref_lm, pred_lm = toy_case()
    sets = {"used": np.array([True, False, True, False])}
    rows = score_case("img", TOY, pred, pred_lm, ref, ref_lm, 1.0, landmark_sets=sets)
    schema = case_schema(sets)
    assert list(rows[0]) == schema.names
    write_table(pd.DataFrame(rows), tmp_path / "cases.parquet", schema)
    back = read_table(tmp_path / "cases.parquet", schema)
    assert back["tre_px_used"].tolist() == [5.0, 1.0]
    assert back["reason"].tolist() == [r["reason"] for r in rows]


def test_the_accumulator_collects_images_and_refuses_one_scored_twice():
    from denseseg.evaluation.cases import CaseScores

    ref, pred, ref_lm, pred_lm = toy_case()
    scores = CaseScores(TOY)
    scores.append(score_case("p", TOY, pred, pred_lm, ref, ref_lm, 1.0))
    scores.append(score_case("q", TOY, pred, pred_lm + [1.0, 0.0], ref, ref_lm, 1.0))
    assert len(scores) == 4
    assert scores.aggregate(["tre_px"])["g2"]["tre_px"]["n"] == 2
    with pytest.raises(ValueError, match="scored twice"):
        scores.append(score_case("p", TOY, pred, pred_lm, ref, ref_lm, 1.0))
    scores.reset()
    assert len(scores) == 0
