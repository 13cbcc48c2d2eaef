"""Representation floor and speed of uv-map generation and landmark extraction.

No network: ground-truth uv maps are generated from the true landmarks, every
landmark is extracted back, and the error against the true landmark is the
floor that every TRE of a model trained on these maps sits on.

Data: the real JSRT shapes (../shared/data/jsrt-landmarks/landmarks.csv,
polygon masks at 256 x 256; template of the first 160 sorted cases, evaluated on
the other 86) and the wrist phantom at 384 x 224: the phantom stage renders
60 PA images (60 patients, one study each, the stage's default age range
0.2-19 y, casts/metal/crops as by default, seed 20240607) into a temporary
folder; its truth (data/truth/contours.parquet) is mapped to the working frame
as ingest maps the images (``denseseg.phantom.truth_landmarks``: right hands
mirrored back, isotropic scale, letterbox), landmarks are every 8th dense
point, masks the dense polygons clipped to the image's footprint. Bones that
are not ossified or have a landmark outside the image are left out (counted).
Template of the first 40 images, evaluated on the other 20 (other patients).
``--wrist synthetic`` uses the former synthetic shape set instead
(``denseseg.shape.synthetic.wrist_cases``: atlas bones with random pose and
contour perturbation, no rendering; template of 40 cases, evaluated on 20).

Closing JSON line (units):
- floor_median_px_jsrt, floor_mean_px_jsrt, floor_p95_px_jsrt: extraction error, px at 256 x 256
- floor_median_px_wrist, floor_mean_px_wrist, floor_p95_px_wrist: px at 384 x 224
- floor_*_px_jsrt_softmin_t1: the paper's eq. 3 at temperature 1 (K = 5), for comparison
- floor_median_px_jsrt_polar: polar maps with the affine estimator
- uvmap_ms_jsrt, extract_ms_jsrt: ms per image, 5 structures at 256 x 256, one thread (median);
  uv maps = the per-structure crops the uvmaps stage caches
- densify_ms_jsrt, densify_ms_wrist: ms per image to expand the crops to (S, 2, H, W) NaN-padded maps
- uvmap_ms_wrist, extract_ms_wrist: ms per image, 17 bones at 384 x 224, one thread (median)
- hours_per_10k_jsrt: (uvmap + extract) ms x 10,000 images on one core, in hours
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from denseseg.anatomy import JSRT, WRIST  # noqa: E402
from denseseg.io.jsrt import polygon_masks, read_landmarks_csv, to_working  # noqa: E402
from denseseg.phantom.truth_landmarks import ABSENT, OK, OUTSIDE, read_truth_items  # noqa: E402
from denseseg.shape.synthetic import wrist_cases  # noqa: E402
from denseseg.shape.template import build_template  # noqa: E402
from denseseg.uv.extraction import ExtractionParams, extract_landmarks  # noqa: E402
from denseseg.uv.maps import dense_uv, item_crops, landmark_uv  # noqa: E402
from stages.config import build_stage  # noqa: E402

PROJECT = Path(__file__).resolve().parents[1]
CSV = (
    Path(os.environ.get("DENSESEG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    / "jsrt-landmarks/landmarks.csv"
)


def run(
    cases,
    anatomy,
    template,
    height,
    width,
    mode="cartesian",
    params=ExtractionParams(),
    extrapolate=True,
    per_image=False,
):
    """(errors px (all landmarks), uvmap ms per image, extract ms per image); densify ms in ``run.dense_ms``.

    A case is ``(masks, landmarks)`` or ``(masks, landmarks, truth)``: the maps come
    from ``landmarks``, errors are measured against ``truth`` (default: the
    landmarks); NaN in it (bones or landmarks left out) gives NaN errors. With
    ``per_image`` the first item is a list of per-image error arrays.
    """
    targets = landmark_uv(template, mode)
    # cartesian uv is normalised per axis: search neighbours in template pixels (polar is already square)
    scales = np.stack([template.uv_scale(s) for s in anatomy.structures]) if mode == "cartesian" else None
    # Each operation runs over all images in its own loop (as the uvmaps stage and an
    # evaluation would), so one does not run on caches the other just evicted.
    # Generation is what the uvmaps stage caches: the per-structure bbox crops.
    # Densifying to (S, 2, H, W) (the cache reader's job) is timed on its own.
    all_crops, t_gen = [], []
    for case in cases:
        t0 = time.perf_counter()
        all_crops.append(item_crops(case[0], case[1], template, mode, extrapolate)[0])
        t_gen.append(time.perf_counter() - t0)
    maps, t_dense = [], []
    for crops in all_crops:
        t0 = time.perf_counter()
        maps.append(dense_uv(crops, anatomy.structures, height, width))
        t_dense.append(time.perf_counter() - t0)
    run.dense_ms = 1000 * float(np.median(t_dense))
    errors, t_ext = [], []
    for case, (uv, m) in zip(cases, maps):
        truth = case[2] if len(case) > 2 else case[1]
        t0 = time.perf_counter()
        found = extract_landmarks(uv, targets, anatomy.landmark_counts.values(), m, params, uv_scales=scales)
        t_ext.append(time.perf_counter() - t0)
        errors.append(np.linalg.norm(found.points[0] - truth, axis=1))
    return (errors if per_image else np.concatenate(errors)), 1000 * np.median(t_gen), 1000 * np.median(t_ext)


PHANTOM_SEED = 20240607


def phantom_wrist_items(n_images: int, seed: int, height: int, width: int):
    """Render ``n_images`` PA phantom images (one per patient) with the phantom stage of params.yaml into a temp
    dir; their working-frame truth."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    overrides = [f"seed={seed}", f"phantom.n_patients={n_images}", "phantom.p_lateral=0.0", "phantom.p_other=0.0",
                 "phantom.p_followup=0.0", "phantom.n_seed_annotations=0", f"phantom.shard_size={n_images}"]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="uvmaps-bench-") as tmp:
        (Path(tmp) / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        t0 = time.perf_counter()
        report = build_stage("phantom", Path(tmp), overrides).run_serial()
        seconds = time.perf_counter() - t0
        items = list(read_truth_items(Path(tmp) / params["paths"]["truth"], height, width, WRIST))
    if len(items) != n_images:
        raise RuntimeError(f"phantom: {len(items)} PA truth images, expected {n_images} ({report.metrics})")
    return items, seconds


def stats(err):
    return float(np.nanmedian(err)), float(np.nanmean(err)), float(np.nanpercentile(err, 95))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wrist",
        choices=("phantom", "synthetic"),
        default="phantom",
        help="wrist data: rendered phantom truth (default) or the synthetic shape set",
    )
    args = parser.parse_args(argv)
    out = {}
    if not CSV.exists():
        print(f"JSRT landmarks not found at {CSV}; JSRT figures are null")
        for k in (
            "floor_median_px_jsrt",
            "floor_mean_px_jsrt",
            "floor_p95_px_jsrt",
            "uvmap_ms_jsrt",
            "extract_ms_jsrt",
        ):
            out[k] = None
    else:
        lm = read_landmarks_csv(CSV)
        names = sorted(lm)
        arr = np.stack([to_working(lm[n]) for n in names])
        template = build_template(arr[:160], JSRT)
        test = [(polygon_masks(a), a) for a in arr[160:]]
        err, gen, ext = run(test, JSRT, template, 256, 256)
        med, mean, p95 = stats(err)
        print(
            f"JSRT cartesian+affine  ({len(test)} images, 166 landmarks): median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px"
        )
        print(
            f"JSRT timing per image (5 structures, 256x256, one thread): uv maps {gen:.2f} ms "
            f"(+ {run.dense_ms:.2f} ms to densify for a network), extraction {ext:.2f} ms"
        )
        out.update(
            floor_median_px_jsrt=med,
            floor_mean_px_jsrt=mean,
            floor_p95_px_jsrt=p95,
            uvmap_ms_jsrt=gen,
            extract_ms_jsrt=ext,
            densify_ms_jsrt=run.dense_ms,
        )
        err_s, _, ext_s = run(
            test, JSRT, template, 256, 256, params=ExtractionParams(method="softmin", k=5, temperature=1.0)
        )
        med, mean, p95 = stats(err_s)
        print(
            f"JSRT cartesian+softmin (eq. 3, K=5, T=1): median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px ({ext_s:.2f} ms)"
        )
        out.update(floor_median_px_jsrt_softmin_t1=med, floor_p95_px_jsrt_softmin_t1=p95)
        err_p, gen_p, _ = run(test, JSRT, template, 256, 256, mode="polar")
        med, mean, p95 = stats(err_p)
        print(f"JSRT polar+affine: median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px (uv maps {gen_p:.2f} ms)")
        out.update(floor_median_px_jsrt_polar=med, floor_p95_px_jsrt_polar=p95)
        out["hours_per_10k_jsrt"] = (out["uvmap_ms_jsrt"] + out["extract_ms_jsrt"]) * 1e4 / 3.6e6
        print(
            f"10,000 JSRT-sized images on one core: {out['hours_per_10k_jsrt'] * 60:.1f} min (linear in images; shards run in parallel)"
        )

    if args.wrist == "synthetic":
        cases = [(m, l) for _, m, l in wrist_cases(60, seed=20240607)]
        template = build_template(np.stack([l for _, l in cases[:40]]), WRIST)
        err, gen, ext = run(cases[40:], WRIST, template, 384, 224)
        med, mean, p95 = stats(err)
        print(
            "wrist shapes: phantom atlas bones with random pose/contour variation (denseseg.shape.synthetic), not rendered phantom images"
        )
        print(
            f"wrist cartesian+affine (20 images, 710 landmarks): median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px"
        )
    else:
        items, render_s = phantom_wrist_items(60, PHANTOM_SEED, 384, 224)
        train, test = items[:40], items[40:]
        # The truth is known off the image too: the template uses every present bone's whole shape.
        template = build_template(np.stack([it.landmarks_all for it in train]), WRIST)
        ages = np.array([it.info["age"] for it in test])
        n_right = sum(it.info["laterality"] == "R" for it in test)
        n_cast = sum(it.info["cast"] for it in test)
        n_metal = sum(it.info["metal"] for it in test)
        print(
            f"wrist phantom: 60 PA images (60 patients) rendered by the phantom stage in a temp dir ({render_s:.0f} s, "
            f"seed {PHANTOM_SEED}), truth mapped to the 384x224 working frame; template of the first 40, "
            f"evaluated on the other 20 (ages {ages.min():.1f}-{ages.max():.1f} y, median {np.median(ages):.1f}; "
            f"{n_right} right hands, {n_cast} casts, {n_metal} metal)"
        )
        absent = sum(it.count(ABSENT) for it in test)
        outside = sum(it.count(OUTSIDE) for it in test)
        n_bones = sum(it.count(OK) for it in test)
        out_bones = {}
        for it in test:
            for bone, st in it.status.items():
                if st == OUTSIDE:
                    out_bones[bone] = out_bones.get(bone, 0) + 1
        print(
            f"wrist bones evaluated: {n_bones} of {17 * len(test)} (image, bone) pairs; left out: {absent} not ossified, "
            f"{outside} with a landmark outside the image ("
            + ", ".join(f"{b} {c}" for b, c in sorted(out_bones.items(), key=lambda kv: -kv[1]))
            + ")"
        )

        # Strict: only bones with every landmark on the image (maps and masks of those bones only).
        errs, gen_s, ext_s = run([(it.masks, it.landmarks) for it in test], WRIST, template, 384, 224, per_image=True)
        err = np.concatenate(errs)
        med, mean, p95 = stats(err)
        evaluated = int(np.isfinite(np.concatenate([it.landmarks[:, 0] for it in test])).sum())
        missed = int(sum((np.isfinite(it.landmarks[:, 0]) & ~np.isfinite(e)).sum() for it, e in zip(test, errs)))
        print(
            f"wrist cartesian+affine, bones wholly on the image ({evaluated} landmarks, {missed} not extracted): "
            f"median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px"
        )
        teen = np.array([it.info["age"] >= 12 for it in test])
        for label, sel in (("age >= 12 y", teen), ("age < 12 y", ~teen)):
            if sel.any():
                e = np.concatenate([x for x, keep in zip(errs, sel) if keep])
                m2, _, p2 = stats(e)
                print(
                    f"  {label} ({int(sel.sum())} images, {int(np.isfinite(e).sum())} landmarks): median {m2:.3f} px, p95 {p2:.3f} px"
                )

        # Clipped: every present bone; maps from the whole true shape, masks clipped to the image,
        # errors on the landmarks that lie on the image.
        clipped = []
        for it in test:
            truth = np.where(it.inside[:, None], it.landmarks_all, np.nan)
            clipped.append((it.masks_all, it.landmarks_all, truth))
        errs_c, gen, ext = run(clipped, WRIST, template, 384, 224, per_image=True)
        med_c, mean_c, p95_c = stats(np.concatenate(errs_c))
        evaluated_c = int(sum(it.inside.sum() for it in test))
        missed_c = int(sum((it.inside & ~np.isfinite(e)).sum() for it, e in zip(test, errs_c)))
        n_maps = sum(17 - it.count(ABSENT) for it in test) / len(test)
        print(
            f"wrist cartesian+affine, every present bone clipped to the image ({evaluated_c} landmarks on the image, "
            f"{missed_c} not extracted): median {med_c:.3f} px, mean {mean_c:.3f} px, p95 {p95_c:.3f} px"
        )
        per_bone = []
        offsets = WRIST.landmark_offsets()
        for bone, n in WRIST.landmark_counts.items():
            e = np.concatenate([x[offsets[bone] : offsets[bone] + n] for x in errs_c])
            if np.isfinite(e).any():
                per_bone.append((float(np.nanpercentile(e, 95)), bone))
        print(
            "  worst bones by p95 (clipped): "
            + ", ".join(f"{b} {v:.2f} px" for v, b in sorted(per_bone, reverse=True)[:4])
        )
        print(
            f"  timing with only the wholly visible bones ({n_bones / len(test):.1f} per image): uv maps {gen_s:.2f} ms, "
            f"extraction {ext_s:.2f} ms; the timing below is the clipped run ({n_maps:.1f} present bones per image)"
        )
        out.update(floor_median_px_wrist_clipped=med_c, floor_p95_px_wrist_clipped=p95_c)
    print(
        f"wrist timing per image (17 bones, 384x224, one thread): uv maps {gen:.2f} ms "
        f"(+ {run.dense_ms:.2f} ms to densify), extraction {ext:.2f} ms"
    )
    out.update(
        floor_median_px_wrist=med,
        floor_mean_px_wrist=mean,
        floor_p95_px_wrist=p95,
        uvmap_ms_wrist=gen,
        extract_ms_wrist=ext,
        densify_ms_wrist=run.dense_ms,
    )
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
