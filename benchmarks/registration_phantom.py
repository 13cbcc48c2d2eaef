"""Registration accuracy on the wrist phantom at the paper's 384 x 224, on true masks.

Why a second registration benchmark: ``benchmarks/registration.py`` warps one
atlas with a known field; this one runs the stages themselves (``phantom`` ->
``ingest`` at 384 x 224 -> true masks -> ``contours`` -> ``register``) in a
scratch project, so the figure includes everything the phantom varies (growth,
per-bone pose, smooth fields, crops, cut long bones, reference choice,
group-wise template). The masks are the phantom's true masks, so the error is the
registration's own; the ``make run`` demo scores it on propagated masks at
192 x 112 instead.

Printed figures (the last line is one JSON object), as in ``registration.json``:
- ``median_px``, ``mean_px``, ``p95_px``: registered landmark vs the true position of
  its atlas point (the template landmarks' own; see ``denseseg.evaluation.correspondence``);
- ``reference_identity_median_px`` (and mean, p95): the same landmarks scored at the
  reference's atlas points;
- ``median_px_uncut``: bones whole in both images; ``groups``: median per group;
- ``images_in``, ``images_passed``: QC counts; ``seconds``: the register stage's wall time;
- with ``--held-out``: ``held_out_median_px`` (and mean, p95, ``held_out_reference_identity_median_px``):
  two-fold cross-fitting, the template and its landmarks' atlas points made from the
  complete images of one half and scored on the passed images of the other, so no
  image both defines a landmark and scores it.

Usage: python benchmarks/registration_phantom.py [--patients 60] [--height 384] [--width 224]
       [--workdir DIR (kept; default a temporary folder)] [--set register.registration.key=value ...] [--held-out]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
import numpy as np  # noqa: E402

from denseseg.anatomy import WRIST  # noqa: E402
from denseseg.evaluation.correspondence import scored_errors, summarise, template_identity  # noqa: E402
from denseseg.io.contours import read_contour_shard  # noqa: E402
from denseseg.io.ingested import read_working_frames, working_frames  # noqa: E402
from denseseg.io.mask_store import mask_rows, write_mask_shard  # noqa: E402
from denseseg.io.tables import MANIFEST, QC, TRUTH_CONTOURS, read_table  # noqa: E402
from denseseg.phantom.truth_masks import truth_masks  # noqa: E402
from denseseg.shape.registration import (  # noqa: E402
    RegistrationParams,
    TemplateParams,
    groupwise_template,
    make_reference,
    register_image,
)
from stages.config import build_stage, load_params  # noqa: E402

STRUCTURES = list(WRIST.structures)


def write_truth_masks(root: Path, shard_size: int = 16) -> int:
    """Mask shards (as ``propagate`` writes them) holding every ingested image's true masks."""
    manifest = read_table(root / "data/interim/ingest/manifest.parquet", MANIFEST)
    truth = read_table(root / "data/truth/contours.parquet", TRUTH_CONTOURS)
    by_image = dict(tuple(truth.groupby("filestem", sort=False)))
    frames = working_frames(manifest)
    out = root / "data/interim/masks"
    out.mkdir(parents=True, exist_ok=True)
    rows, shard, count = [], 0, 0
    for record in manifest.sort_values("filestem").to_dict("records"):
        stem = record["filestem"]
        if stem not in by_image:
            continue
        rows += mask_rows(stem, truth_masks(by_image[stem], frames[stem], STRUCTURES), STRUCTURES)
        count += 1
        if count % shard_size == 0:
            write_mask_shard(out / f"shard-{shard:04d}.parquet", rows)
            rows, shard = [], shard + 1
    if rows:
        write_mask_shard(out / f"shard-{shard:04d}.parquet", rows)
    return count


def held_out(root: Path, overrides: list[str], seed: int = 0) -> dict:
    """Two-fold cross-fitted error (see the module docstring), with the register stage's reference and params."""
    section = load_params(root, overrides)["register"]
    params = RegistrationParams(**section["registration"])
    template_params = TemplateParams(**{**section["template"], "iterations": 1})
    reference_stem = json.loads((root / "reports/metrics/registration.json").read_text())["reference"]["filestem"]
    frames = read_working_frames(root / "data/interim/ingest/manifest.parquet")
    contours, borders = {}, {}
    for shard in sorted((root / "data/interim/contours").glob("shard-*.parquet")):
        c, b = read_contour_shard(shard, STRUCTURES)
        contours.update(c)
        borders.update(b)
    qc = read_table(root / "data/processed/qc.parquet", QC)
    passed = sorted(set(qc.loc[qc["image_passed"], "filestem"]))
    truth_rows = read_table(root / "data/truth/contours.parquet", TRUTH_CONTOURS)
    truth = {
        stem: {
            s: frames[stem].to_working(g.sort_values("point")[["x", "y"]].to_numpy(np.float64))
            for s, g in rows.groupby("structure")
        }
        for stem, rows in truth_rows.groupby("filestem")
        if stem in frames
    }
    views = {stem: frames[stem].view_box() for stem in contours if stem in frames}
    ref = make_reference(
        reference_stem, contours[reference_stem], WRIST.landmark_counts, borders[reference_stem], views[reference_stem]
    )
    complete = [k for k in sorted(contours) if k != ref.filestem and all(s in contours[k] for s in STRUCTURES)]
    order = np.random.default_rng(seed).permutation(len(complete))
    halves = [sorted(complete[i] for i in order[f::2]) for f in (0, 1)]
    ours, theirs = [], []
    for fold in (0, 1):
        build = halves[fold]
        built = groupwise_template(ref, [(contours[k], borders[k], views[k]) for k in build], params, template_params)
        identity = {
            s: template_identity(
                ref.landmarks[s],
                truth[ref.filestem][s],
                [(a.landmarks[s], a.evidence[s], truth[build[a.index]][s]) for a in built.averaged if s in a.landmarks],
            )
            for s in STRUCTURES
        }
        for stem in (k for k in passed if k not in build and k != ref.filestem):
            results, _ = register_image(built.template, contours[stem], params, borders[stem], views[stem])
            for s, res in results.items():
                args = (
                    ref.landmarks[s],
                    truth[ref.filestem][s],
                    res.landmarks,
                    truth[stem][s],
                    views[ref.filestem],
                    views[stem],
                )
                ours.append(scored_errors(*args, identity=identity[s])[0])
                theirs.append(scored_errors(*args)[0])
    ours, theirs = summarise(np.concatenate(ours)), summarise(np.concatenate(theirs))
    return {
        "held_out_median_px": round(ours["median_px"], 3),
        "held_out_mean_px": round(ours["mean_px"], 3),
        "held_out_p95_px": round(ours["p95_px"], 3),
        "held_out_reference_identity_median_px": round(theirs["median_px"], 3),
        "held_out_template_images": [len(h) for h in halves],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--workdir", type=Path, default=None, help="scratch project (kept); default: a temp folder")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra params.yaml override, e.g. register.registration.lam=8",
    )
    parser.add_argument("--held-out", action="store_true", help="also the two-fold cross-fitted error")
    args = parser.parse_args()

    scratch = args.workdir or Path(tempfile.mkdtemp(prefix="denseseg-regbench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "params.yaml", scratch / "params.yaml")
    overrides = [
        f"phantom.n_patients={args.patients}",
        f"ingest.height={args.height}",
        f"ingest.width={args.width}",
        *args.overrides,
    ]
    try:
        for stage in ("phantom", "ingest"):
            print(f"{stage} ...", flush=True)
            build_stage(stage, scratch, overrides).run_serial()
        images = write_truth_masks(scratch)
        print(f"true masks for {images} images", flush=True)
        build_stage("contours", scratch, overrides).run_serial()
        print("register ...", flush=True)
        started = time.perf_counter()
        metrics = build_stage("register", scratch, overrides).run_serial().metrics
        seconds = time.perf_counter() - started
        extra = held_out(scratch, overrides) if args.held_out else {}
    finally:
        if args.workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    ref = metrics["reference_identity"]
    out = {
        "median_px": round(metrics["median_px"], 3),
        "mean_px": round(metrics["mean_px"], 3),
        "p95_px": round(metrics["p95_px"], 3),
        "reference_identity_median_px": round(ref["median_px"], 3),
        "reference_identity_mean_px": round(ref["mean_px"], 3),
        "reference_identity_p95_px": round(ref["p95_px"], 3),
        "median_px_uncut": round(metrics["median_px_uncut"], 3),
        "groups": {g: round(v["median_px"], 3) for g, v in metrics["groups"].items()},
        "images_in": metrics["images_in"],
        "images_passed": metrics["images_passed"],
        "height": args.height,
        "width": args.width,
        "seconds": round(seconds, 1),
        **extra,
    }
    print(
        f"registration on the phantom, true masks, {args.height}x{args.width}: "
        f"{out['images_passed']} of {out['images_in']} images passed QC"
    )
    print(
        f"  vs the template landmarks' atlas points: median {out['median_px']} px, mean {out['mean_px']} px, "
        f"p95 {out['p95_px']} px; per group {out['groups']}"
    )
    print(
        f"  vs the reference's atlas points: median {out['reference_identity_median_px']} px, "
        f"mean {out['reference_identity_mean_px']} px, p95 {out['reference_identity_p95_px']} px"
    )
    if extra:
        print(
            f"  held out (template from one half, scored on the other): median {out['held_out_median_px']} px, "
            f"mean {out['held_out_mean_px']} px; at the reference's points "
            f"{out['held_out_reference_identity_median_px']} px"
        )
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
