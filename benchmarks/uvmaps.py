"""Representation floor and speed of uv-map generation and landmark extraction.

No network: ground-truth uv maps are generated from the true landmarks, every
landmark is extracted back, and the error against the true landmark is the
floor that every TRE of a model trained on these maps sits on.

Data: the real JSRT shapes (../shared/data/jsrt-landmarks/landmarks.csv,
polygon masks at 256 x 256; template of the first 160 sorted cases, evaluated on
the other 86) and wrist shapes at 384 x 224 from the phantom atlas
(``denseseg.shape.synthetic.wrist_cases``: atlas bones with random pose and
contour perturbation, masks from the dense contours, landmarks every 8th
point; template of 40 cases, evaluated on 20).

Closing JSON line (units):
- floor_median_px_jsrt, floor_mean_px_jsrt, floor_p95_px_jsrt: extraction error, px at 256 x 256
- floor_median_px_wrist, floor_mean_px_wrist, floor_p95_px_wrist: px at 384 x 224
- floor_*_px_jsrt_softmin_t1: the paper's eq. 3 at temperature 1 (K = 5), for comparison
- floor_median_px_jsrt_polar: polar maps with the affine estimator
- uvmap_ms_jsrt, extract_ms_jsrt: ms per image, 5 structures at 256 x 256, one thread (median)
- uvmap_ms_wrist, extract_ms_wrist: ms per image, 17 bones at 384 x 224, one thread (median)
- hours_per_10k_jsrt: (uvmap + extract) ms x 10,000 images on one core, in hours
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from denseseg.anatomy import JSRT, WRIST  # noqa: E402
from denseseg.io.jsrt import polygon_masks, read_landmarks_csv, to_working  # noqa: E402
from denseseg.shape.synthetic import wrist_cases  # noqa: E402
from denseseg.shape.template import build_template  # noqa: E402
from denseseg.uv.extraction import ExtractionParams, extract_landmarks  # noqa: E402
from denseseg.uv.maps import dense_uv, item_crops, landmark_uv  # noqa: E402

CSV = Path(os.environ.get("DENSESEG_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "jsrt-landmarks/landmarks.csv"


def run(cases, anatomy, template, height, width, mode="cartesian", params=ExtractionParams(), extrapolate=True):
    """(errors px (all landmarks), uvmap ms per image, extract ms per image)."""
    targets = landmark_uv(template, mode)
    errors, t_gen, t_ext = [], [], []
    for masks, landmarks in cases:
        t0 = time.perf_counter()
        crops, _ = item_crops(masks, landmarks, template, mode, extrapolate)
        uv, m = dense_uv(crops, anatomy.structures, height, width)
        t1 = time.perf_counter()
        found = extract_landmarks(uv, targets, anatomy.landmark_counts.values(), m, params)
        t2 = time.perf_counter()
        t_gen.append(t1 - t0)
        t_ext.append(t2 - t1)
        errors.append(np.linalg.norm(found.points[0] - landmarks, axis=1))
    return np.concatenate(errors), 1000 * np.median(t_gen), 1000 * np.median(t_ext)


def stats(err):
    return float(np.nanmedian(err)), float(np.nanmean(err)), float(np.nanpercentile(err, 95))


def main() -> int:
    out = {}
    if not CSV.exists():
        print(f"JSRT landmarks not found at {CSV}; JSRT figures are null")
        for k in ("floor_median_px_jsrt", "floor_mean_px_jsrt", "floor_p95_px_jsrt", "uvmap_ms_jsrt", "extract_ms_jsrt"):
            out[k] = None
    else:
        lm = read_landmarks_csv(CSV)
        names = sorted(lm)
        arr = np.stack([to_working(lm[n]) for n in names])
        template = build_template(arr[:160], JSRT)
        test = [(polygon_masks(a), a) for a in arr[160:]]
        err, gen, ext = run(test, JSRT, template, 256, 256)
        med, mean, p95 = stats(err)
        print(f"JSRT cartesian+affine  ({len(test)} images, 166 landmarks): median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px")
        print(f"JSRT timing per image (5 structures, 256x256, one thread): uv maps {gen:.2f} ms, extraction {ext:.2f} ms")
        out.update(floor_median_px_jsrt=med, floor_mean_px_jsrt=mean, floor_p95_px_jsrt=p95, uvmap_ms_jsrt=gen, extract_ms_jsrt=ext)
        err_s, _, ext_s = run(test, JSRT, template, 256, 256, params=ExtractionParams(method="softmin", k=5, temperature=1.0))
        med, mean, p95 = stats(err_s)
        print(f"JSRT cartesian+softmin (eq. 3, K=5, T=1): median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px ({ext_s:.2f} ms)")
        out.update(floor_median_px_jsrt_softmin_t1=med, floor_p95_px_jsrt_softmin_t1=p95)
        err_p, gen_p, _ = run(test, JSRT, template, 256, 256, mode="polar")
        med, mean, p95 = stats(err_p)
        print(f"JSRT polar+affine: median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px (uv maps {gen_p:.2f} ms)")
        out.update(floor_median_px_jsrt_polar=med, floor_p95_px_jsrt_polar=p95)
        out["hours_per_10k_jsrt"] = (out["uvmap_ms_jsrt"] + out["extract_ms_jsrt"]) * 1e4 / 3.6e6
        print(f"10,000 JSRT-sized images on one core: {out['hours_per_10k_jsrt'] * 60:.1f} min (linear in images; shards run in parallel)")

    cases = [(m, l) for _, m, l in wrist_cases(60, seed=20240607)]
    template = build_template(np.stack([l for _, l in cases[:40]]), WRIST)
    err, gen, ext = run(cases[40:], WRIST, template, 384, 224)
    med, mean, p95 = stats(err)
    print("wrist shapes: phantom atlas bones with random pose/contour variation (denseseg.shape.synthetic), not rendered phantom images")
    print(f"wrist cartesian+affine (20 images, 710 landmarks): median {med:.3f} px, mean {mean:.3f} px, p95 {p95:.3f} px")
    print(f"wrist timing per image (17 bones, 384x224, one thread): uv maps {gen:.2f} ms, extraction {ext:.2f} ms")
    out.update(floor_median_px_wrist=med, floor_mean_px_wrist=mean, floor_p95_px_wrist=p95, uvmap_ms_wrist=gen, extract_ms_wrist=ext)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in out.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
