"""The Markdown tables: the paper's layout, ours beside the published figures, dashes where nothing exists."""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType

import numpy as np
import pandas as pd

from denseseg.anatomy import JSRT, WRIST, Anatomy
from denseseg.evaluation.cases import aggregate, score_case
from denseseg.evaluation.published import TABLE_1_JSRT, TABLE_2_WRIST
from denseseg.evaluation.tables import format_cell, new_landmarks_table, paper_table

METRICS_PX = ["dsc", "landmark_asd_px", "surface_asd_px", "tre_px"]


def constant_rows(anatomy: Anatomy, values: dict, items=("p", "q")) -> pd.DataFrame:
    """Rows with the same figures for every structure of two items, NaN for metrics not given."""
    columns = ["dsc", "landmark_asd_px", "surface_asd_px", "tre_px", "landmark_asd_mm", "surface_asd_mm", "tre_mm"]
    return pd.DataFrame(
        [
            {"item": i, "structure": s, **{c: values.get(c, np.nan) for c in columns}}
            for i in items
            for s in anatomy.structures
        ]
    )


def table_lines(markdown: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in markdown.splitlines() if line.startswith("|")]


def test_format_cell_uses_the_papers_precision_and_dashes():
    assert format_cell(0.9263, 0.0501, scale=100) == "92.6 ± 5.0"
    assert format_cell(float("nan"), 1.0) == "—"
    assert format_cell(1.25, float("nan")) == "1.2 ± —"


def test_wrist_table_has_the_rows_and_columns_of_table_2_with_ours_beside_the_paper():
    rows = constant_rows(WRIST, {"dsc": 0.9, "landmark_asd_px": 1.0, "surface_asd_px": 0.5, "tre_px": 2.0})
    agg = aggregate(rows, WRIST, METRICS_PX)
    markdown, data = paper_table({"denseseg": agg, "heatreg": agg}, WRIST, TABLE_2_WRIST)
    header, rule, *body = table_lines(markdown)
    assert header == [
        "group",
        "denseseg: DSC [%]",
        "denseseg: ASD [px]",
        "denseseg: TRE [px]",
        "heatreg: DSC [%]",
        "heatreg: ASD [px]",
        "heatreg: TRE [px]",
    ]
    assert set(rule) == {"---"}
    assert [r[0] for r in body] == ["carpals", "metacarpals", "ulna/radius", "average", "pooled"]
    carpals = body[0]
    assert carpals[1] == "90.0 ± 0.0 / 88.8 ± 6.9"  # ours (landmark ASD, not surface) / paper
    assert carpals[2] == "1.0 ± 0.0 / 1.0 ± 0.4"
    assert carpals[6] == "2.0 ± 0.0 / 2.5 ± 0.7"
    assert body[4][1] == "90.0 ± 0.0 / —"  # the paper has no pooled row
    assert "ours / paper" in markdown
    json.dumps(data, allow_nan=False)
    assert data["columns"]["denseseg"]["rows"]["average"]["TRE"]["paper"] == {"mean": 2.5, "std": 1.4}
    assert data["columns"]["heatreg"]["asd_metric"] == "landmark_asd_px"


def test_jsrt_table_in_mm_gives_nnunet_surface_asd_and_no_tre():
    with_lm = constant_rows(JSRT, {"dsc": 0.95, "landmark_asd_mm": 2.0, "surface_asd_mm": 1.5, "tre_mm": 5.0})
    no_lm = constant_rows(JSRT, {"dsc": 0.97, "surface_asd_mm": 1.25})
    metrics = ["dsc", "landmark_asd_mm", "surface_asd_mm", "tre_mm"]
    results = {"ours": aggregate(with_lm, JSRT, metrics), "nnunet": aggregate(no_lm, JSRT, metrics)}
    markdown, data = paper_table(results, JSRT, TABLE_1_JSRT, match={"ours": "denseseg"})
    header, _, *body = table_lines(markdown)
    assert [r[0] for r in body] == ["lungs", "heart", "clavicles", "average", "pooled"]
    assert header[4:] == ["nnunet: DSC [%]", "nnunet: ASD† [mm]", "nnunet: TRE [mm]"]
    lungs = body[0]
    assert lungs[2] == "2.0 ± 0.0 / 2.1 ± 0.6"  # ours matched to the paper's "ours"
    assert lungs[5] == "1.2 ± 0.0 / 1.4 ± 0.6"  # nnU-Net: surface ASD
    assert lungs[6] == "— / —"
    assert body[3][4].endswith("95.6 ± 2.9‡")
    assert "mean over structures" in markdown and "surface distance" in markdown
    assert data["columns"]["nnunet"]["asd_metric"] == "surface_asd_mm"
    assert "rows without a value" in markdown  # nnU-Net's TRE is counted as missing


def test_a_column_without_a_published_counterpart_shows_dashes_for_the_paper():
    rows = constant_rows(WRIST, {"dsc": 0.9, "landmark_asd_px": 1.0, "tre_px": 2.0})
    markdown, data = paper_table({"mine": aggregate(rows, WRIST, METRICS_PX)}, WRIST, TABLE_2_WRIST)
    body = table_lines(markdown)[2:]
    assert all(cell.endswith("/ —") for row in body for cell in row[1:])
    assert data["columns"]["mine"]["paper_method"] is None
    assert "no published counterpart" in markdown


TOY = Anatomy(
    name="toy",
    landmark_counts=MappingProxyType({"a": 2, "b": 2}),
    groups=MappingProxyType({"g1": ("a",), "g2": ("b",)}),
)


def test_new_landmarks_table_compares_sets_and_says_heatreg_178_cannot_predict_new_ones():
    masks = np.zeros((2, 12, 12), bool)
    masks[0, 1:5, 1:5] = True
    masks[1, 6:11, 6:11] = True
    ref = np.array([[1.0, 1.0], [4.0, 4.0], [6.0, 6.0], [10.0, 10.0]])
    truth = ref + [0.0, 1.0]
    used = np.array([True, False, True, False])
    sets = {"used": used, "new": ~used}
    dense = ref + [[1.0, 0.0], [3.0, 0.0], [1.0, 0.0], [3.0, 0.0]]  # used 1 px off, new 3 px off
    heat = np.where(used[:, None], ref + [2.0, 0.0], np.nan)  # no prediction for the new ones
    metrics = [f"{p}_px_{s}" for p in ("tre", "tre_truth") for s in ("used", "new")]
    results = {}
    for name, pred in (("denseseg178", dense), ("heatreg178", heat)):
        rows = score_case("x", TOY, masks, pred, masks, ref, 1.0, truth_landmarks=truth, landmark_sets=sets)
        results[name] = aggregate(rows, TOY, metrics)
    markdown, data = new_landmarks_table(results, cannot_predict=["heatreg178"])
    header, _, dense_row, heat_row = table_lines(markdown)
    assert header == [
        "method",
        "TRE used vs pseudo-labels [px]",
        "TRE used vs truth [px]",
        "TRE new vs pseudo-labels [px]",
        "TRE new vs truth [px]",
        "note",
    ]
    assert dense_row[:5] == ["denseseg178", "1.0 ± —", f"{np.sqrt(2):.1f} ± —", "3.0 ± —", f"{np.sqrt(10):.1f} ± —"]
    assert heat_row[1] == "2.0 ± —" and heat_row[3] == heat_row[4] == "cannot predict"
    assert "cannot predict the 'new' landmarks" in heat_row[5]
    assert data["methods"]["heatreg178"]["cannot_predict"] is True
    json.dumps(data, allow_nan=False)


def test_rows_are_labelled_as_the_published_table_prints_them_else_by_group_name():
    rows = constant_rows(WRIST, {"dsc": 0.9, "landmark_asd_px": 1.0, "tre_px": 2.0})
    results = {"denseseg": aggregate(rows, WRIST, METRICS_PX)}
    relabelled = replace(
        TABLE_2_WRIST, group_labels=MappingProxyType({**TABLE_2_WRIST.group_labels, "carpals": "carpal bones"})
    )
    labels = [row[0] for row in table_lines(paper_table(results, WRIST, relabelled)[0])[2:]]
    assert labels[: len(WRIST.groups)] == [
        "carpal bones" if g == "carpals" else g.replace("_", "/") for g in WRIST.groups
    ]
    unpublished = [row[0] for row in table_lines(paper_table(results, WRIST, None, unit="px")[0])[2:]]
    assert unpublished[: len(WRIST.groups)] == [g.replace("_", "/") for g in WRIST.groups]  # ulna_radius -> ulna/radius
