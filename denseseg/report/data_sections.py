"""The report's sections on the data half: the data flow with counts, propagation, registration, the claims.

Each builder takes parsed inputs (``Source``, DataFrames, PNG bytes) or None for an absent one; see
``denseseg.report.sections``.
"""

from __future__ import annotations

import math

import pandas as pd

from denseseg.report.document import DASH, Bullets, Figure, Note, Paragraph, Section, Table, format_value
from denseseg.report.figures import flow_figure, rounds_figure
from denseseg.report.source import Source, missing_note

PAPER_SCALE = {  # the paper's data (its section 3.1)
    "wrist_images": 4830,  # radiographs with landmarks after manual QC, split 60/40
    "wrist_size": (384, 224),
    "jsrt_images": 247,
    "jsrt_size": (256, 256),
}


def introduction(phantom: bool) -> list[Paragraph]:
    """The report's opening: what ran on which data, and how every section says how to reproduce it."""
    on = (
        "the embedded default data: a synthetic wrist phantom in the GRAZPEDWRI-DX format, and a chest phantom "
        "on the JSRT landmark shapes. Read 'What the phantom can and cannot claim' before any number."
        if phantom
        else "the data that params `paths.release_root` points at."
    )
    return [
        Paragraph(
            "Results of one `dvc repro` of the DenseSeg pipeline (Keuth et al., 'DenseSeg: Joint Learning for "
            "Semantic Segmentation and Landmark Detection Using Dense Image-to-Shape Representation') on " + on
        ),
        Paragraph(
            "Every section ends with how to reproduce its numbers: the stages, their params keys in "
            "`params.yaml`, the files read and the commands (`dvc repro <stage>` re-runs what changed; "
            "`python -m pipelines <stage> --set section.key=value` runs one stage with one value changed)."
        ),
    ]


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
        absent.append(missing_note("Ingest", "ingest"))
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
        absent.append(missing_note("Label propagation", "propagate"))
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
        absent.append(missing_note("Registration", "register"))
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
        absent.append(missing_note("uv maps", "uvmaps@wrist"))
    else:
        step(
            "in the training cache (uv maps)",
            "uvmaps@wrist",
            int(uvmaps.number("items")),
            f"train {int(uvmaps.number('train_items'))} / val {int(uvmaps.number('val_items'))} / "
            f"test {int(uvmaps.number('test_items'))}",
        )
    if release is None:
        absent.append(missing_note("Release", "release"))
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
        absent.append(missing_note("Split", "split"))
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
        return section.add(missing_note("Label propagation", "propagate"))
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
        return section.add(missing_note("Registration", "register"))
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


# ---------------------------------------------------------------- what the phantom can claim


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
