"""Registration benchmark: time per image (17 bones, one core) and correspondence accuracy.

Data: synthetic wrists with known dense correspondence (``denseseg.shape.
registration_synthetic``: the atlas under a seeded similarity and smooth warp,
masks rasterised at 384 x 224 by default), run through the library exactly as
the ``contours`` and ``register`` stages do: outlines (4,850 points per image),
the medoid reference, per-bone pre-alignment + CPD, snapping, QC.

Printed figures (the last line is one JSON object):
- ``ms_per_image``: median wall time to register one image, 17 bones, milliseconds,
  one thread (BLAS/OpenMP pinned to 1 before numpy is imported);
- ``ms_per_image_mean``: mean of the same, milliseconds;
- ``contours_ms_per_image``: outline extraction for one image, milliseconds;
- ``median_px``, ``mean_px``, ``p95_px``: distance between registered landmarks
  and the true positions of the same atlas points, working pixels;
- ``*_px_scored``: the same over the landmarks the ``register`` stage scores
  (both ends anatomy: not on the reference's edge cut, true point inside the image);
- ``dice_median``: QC Dice of the landmark polygons vs the masks (1);
- ``images``, ``height``, ``width``: what was measured.

- ``template_s``: building the group-wise template (once per run, not per image), seconds.

Every value not given on the command line is the pipeline's (``contours`` and
``register`` in ``params.yaml``); ``--set register.registration.key=value`` changes one.

Usage: python benchmarks/registration.py [--images 12] [--scale 1.0] [--seed 0]
       [--set register.registration.prealign=icp ...]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from denseseg.anatomy import WRIST  # noqa: E402
from denseseg.evaluation.correspondence import landmark_errors, scored_errors  # noqa: E402
from denseseg.shape.contours import border_flags, image_contours  # noqa: E402
from denseseg.shape.quality import QCParams, bone_qc  # noqa: E402
from denseseg.shape.registration import (  # noqa: E402
    ReferenceParams,
    RegistrationParams,
    TemplateParams,
    choose_reference,
    groupwise_template,
    make_reference,
    register_image,
)
from denseseg.shape.registration_synthetic import synthetic_image  # noqa: E402
from stages.config import load_params  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 384 x 224")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a params.yaml override, e.g. register.template.iterations=0 or register.registration.inverse_weight=0",
    )
    args = parser.parse_args()
    pipeline = load_params(ROOT, args.overrides)
    contour_params, section = pipeline["contours"], pipeline["register"]
    params = RegistrationParams(**section["registration"])
    template_params = TemplateParams(**section["template"])
    qc = QCParams(**section["qc"])
    try:
        import open3d  # noqa: F401  (import once, outside the timings)
    except ImportError:
        pass

    images = [synthetic_image(args.seed + i, scale=args.scale) for i in range(args.images)]
    shape = images[0].masks.shape[1:]
    t_contours, outlines, borders = [], [], []
    for im in images:
        t0 = time.perf_counter()
        con, problems = image_contours(
            im.masks,
            WRIST.structures,
            total_points=contour_params["total_points"],
            min_points=contour_params["min_points_per_bone"],
            min_pixels=contour_params["min_pixels"],
            min_thickness=contour_params["min_thickness_px"],
        )
        t_contours.append(time.perf_counter() - t0)
        if problems:
            raise SystemExit(f"synthetic image has degenerate bones: {problems}")
        outlines.append(con)
        borders.append({s: border_flags(v, shape, contour_params["edge_tol_px"]) for s, v in con.items()})
    stems = [f"img-{i:03d}" for i in range(len(images))]
    reference_params = ReferenceParams(**section["reference"])
    ref_stem, info = choose_reference(
        dict(zip(stems, outlines)), WRIST.structures, reference_params, args.seed, dict(zip(stems, borders))
    )
    r = stems.index(ref_stem)
    reference = make_reference(ref_stem, outlines[r], WRIST.landmark_counts, borders[r], shape)
    anchor = reference  # landmark identities for scoring
    t0 = time.perf_counter()
    if template_params.iterations > 0:
        images_in = [(outlines[i], borders[i], shape) for i in range(len(images))]
        reference = groupwise_template(reference, images_in, params, template_params).template
    template_s = time.perf_counter() - t0
    register_image(reference, outlines[(r + 1) % len(images)], params, borders[(r + 1) % len(images)], shape)  # warm-up

    times, errors, scored, dices = [], [], [], []
    for i, im in enumerate(images):
        if i == r:
            continue
        t0 = time.perf_counter()
        results, problems = register_image(reference, outlines[i], params, borders[i], shape)
        times.append(time.perf_counter() - t0)
        for k, s in enumerate(WRIST.structures):
            res = results[s]
            errors.append(landmark_errors(anchor.landmarks[s], images[r].truth[s], res.landmarks, im.truth[s]))
            scored.append(
                scored_errors(anchor.landmarks[s], images[r].truth[s], res.landmarks, im.truth[s], shape, shape)[0]
            )
            dices.append(bone_qc(res, im.masks[k], outlines[i][s], qc).dice)
    errors = np.concatenate(errors)
    scored = np.concatenate(scored)
    out = {
        "ms_per_image": round(1e3 * float(np.median(times)), 1),
        "ms_per_image_mean": round(1e3 * float(np.mean(times)), 1),
        "contours_ms_per_image": round(1e3 * float(np.median(t_contours)), 1),
        "median_px": round(float(np.median(errors)), 3),
        "mean_px": round(float(errors.mean()), 3),
        "p95_px": round(float(np.percentile(errors, 95)), 3),
        "median_px_scored": round(float(np.median(scored)), 3),
        "mean_px_scored": round(float(scored.mean()), 3),
        "p95_px_scored": round(float(np.percentile(scored, 95)), 3),
        "dice_median": round(float(np.median(dices)), 4),
        "images": len(times),
        "height": int(shape[0]),
        "width": int(shape[1]),
        "prealign": params.prealign,
        "template_iterations": template_params.iterations,
        "inverse_weight": params.inverse_weight,
        "template_s": round(template_s, 2),
    }
    print(f"registration benchmark: {len(times)} synthetic images at {shape[0]}x{shape[1]}, reference {ref_stem}")
    print(
        f"  register one image (17 bones, 1 thread): {out['ms_per_image']} ms median, {out['ms_per_image_mean']} ms mean"
    )
    print(f"  outline extraction: {out['contours_ms_per_image']} ms per image")
    print(f"  landmark error vs truth: median {out['median_px']} px, mean {out['mean_px']} px, p95 {out['p95_px']} px")
    print(f"  QC Dice median: {out['dice_median']}")
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
