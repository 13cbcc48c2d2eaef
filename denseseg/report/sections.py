"""The sections of the pipeline's report, each built from the parsed outputs of the stages that feed it.

Every builder takes plain data (a metrics JSON as a ``Source``, a DataFrame,
PNG bytes) or None for an input that was not produced, and returns a
``Section``: an absent input becomes a ``Note`` saying what is missing, never
an error; a present input without a key the section needs raises
``ReportInputError`` naming its file and the key. The builders know the
stages' output formats but no folder layout: the caller reads the files and
adds the "how to reproduce" boxes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from denseseg.evaluation.published import TABLE_1_JSRT, TABLE_2_WRIST, PublishedTable
from denseseg.evaluation.tables import format_cell
from denseseg.report.document import DASH, Bullets, Figure, Note, Paragraph, Section, Table, format_value
from denseseg.report.figures import curves_figure, flow_figure, rounds_figure

PUBLISHED = {"table1": TABLE_1_JSRT, "table2": TABLE_2_WRIST}
PAPER_SCALE = {  # the paper's data (its section 3.1)
    "wrist_images": 4830,  # radiographs with landmarks after manual QC, split 60/40
    "wrist_size": (384, 224),
    "jsrt_images": 247,
    "jsrt_size": (256, 256),
}


BONE_AGE_SOURCES = ("baseline", "registration", "denseseg", "heatreg", "truth")  # the table's row order


class ReportInputError(ValueError):
    """An input of the report is present but not what its stage writes (one line, naming the file)."""


@dataclass(frozen=True)
class Source:
    """A parsed JSON input and the file it came from: ``source["a", "b"]`` is ``data["a"]["b"]`` or an error."""

    name: str
    data: Mapping

    def __getitem__(self, path):
        keys = path if isinstance(path, tuple) else (path,)
        node = self.data
        for depth, key in enumerate(keys):
            if not isinstance(node, Mapping) or key not in node:
                raise ReportInputError(f"{self.name}: no key {'.'.join(map(str, keys[: depth + 1]))!r}")
            node = node[key]
        return node

    def get(self, path, default=None):
        try:
            return self[path]
        except ReportInputError:
            return default

    def number(self, path) -> float | int:
        value = self[path]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            keys = path if isinstance(path, tuple) else (path,)
            raise ReportInputError(f"{self.name}: {'.'.join(map(str, keys))!r} is {value!r}, not a number")
        return value


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _missing(what: str, stage: str) -> Note:
    return Note(f"{what}: not run (stage `{stage}`); its output is absent, so this part of the report is empty.")


def _mean_std(stats, scale: float = 1.0, precision: int = 1) -> str:
    if not isinstance(stats, Mapping):
        return DASH
    return format_cell(stats.get("mean"), stats.get("std"), scale, precision)


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
                        "ours": _mean_std(cell.get("ours"), cell.get("ours_scale", 1.0)),
                        "paper": _mean_std(cell.get("paper")),
                    }
                )
    section.add(Table.from_records(rows, ["figure", "ours", "paper"]))
    if tables is None:
        section.add(_missing("Tables 1 and 2", "tables"))
    return section


# ---------------------------------------------------------------- data flow


def data_flow(
    ingest: Source | None,
    propagation: Source | None,
    registration: Source | None,
    split: Source | None,
    uvmaps: Source | None,
    release: Source | None,
    phantom: Source | None = None,
) -> Section:
    """Images at every step, from the release to the landmark dataset: a table and a bar figure."""
    section = Section("Data flow", anchor="data-flow")
    section.add(
        Paragraph(
            "How many images each stage received and passed on. Counts are images (radiographs); "
            "'dropped' is the difference to the step before and the detail says why."
        )
    )
    rows: list[dict] = []
    absent: list[Note] = []

    def step(label, stage, value, detail=""):
        before = next((r["images"] for r in reversed(rows) if isinstance(r["images"], int)), None)
        dropped = before - value if isinstance(value, int) and before is not None and before >= value else None
        rows.append({"step": label, "stage": f"`{stage}`", "images": value, "dropped": dropped, "detail": detail})

    if phantom is not None and phantom.get("enabled", 0):
        section.add(
            Paragraph(
                f"Source: the wrist phantom, {phantom.number('n_images')} synthetic radiographs of "
                f"{phantom.number('n_patients')} patients ({phantom.number('n_pa')} PA, {phantom.number('n_lateral')} "
                f"lateral), {phantom.number('n_seed_images')} of them with seed masks; the truth of every PA image is "
                "kept apart and read only by evaluation."
            )
        )
    if ingest is None:
        absent.append(_missing("Ingest", "ingest"))
    else:
        step("images in the release", "ingest", int(ingest.number("rows")), "rows of the release's metadata CSV")
        step(
            "selected (projection, cast / metal filters)",
            "ingest",
            int(ingest.number("selected")),
            "views and filters of params `ingest`",
        )
        step(
            "ingested",
            "ingest",
            int(ingest.number("ingested")),
            f"{int(ingest.number('rejected'))} rejected (unreadable or out of range); "
            f"{int(ingest.get('flipped', 0))} right hands mirrored",
        )
    if propagation is None:
        absent.append(_missing("Label propagation", "propagate"))
    else:
        step(
            "with masks (seeds + accepted pseudo-labels)",
            "propagate",
            int(propagation.number("final_images_accepted")),
            f"{int(propagation.number('seeds_used'))} seeds, {int(propagation.number('final_pseudo_accepted'))} "
            f"pseudo-labels accepted; {int(propagation.number('final_images_excluded'))} images below the "
            "confidence threshold",
        )
    if registration is None:
        absent.append(_missing("Registration", "register"))
    else:
        step("registered", "register", int(registration.number("images_registered")), "reference landmarks registered")
        step(
            "accepted by QC (landmarks)",
            "register",
            int(registration.number("images_passed")),
            f"{int(registration.number('images_failed'))} failed QC ({int(registration.get('bones_failed_qc', 0))} "
            f"bones below Dice {registration.get('dice_threshold', DASH)} or incomplete)",
        )
    if uvmaps is None:
        absent.append(_missing("uv maps", "uvmaps@wrist"))
    else:
        step(
            "in the training cache (uv maps)",
            "uvmaps@wrist",
            int(uvmaps.number("items")),
            f"train {int(uvmaps.number('train_items'))} / val {int(uvmaps.number('val_items'))} / "
            f"test {int(uvmaps.number('test_items'))}",
        )
    if release is None:
        absent.append(_missing("Release", "release"))
    else:
        step(
            "in the dataset release",
            "release",
            int(release.number("images")),
            f"{int(release.number('patients'))} patients, {int(release.number('files'))} files",
        )
    if rows:
        section.add(Table.from_records(rows, ["step", "stage", "images", "dropped", "detail"]))
        section.add(Figure("data-flow", flow_figure([(r["step"], r["images"]) for r in rows]), "Images at each step."))
    if split is not None:
        section.add(
            Paragraph(
                f"The patient-level split (stage `split`) covers every ingested image: train "
                f"{int(split.number('train_images'))} images of {int(split.number('train_patients'))} patients, val "
                f"{int(split.number('val_images'))} of {int(split.number('val_patients'))}, test "
                f"{int(split.number('test_images'))} of {int(split.number('test_patients'))}; only the images with "
                "landmarks reach the training cache."
            )
        )
    else:
        absent.append(_missing("Split", "split"))
    return section.add(*absent)


# ---------------------------------------------------------------- propagation

ROUND_COLUMNS = (
    "round",
    "n_seeds",
    "n_pseudo_train",
    "n_predicted",
    "n_accepted",
    "n_rejected",
    "dice_mean_accepted",
    "dice_mean_all",
    "asd_mean_accepted_px",
    "asd_mean_all_px",
)


def propagation(metrics: Source | None, info: Source | None, rounds: pd.DataFrame | None) -> Section:
    """Label propagation per round, scored against the phantom's truth: a figure, the rounds, the final groups."""
    section = Section("Label propagation per round", anchor="propagation")
    if metrics is None or rounds is None:
        return section.add(_missing("Label propagation", "propagate"))
    text = (
        "Semi-supervised label propagation (paper 3.1): a UNet trained on the seed masks predicts every other "
        "image, a refiner cleans the prediction, and confident images become pseudo-labels for the next round."
    )
    if info is not None and info.get("refiner_description"):
        text += f" Refiner: {info['refiner_description']}."
    section.add(Paragraph(text))
    if not metrics.get("scored_against_truth", 0):
        section.add(Note("No ground truth was available: Dice and ASD below are missing."))
    section.add(Figure("propagation-rounds", rounds_figure(rounds), "Dice and ASD against the truth, and counts."))
    table = rounds[list(ROUND_COLUMNS)].rename(
        columns={
            "n_seeds": "seeds",
            "n_pseudo_train": "pseudo-labels trained on",
            "n_predicted": "predicted",
            "n_accepted": "accepted",
            "n_rejected": "rejected",
            "dice_mean_accepted": "Dice (accepted)",
            "dice_mean_all": "Dice (all)",
            "asd_mean_accepted_px": "ASD accepted [px]",
            "asd_mean_all_px": "ASD all [px]",
        }
    )
    section.add(Table.from_frame(table, "Per round (rounds.csv); Dice and ASD against the phantom's truth."))
    groups = metrics.get("final_groups", {})
    seeds = metrics.get("seed_groups", {})
    if groups:
        records = [
            {
                "group": name.replace("_", "/"),
                "bones": stats.get("n"),
                "Dice": stats.get("dice_mean"),
                "ASD [px]": stats.get("asd_mean"),
                "seed masks' Dice": seeds.get(name, {}).get("dice_mean"),
            }
            for name, stats in groups.items()
        ]
        section.add(
            Table.from_records(
                records,
                caption="Accepted pseudo-labels of the last round against the truth, per group of bones; beside "
                "them the Dice of the seed masks (the annotations, at the working resolution) against the truth.",
            )
        )
    return section


# ---------------------------------------------------------------- registration


def registration(metrics: Source | None) -> Section:
    """Landmark error of the registration against the phantom's true landmarks: overall, per group, QC."""
    section = Section("Registration error against truth", anchor="registration")
    if metrics is None:
        return section.add(_missing("Registration", "register"))
    section.add(
        Paragraph(
            "The landmark dataset is made by registering a reference's landmarks onto every image's masks. On the "
            "phantom each landmark's true position is known, so the labels' own error is measured here: distance "
            "of every registered landmark to its true position, in working pixels."
        )
    )
    if not metrics.get("scored_against_truth", False):
        return section.add(Note("No truth for these images (real data): the registration error cannot be measured."))
    overall = [
        {
            "landmarks": "all scored",
            "n": metrics.get("landmarks_scored"),
            "median [px]": metrics.number("median_px"),
            "p95 [px]": metrics.number("p95_px"),
            "mean [px]": metrics.get("mean_px"),
        },
        {
            "landmarks": f"inside ({metrics.get('inside_margin_px', DASH)} px from the edge)",
            "n": metrics.get("landmarks_inside"),
            "median [px]": metrics.get("median_px_inside"),
            "p95 [px]": metrics.get("p95_px_inside"),
            "mean [px]": metrics.get("mean_px_inside"),
        },
        {
            "landmarks": "bones not cut by the image edge",
            "n": metrics.get("landmarks_uncut"),
            "median [px]": metrics.get("median_px_uncut"),
            "p95 [px]": metrics.get("p95_px_uncut"),
            "mean [px]": metrics.get("mean_px_uncut"),
        },
    ]
    section.add(Table.from_records(overall, caption="Registered landmarks against the truth (images that passed QC)."))
    groups = metrics.get("groups", {})
    if groups:
        records = [
            {
                "group": name.replace("_", "/"),
                "n": g.get("n"),
                "median [px]": g.get("median_px"),
                "p95 [px]": g.get("p95_px"),
                "mean [px]": g.get("mean_px"),
                "max [px]": g.get("max_px"),
            }
            for name, g in groups.items()
        ]
        section.add(Table.from_records(records, caption="Per group of bones."))
    section.add(
        Paragraph(
            f"QC: {metrics.get('images_passed', DASH)} of {metrics.get('images_in', DASH)} images passed "
            f"(landmark polygon vs mask Dice at least {metrics.get('dice_threshold', DASH)}); median Dice "
            f"{format_value(metrics.get('dice_median'))}, median fit residual "
            f"{format_value(metrics.get('residual_median_px'))} px."
        )
    )
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
        return section.add(_missing(title, "tables"))
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
                row.append(_mean_std(cell.get("ours"), cell.get("ours_scale", 1.0)))
                if columns[c].get("paper_method"):
                    row.append(_mean_std(cell.get("paper")))
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
        if not isinstance(truth, Mapping) or not _finite(truth.get("mean")):
            continue  # scored against annotations only (JSRT, real data)
        records.append(
            {
                "run": run,
                "test images": ev.get("test_images"),
                "DSC [%]": _mean_std(average.get("dsc"), 100.0),
                "TRE vs pseudo-labels [px]": _mean_std(average.get("tre_px")),
                "TRE vs truth [px]": _mean_std(average.get("tre_truth_px")),
                "TRE vs truth [mm]": _mean_std(average.get("tre_truth_mm")),
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
        return section.add(_missing("New-landmark experiment", "tables"))
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
                row[f"TRE {name} vs {target} [{unit}]"] = "cannot predict" if cannot else _mean_std(stats)
        row["note"] = entry.get("note") or ""
        records.append(row)
    return section.add(Table.from_records(records, caption=f"TRE mean ± std ({table.get('summary', 'average')})."))


def estimators(figures: Source | None) -> Section:
    """DenseSeg's two ways to read landmarks from the predicted uv maps: the paper's softmin and the affine fit."""
    section = Section("Landmark estimators", anchor="estimators")
    if figures is None:
        return section.add(_missing("Estimator comparison", "tables"))
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
        {"run": run, **{n: _mean_std(per_run.get(n), precision=2) for n in names}} for run, per_run in data.items()
    ]
    return section.add(Table.from_records(records, ["run", *names]))


# ---------------------------------------------------------------- figures of runs


def overlays(run: str, images: Mapping[str, bytes | None], items: Mapping[str, str] | None, scores=None) -> Section:
    """Best, median and worst test case of one run (by mean landmark ASD): reference red, prediction cyan/yellow."""
    section = Section(f"Overlays: {run}", anchor=f"overlays-{run}")
    found = {label: png for label, png in images.items() if png is not None}
    if not found:
        return section.add(_missing(f"Overlays of {run}", f"evaluate@{run}"))
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
        return section.add(_missing(f"uv cache {variant}", f"uvmaps@{variant}"))
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
        return section.add(_missing(f"Tuning study {study}", f"tune@{study}"))
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


def claims(
    n_images: int | None, size: tuple[int, int] | None, label_error_px: float | None, phantom: bool = True
) -> Section:
    """What the phantom's results can and cannot say about real radiographs, in plain words."""
    section = Section("What the phantom can and cannot claim", anchor="claims")
    if not phantom:
        return section.add(
            Bullets(
                (
                    "This run used real data (params `phantom.enabled: false`): the wrist phantom did not "
                    "produce the images, so there is no truth and every figure is agreement with the labels "
                    "(seed masks, propagated masks, registered landmarks), not accuracy.",
                    "The landmark labels are themselves the output of propagation and registration: their own "
                    "error cannot be measured here; it was measured on the phantom, where the truth is known.",
                )
            )
        )
    ours = f"{n_images} images with landmarks" if n_images is not None else "a few dozen images"
    at = f" at {size[0]} x {size[1]} px" if size else ""
    paper_h, paper_w = PAPER_SCALE["wrist_size"]
    error = (
        f" (median {label_error_px:.2f} px here)"
        if label_error_px is not None and math.isfinite(label_error_px)
        else ""
    )
    section.add(
        Bullets(
            (
                "The wrist images are synthetic: each is rendered from an atlas of the 17 bones, varied per patient "
                "and grown with age, with a simple cortical rim, texture, soft tissue, noise, casts and metal. Real "
                "radiographs have far richer anatomy, fractures, positioning, exposure and scanner differences that "
                "the phantom does not model; they are harder.",
                "Because the phantom knows the true bone outlines and landmark positions, this report can measure "
                f"what the paper could not: the error of the labels themselves{error}, and the models' error "
                "against the truth rather than against pseudo-labels.",
                "Nothing here is evidence of accuracy on real radiographs. The numbers test that the pipeline works "
                "end to end and compare methods under equal, known conditions; they are not the paper's numbers "
                "and are not expected to match them.",
                f"Scale: this demo has {ours}{at}, small networks and short trainings on a CPU; the paper used "
                f"{PAPER_SCALE['wrist_images']} radiographs with landmarks at {paper_h} x {paper_w} px and full-size "
                "UNets on a GPU. Distances in px are at this working resolution, not the paper's, so a pixel here "
                "is not a pixel there (reports/tables/table2.md also gives Table 2 in mm).",
                "The chest experiment (Table 1) uses the real JSRT landmark shapes with phantom images when the "
                "JSRT images are absent: its shapes are real, its images are not.",
                "To measure real accuracy: point params `paths.release_root` and `paths.seed_annotations` at a "
                "GRAZPEDWRI-DX download and real seed masks, set `phantom.enabled: false` and run `dvc repro` "
                "again; the truth-based figures then disappear and only agreement with the labels remains.",
            )
        )
    )
    return section
