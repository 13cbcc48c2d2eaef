"""Markdown tables in the layout of the paper's Tables 1 and 2, ours beside the published figures.

A row per reporting group (then "average" and "pooled"), for each method three
columns DSC, ASD, TRE. Each cell reads ``ours / paper`` as "mean ± std" to the
paper's precision (one decimal; DSC in percent). "—" marks a value that does not
exist: TRE of a method without landmarks, a figure the paper did not print
("pooled" is ours only), or a column the paper does not have.

ASD is the paper's landmark-to-boundary distance; for a method without
landmarks the paper (Table 1, nnU-Net) used the masks' surface distance
instead, so does this table, and marks such cells with a dagger.

Each function also returns a JSON-able dict of the same figures (NaN as None
through ``denseseg.io.atomic.json_ready``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from denseseg.anatomy import Anatomy
from denseseg.evaluation.published import PublishedTable
from denseseg.io.atomic import json_ready

DASH = "—"
DAGGER = "†"
DOUBLE_DAGGER = "‡"
SUMMARY_ROWS = ("average", "pooled")
PRECISION = 1  # decimals, as printed in Tables 1 and 2


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def format_cell(mean, std, scale: float = 1.0, precision: int = PRECISION) -> str:
    """ "m ± s" at ``precision`` decimals; "—" for a missing mean, "m ± —" for a missing spread."""
    if not _finite(mean):
        return DASH
    text = f"{mean * scale:.{precision}f} ± "
    return text + (f"{std * scale:.{precision}f}" if _finite(std) else DASH)


def _has_values(summary: Mapping, metric: str) -> bool:
    return metric in summary.get("pooled", {}) and summary["pooled"][metric]["n"] > 0


def _group_label(published: PublishedTable | None, group: str) -> str:
    if published is not None and group in published.group_labels:
        return published.group_labels[group]
    return group.replace("_", "/")


def paper_table(
    results: Mapping[str, Mapping],
    anatomy: Anatomy,
    published: PublishedTable | None,
    unit: str | None = None,
    match: Mapping[str, str] | None = None,
) -> tuple[str, dict]:
    """Our aggregates (``cases.aggregate``) as the paper's results table, with its numbers beside them.

    Args:
        results: column (method) name -> aggregate over metrics ``dsc``,
            ``landmark_asd_<unit>``, ``surface_asd_<unit>`` and ``tre_<unit>``
            (those absent are shown as "—").
        anatomy: its groups give the rows.
        published: the paper's table (``published.TABLE_1_JSRT`` or ``TABLE_2_WRIST``), or None.
        unit: "px" or "mm" for ASD and TRE; defaults to the published table's.
        match: column name -> the published method key it is compared with;
            by default a column is matched to the published method of the same key.
    """
    unit = unit or (published.unit if published else None)
    if unit not in ("px", "mm"):
        raise ValueError(f"unit must be 'px' or 'mm' (or given by the published table), got {unit!r}")
    if not results:
        raise ValueError("no results to tabulate")
    match = dict(match or {})
    rows = [*anatomy.groups, *SUMMARY_ROWS]
    data: dict = {"table": published.name if published else None, "unit": unit, "columns": {}}
    header = ["group"]
    body = {row: [_group_label(published, row)] for row in rows}
    notes = []
    for column, summary in results.items():
        paper_key = match.get(column, column)
        if published is None or paper_key not in published.methods:
            paper_key = None
        asd_metric = f"landmark_asd_{unit}"
        dagger = ""
        if not _has_values(summary, asd_metric):
            asd_metric, dagger = f"surface_asd_{unit}", DAGGER
        spec = (("DSC", "dsc", 100.0, "%"), ("ASD", asd_metric, 1.0, unit), ("TRE", f"tre_{unit}", 1.0, unit))
        entry = {"paper_method": paper_key, "asd_metric": asd_metric, "rows": {}}
        for label, _metric, _scale, shown_unit in spec:
            header.append(f"{column}: {label}{dagger if label == 'ASD' else ''} [{shown_unit}]")
        for row in rows:
            entry["rows"][row] = {}
            for label, metric, scale, _unit in spec:
                stats = summary.get(row, {}).get(metric)
                ours = format_cell(stats["mean"], stats["std"], scale) if stats else DASH
                paper = None
                if paper_key is not None and row in published.groups:
                    paper = published.cell(paper_key, row, label)
                paper_text = format_cell(*paper) if paper else DASH
                if paper and row == "average" and paper_key in published.pooled_average:
                    paper_text += DOUBLE_DAGGER
                body[row].append(f"{ours} / {paper_text}")
                entry["rows"][row][label] = {
                    "ours": None if not stats else {k: v for k, v in stats.items()},
                    "ours_scale": scale,
                    "paper": None if paper is None else {"mean": paper[0], "std": paper[1]},
                }
        data["columns"][column] = entry
        if paper_key is not None:
            notes.append(f"`{column}` is compared with the paper's column '{published.labels[paper_key]}'.")
        else:
            notes.append(f"`{column}` has no published counterpart.")
        if paper_key is not None and paper_key in published.pooled_average:
            notes.append(
                f"{DOUBLE_DAGGER} the paper's average for '{published.labels[paper_key]}' is a mean over structures, "
                "not over groups: compare it with our pooled row."
            )
        if dagger:
            notes.append(f"{DAGGER} `{column}` predicts no landmarks: its ASD is the masks' surface distance.")
        missing = {
            metric: summary["pooled"][metric]["n_missing"]
            for _, metric, _, _ in spec
            if metric in summary.get("pooled", {}) and summary["pooled"][metric]["n_missing"]
        }
        if missing:
            text = ", ".join(f"{m}: {k}" for m, k in missing.items())
            notes.append(f"`{column}` rows without a value (excluded): {text}.")
    title = published.name if published else "Results"
    lines = [
        f"**{title}**: each cell is ours / paper, mean ± std over test cases "
        f"(DSC in %, ASD and TRE in {unit}); average = mean of the group means ± mean of the group stds "
        "(the paper's convention); pooled = over all structures of all cases.",
        "",
        _row(header),
        _row(["---"] * len(header)),
        *(_row(body[row]) for row in rows),
        "",
        *(f"- {note}" for note in notes),
    ]
    return "\n".join(lines) + "\n", json_ready(data)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def new_landmarks_table(
    results: Mapping[str, Mapping],
    sets: Sequence[str] = ("used", "new"),
    unit: str = "px",
    summary: str = "average",
    cannot_predict: Iterable[str] = (),
    new_set: str = "new",
) -> tuple[str, dict]:
    """TRE on the trained ("used") vs the added ("new") landmarks, against pseudo-labels and against truth.

    The experiment of the paper's conclusion: DenseSeg trained on a landmark
    subset predicts landmarks it never saw, from its uv maps, without retraining.

    Args:
        results: method name -> aggregate over ``tre_<unit>_<set>`` and
            ``tre_truth_<unit>_<set>`` (those absent are "—").
        sets: landmark set names, one column pair each.
        unit: "px" or "mm".
        summary: which aggregate row to show, "average" (the paper's convention) or "pooled".
        cannot_predict: methods that cannot predict the ``new_set`` landmarks
            (HeatReg on 178: a heatmap per trained landmark); their cells say so.
        new_set: the name of the set of added landmarks.
    """
    if summary not in SUMMARY_ROWS:
        raise ValueError(f"summary must be one of {SUMMARY_ROWS}, got {summary!r}")
    cannot_predict = set(cannot_predict)
    unknown = cannot_predict - set(results)
    if unknown:
        raise KeyError(f"cannot_predict names methods without results: {sorted(unknown)}")
    header = ["method"]
    columns = []
    for name in sets:
        for target, prefix in (("pseudo-labels", "tre"), ("truth", "tre_truth")):
            header.append(f"TRE {name} vs {target} [{unit}]")
            columns.append((name, target, f"{prefix}_{unit}_{name}"))
    header.append("note")
    lines = [
        f"**New landmarks without retraining**: TRE mean ± std ({summary} over the groups), "
        f"on the landmarks trained on and the ones added afterwards.",
        "",
        _row(header),
        _row(["---"] * len(header)),
    ]
    data: dict = {"unit": unit, "summary": summary, "methods": {}}
    for method, aggregate in results.items():
        cells, entry = [method], {}
        unable = method in cannot_predict
        for name, _target, metric in columns:
            stats = aggregate.get(summary, {}).get(metric)
            if unable and name == new_set:
                cells.append("cannot predict")
                entry[metric] = None
                continue
            cells.append(format_cell(stats["mean"], stats["std"]) if stats else DASH)
            entry[metric] = None if not stats else dict(stats)
        note = (
            f"cannot predict the '{new_set}' landmarks: it regresses one heatmap per trained landmark" if unable else ""
        )
        cells.append(note)
        lines.append(_row(cells))
        data["methods"][method] = {"figures": entry, "cannot_predict": unable, "note": note}
    return "\n".join(lines) + "\n", json_ready(data)
