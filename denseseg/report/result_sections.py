"""The report's sections on the models: the paper's tables, truth, new landmarks, estimators, overlays,
training curves, uv maps, tuning and bone age, and the headline figures at a glance.

Each builder takes parsed inputs (``Source``, DataFrames, PNG bytes) or None for an absent one; see
``denseseg.report.sections``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from denseseg.evaluation.published import TABLE_1_JSRT, TABLE_2_WRIST, PublishedTable
from denseseg.evaluation.tables import format_cell
from denseseg.report.data_sections import PAPER_SCALE
from denseseg.report.document import DASH, Bullets, Figure, Note, Paragraph, Section, Table, format_value
from denseseg.report.figures import curves_figure
from denseseg.report.source import ReportInputError, Source, finite, mean_std, missing_note

PUBLISHED = {"table1": TABLE_1_JSRT, "table2": TABLE_2_WRIST}
BONE_AGE_SOURCES = ("baseline", "registration", "denseseg", "heatreg", "truth")  # the table's row order


# ---------------------------------------------------------------- at a glance


def at_a_glance(tables: Source | None, registration: Source | None, n_images: int | None) -> Section:
    """The headline figures beside the paper's: data size, label error, average DSC and TRE of the compared runs."""
    section = Section("At a glance", anchor="at-a-glance")
    rows = [{"figure": "wrist images with landmarks", "ours": n_images, "paper": PAPER_SCALE["wrist_images"]}]
    if registration is not None and registration.get("scored_against_truth", False):
        rows.append(
            {
                "figure": "registered landmarks vs truth, median [px]",
                "ours": format_value(registration.get("median_px")),
                "paper": "not measurable (no truth)",
            }
        )
    for key in ("table2", "table1"):
        data = tables.get(key) if tables is not None else None
        if not data:
            continue
        table, published = Source(f"{tables.name} [{key}]", data), PUBLISHED[key]
        for column in _column_order(table["columns"], published):
            entry = table["columns"][column]
            if not entry.get("paper_method"):
                continue
            average = Source(table.name, entry)["rows", "average"]
            for metric, unit in (("DSC", "%"), ("TRE", table["unit"])):
                cell = average.get(metric) or {}
                rows.append(
                    {
                        "figure": f"{published.name.split(' (')[0]}, {column}: {metric} average [{unit}]",
                        "ours": mean_std(cell.get("ours"), cell.get("ours_scale", 1.0)),
                        "paper": mean_std(cell.get("paper")),
                    }
                )
    section.add(Table.from_records(rows, ["figure", "ours", "paper"]))
    if tables is None:
        section.add(missing_note("Tables 1 and 2", "tables"))
    return section


# ---------------------------------------------------------------- Tables 1 and 2


def _column_order(columns: Mapping, published: PublishedTable) -> list[str]:
    """Our columns matched to a published method in the paper's order, then the unmatched ones by name."""
    order = {m: i for i, m in enumerate(published.methods)}
    return sorted(columns, key=lambda c: (order.get(columns[c].get("paper_method"), len(order)), c))


def paper_table(key: str, figures: Source | None, title: str, anchor: str) -> Section:
    """One of the paper's tables (``table1`` JSRT, ``table2`` wrist) from tables.json: ours beside published.

    One table per metric (DSC, ASD, TRE), a row per group, for each of our
    columns our mean ± std and the published figure it is compared with;
    the paper's methods we did not run follow as "paper only".
    """
    section = Section(title, anchor=anchor)
    published = PUBLISHED[key]
    if figures is None:
        return section.add(missing_note(title, "tables"))
    data = figures.get(key)
    if data is None:
        return section.add(Note(f"{title}: not written (params `tables.{key}` is null, or the tables stage is old)."))
    table = Source(f"{figures.name} [{key}]", data)
    columns = table["columns"]
    unit = table["unit"]
    if not columns:
        raise ReportInputError(f"{table.name}: no columns")
    order = _column_order(columns, published)
    first = Source(table.name, columns[order[0]])
    rank = {g: i for i, g in enumerate(published.groups)}
    groups = sorted(first["rows"], key=lambda g: (rank.get(g, len(rank)), g == "pooled", g))
    matched = {columns[c].get("paper_method") for c in order}
    paper_only = [m for m in published.methods if m not in matched]
    section.add(
        Paragraph(
            f"Our runs (the columns of params `tables.{key}`), each followed by the published figure it is "
            f"compared with. Mean ± std over the test cases; DSC in %, ASD and TRE in {unit}. 'average' is the "
            "mean of the group "
            "means ± the mean of the group stds (the paper's convention); 'pooled' is over all structures of all "
            "cases (ours only). Published figures: " + published.caption
        )
    )
    for metric, unit_label in (("DSC", "%"), ("ASD", unit), ("TRE", unit)):
        header = ["group"]
        for c in order:
            header.append(c)
            if columns[c].get("paper_method"):
                header.append(f"paper: {published.labels[columns[c]['paper_method']]}")
        header += [f"paper only: {published.labels[m]}" for m in paper_only]
        rows = []
        for group in groups:
            row = [published.group_labels.get(group, group.replace("_", "/"))]
            for c in order:
                cell = Source(table.name, columns[c])["rows", group, metric]
                row.append(mean_std(cell.get("ours"), cell.get("ours_scale", 1.0)))
                if columns[c].get("paper_method"):
                    row.append(mean_std(cell.get("paper")))
            for m in paper_only:
                value = published.values[m].get(group, {}).get(metric) if group in published.groups else None
                row.append(format_cell(*value) if value else DASH)
            rows.append(row)
        section.add(Table(tuple(header), tuple(tuple(r) for r in rows), f"{metric} [{unit_label}]"))
    notes = []
    for c in order:
        paper = columns[c].get("paper_method")
        asd = columns[c].get("asd_metric", "")
        where = f"compared with the paper's '{published.labels[paper]}'" if paper else "no published counterpart"
        notes.append(f"`{c}`: {where}; ASD is `{asd}`.")
    if published.pooled_average:
        labels = ", ".join(published.labels[m] for m in sorted(published.pooled_average))
        notes.append(f"The paper's 'average' for {labels} is a mean over structures: compare it with 'pooled'.")
    return section.add(Bullets(tuple(notes)))


def truth_table(evaluations: Mapping[str, Source]) -> Section:
    """Test TRE of each run against the pseudo-labels (what Table 2 reports) and against the phantom's truth."""
    section = Section("Against pseudo-labels and against the truth", anchor="against-truth")
    section.add(
        Paragraph(
            "Table 2 scores the models against the dataset's landmarks, which are themselves registered "
            "pseudo-labels. On the phantom the true positions are known too: the second column is the error a "
            "user of the model would really see; the gap between them is the label error carried into the test."
        )
    )
    records = []
    for run, ev in evaluations.items():
        average = ev["primary", "average"]
        truth = average.get("tre_truth_px")
        if not isinstance(truth, Mapping) or not finite(truth.get("mean")):
            continue  # scored against annotations only (JSRT, real data)
        records.append(
            {
                "run": run,
                "test images": ev.get("test_images"),
                "DSC [%]": mean_std(average.get("dsc"), 100.0),
                "TRE vs pseudo-labels [px]": mean_std(average.get("tre_px")),
                "TRE vs truth [px]": mean_std(average.get("tre_truth_px")),
                "TRE vs truth [mm]": mean_std(average.get("tre_truth_mm")),
            }
        )
    if not records:
        return section.add(Note("No evaluated run was scored against a truth (stages `evaluate@<run>`)."))
    section.add(
        Table.from_records(
            records, caption="Average over the groups, primary estimator; runs without truth are left out."
        )
    )
    return section


def new_landmarks(figures: Source | None) -> Section:
    """The new-landmark experiment: trained on 178 FPS landmarks, scored on those and on the 532 never seen."""
    section = Section("New landmarks without retraining", anchor="new-landmarks")
    if figures is None:
        return section.add(missing_note("New-landmark experiment", "tables"))
    data = figures.get("new_landmarks")
    if data is None:
        return section.add(Note("Not written (params `tables.new_landmarks` is null)."))
    table = Source(f"{figures.name} [new_landmarks]", data)
    unit = table.get("unit", "px")
    section.add(
        Paragraph(
            "The paper's claim (conclusion): DenseSeg, trained on a subset of landmarks, locates landmarks it never "
            "saw from its uv maps. Runs trained on the 178 farthest-point landmarks are scored on those ('used') "
            "and on the other 532 ('new'), against the pseudo-labels and against the truth."
        )
    )
    records = []
    for run, entry in table["methods"].items():
        figs = Source(table.name, entry)["figures"]
        row = {"run": run}
        for name in ("used", "new"):
            for prefix, target in (("tre", "pseudo-labels"), ("tre_truth", "truth")):
                stats = figs.get(f"{prefix}_{unit}_{name}")
                cannot = entry.get("cannot_predict") and name == "new"
                row[f"TRE {name} vs {target} [{unit}]"] = "cannot predict" if cannot else mean_std(stats)
        row["note"] = entry.get("note") or ""
        records.append(row)
    return section.add(Table.from_records(records, caption=f"TRE mean ± std ({table.get('summary', 'average')})."))


def estimators(figures: Source | None) -> Section:
    """DenseSeg's two ways to read landmarks from the predicted uv maps: the paper's softmin and the affine fit."""
    section = Section("Landmark estimators", anchor="estimators")
    if figures is None:
        return section.add(missing_note("Estimator comparison", "tables"))
    data = figures.get("estimators")
    if not data:
        return section.add(Note("No run named in params `tables.estimators`."))
    section.add(
        Paragraph(
            "The same trained models, landmarks read from the predicted uv maps by the paper's softmin (eq. 3, "
            "K = 5) or by a local affine fit; TRE in px, average over the groups, against the pseudo-labels."
        )
    )
    names = sorted({name for per_run in data.values() for name in per_run})
    records = [
        {"run": run, **{n: mean_std(per_run.get(n), precision=2) for n in names}} for run, per_run in data.items()
    ]
    return section.add(Table.from_records(records, ["run", *names]))


# ---------------------------------------------------------------- figures of runs


def overlays(run: str, images: Mapping[str, bytes | None], items: Mapping[str, str] | None, scores=None) -> Section:
    """Best, median and worst test case of one run (by mean landmark ASD): reference red, prediction cyan/yellow."""
    section = Section(f"Overlays: {run}", anchor=f"overlays-{run}")
    found = {label: png for label, png in images.items() if png is not None}
    if not found:
        return section.add(missing_note(f"Overlays of {run}", f"evaluate@{run}"))
    for label, png in found.items():
        caption = f"{run}, {label} test case"
        if items and label in items:
            caption += f" `{items[label]}`"
        if scores is not None and items and items.get(label) in scores:
            caption += f" (mean landmark ASD {scores[items[label]]:.2f} px)"
        caption += ". Red: reference contours and landmarks; cyan: predicted contours; yellow: predicted landmarks."
        section.add(Figure(f"overlay-{run}-{label}", png, caption))
    return section


def training(curves: Mapping[str, pd.DataFrame], summaries: Mapping[str, Source], missing: Sequence[str]) -> Section:
    """Training curves of the runs (loss and validation TRE per epoch) and each run's summary."""
    section = Section("Training curves", anchor="training")
    if curves:
        metrics = [m for m in ("train_loss", "val_tre_px", "val_dice") if any(m in c for c in curves.values())]
        if metrics:
            section.add(
                Figure(
                    "training-curves",
                    curves_figure(curves, metrics),
                    "Per epoch: training loss, validation TRE (px) and validation Dice of every run (the validation "
                    "split picks the checkpoint; the test split is never seen in training).",
                )
            )
    records = [
        {
            "run": run,
            "epochs": s.get("epochs"),
            "best epoch": s.get("best_epoch"),
            "best validation monitor": s.get("best_monitor"),
            "final train loss": s.get("final_train_loss"),
            "landmarks trained": s.get("landmarks_trained"),
            "parameters": s.get("parameters"),
            "train / val items": f"{s.get('train_items', DASH)} / {s.get('val_items', DASH)}",
        }
        for run, s in summaries.items()
    ]
    if records:
        section.add(Table.from_records(records))
    if missing:
        section.add(Note(f"Not trained yet: {', '.join(missing)} (stages `train@<run>`)."))
    return section


def uv_maps(figure: bytes | None, item: str | None, metrics: Source | None, variant: str) -> Section:
    """One training item's uv maps (u and v of every bone), the representation DenseSeg learns."""
    section = Section("uv maps", anchor="uv-maps")
    if figure is None:
        return section.add(missing_note(f"uv cache {variant}", f"uvmaps@{variant}"))
    section.add(
        Paragraph(
            "DenseSeg regresses, inside each bone, the bone's template coordinates (u, v) in [-1, 1] (paper 2.1); "
            "a landmark is found where the predicted maps take its template value."
        )
    )
    section.add(
        Figure(f"uv-{variant}", figure, f"Item `{item}` of the uv cache `{variant}`: image and landmarks, u, v.")
    )
    if metrics is not None:
        section.add(
            Paragraph(
                f"Cache: {metrics.get('items', DASH)} items, {metrics.get('landmarks_cached', DASH)} landmarks, mode "
                f"{metrics.get('mode', DASH)}; the maps reproduce every landmark's template uv to "
                f"{format_value(metrics.get('exactness_max_uv_error'))} (exactness check "
                f"{'passed' if metrics.get('exactness_ok') else 'FAILED'}); landmark floor (re-extracting landmarks "
                f"from the exact maps) median {format_value(metrics.get('floor_median_px'))} px."
            )
        )
    return section


def tuning(
    study: str,
    summary: Source | None,
    front: pd.DataFrame | None,
    picked: Source | None,
    pareto_png: bytes | None,
) -> Section:
    """A tuning study: its Pareto front (figure and table) and the values picked for the tuned run."""
    section = Section(f"Tuning: {study}", anchor=f"tuning-{study}")
    if summary is None and front is None:
        return section.add(missing_note(f"Tuning study {study}", f"tune@{study}"))
    if summary is not None:
        section.add(
            Paragraph(
                f"{summary.get('trials', DASH)} trials: {summary.get('complete', DASH)} complete, "
                f"{summary.get('pruned', DASH)} pruned, {summary.get('failed', DASH)} failed; "
                f"{summary.get('front_size', DASH)} on the Pareto front. Every trial is a short training scored on "
                "the validation split (never test)."
            )
        )
    if pareto_png is not None:
        section.add(Figure(f"pareto-{study}", pareto_png, f"Study {study}: trials, Pareto front (red), pick (star)."))
    if front is not None and not front.empty:
        section.add(Table.from_frame(front, "The Pareto front (the picked trial: picked = yes).", digits=4))
    if picked is not None:
        section.add(
            Paragraph(f"Pick rule: {picked.get('rule', DASH)}; trial {picked.get('trial', DASH)}."),
            Table.from_records(
                [{"value": k, "picked": v} for k, v in picked["values"].items()]
                + [{"value": f"{k} (validation)", "picked": v} for k, v in picked.get("objectives", {}).items()],
                digits=4,
            ),
        )
    return section


def bone_age(metrics: Source | None, scatter: bytes | None) -> Section:
    """Bone-age regression from landmarks (the paper's downstream task), when the boneage stage has run."""
    section = Section("Bone age", anchor="bone-age")
    if metrics is None:
        return section.add(Paragraph("Bone age: not run (stage boneage)."))
    section.add(
        Paragraph(
            f"An ensemble of {metrics.get('members', DASH)} MLPs classifies age into "
            f"{metrics.get('bucket_months', DASH)}-month buckets from each image's landmarks (paper 3.2): "
            f"train {metrics.get('n_train', DASH)}, val {metrics.get('n_val', DASH)}, "
            f"test {metrics.get('n_test', DASH)} images. 'chronological' is the patient's age; 'bone age' is "
            "the phantom's own skeletal age (it has no counterpart on real data)."
        )
    )
    chrono = metrics["chronological"]
    bone = metrics.get("bone_age", {}) or {}
    paper = metrics.get("paper", {}) or {}
    records = [
        {
            "landmarks from": name,
            "MAE chronological [months]": (chrono.get(name) or {}).get("mae_months"),
            "R² chronological": (chrono.get(name) or {}).get("r2"),
            "MAE bone age [months]": (bone.get(name) or {}).get("mae_months"),
            "R² bone age": (bone.get(name) or {}).get("r2"),
            "paper MAE [months]": paper.get(name),
        }
        for name in dict.fromkeys([*BONE_AGE_SOURCES, *chrono, *paper])
        if name in chrono or name in paper
    ]
    section.add(Table.from_records(records, caption="Test split; 'baseline' predicts the training mean age."))
    if scatter is not None:
        section.add(Figure("bone-age-scatter", scatter, "Predicted against chronological age, test split."))
    return section
