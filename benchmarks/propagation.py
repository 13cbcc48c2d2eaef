"""Memory and prediction speed of the propagate stage as the number of images grows.

Builds a phantom project once (the project's phantom release, ingested at the
paper's working size 384 x 224), then a synthetic ingest folder of N images by
replicating the ingested images, their truth contours and the seed
annotations under new filestems (the seeds come first, so every N has all of
them). The propagate stage (tiny settings: 1 round, 2 epochs, one torch
thread) runs serially in a fresh process per N, which reports:

- ``peak_mb_small`` / ``peak_mb_large``: peak resident memory (MB, ru_maxrss)
  of the process that runs the stage on N = --small (50) / --large (400)
  images; flat = streaming works;
- ``s_per_image_predict``: seconds per unlabelled image for the prediction
  part of a round (network, refinement, confidence, shard write, truth
  scoring: round time minus training time) at N = --large.

Usage: python benchmarks/propagation.py [--small N] [--large N] [--repo PATH]
(``--repo`` runs another checkout's stage code, e.g. an older version, on
the same data). The last line printed is one JSON object with these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

PROJECT = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 384, 224
SETTINGS = ["propagate.rounds=1", "propagate.epochs=2", "propagate.threads=1", "propagate.device=cpu"]


def build_base(root: Path) -> Path:
    """A phantom project in ``root``: release, seeds and truth, ingested at 384 x 224."""
    from stages.config import build_stage

    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["seed"] = 0
    params["runner"] = {"kind": "serial"}
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    build_stage("phantom", root, []).run_serial()
    build_stage("ingest", root, [f"ingest.height={HEIGHT}", f"ingest.width={WIDTH}"]).run_serial()
    return root


def replicate(base: Path, dest: Path, n: int, drop: tuple[str, ...] = ()) -> Path:
    """A project of ``n`` ingested images: the base's images (seeds first) reused under new filestems."""
    params = yaml.safe_load((base / "params.yaml").read_text())
    paths = params["paths"]
    manifest = pd.read_parquet(base / paths["ingest"] / "manifest.parquet")
    seeds = pd.read_csv(base / paths["seed_annotations"] / "annotations.csv", dtype=str, keep_default_na=False)
    seed_stems = set(seeds.filestem)
    manifest = pd.concat([manifest[manifest.filestem.isin(seed_stems)], manifest[~manifest.filestem.isin(seed_stems)]])
    manifest = manifest.reset_index(drop=True)
    truth = pq.read_table(base / paths["truth"] / "contours.parquet").to_pandas()
    truth_by_stem = dict(tuple(truth.groupby("filestem", sort=False)))
    (dest / "ingest/images").mkdir(parents=True, exist_ok=True)
    rows, truth_parts, renamed = [], [], {}
    for i in range(n):
        row = manifest.iloc[i % len(manifest)].to_dict()
        old = row["filestem"]
        if i < len(manifest):
            new = old
        else:
            patient = 5000 + i
            new = f"{patient:04d}_{old.split('_', 1)[1]}"
            row["patient_id"] = str(patient)
        row["filestem"], row["image_path"] = new, f"images/{new}.png"
        os.link(base / paths["ingest"] / f"images/{old}.png", dest / "ingest" / row["image_path"])
        rows.append(row)
        renamed[new] = old
        if old in truth_by_stem:
            truth_parts.append(truth_by_stem[old].assign(filestem=new))
    from denseseg.io.tables import MANIFEST, TRUTH_CONTOURS, write_table

    write_table(pd.DataFrame(rows, columns=MANIFEST.names), dest / "ingest/manifest.parquet", MANIFEST)
    contours = pd.concat(truth_parts).sort_values(["filestem", "structure", "point"], kind="stable")
    (dest / "truth").mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.Table.from_pandas(contours, schema=TRUTH_CONTOURS, preserve_index=False),
        dest / "truth/contours.parquet",
        compression="zstd",
        row_group_size=32 * 6000,
    )
    shutil.copytree(base / paths["seed_annotations"], dest / "seeds")
    for key in drop:  # params another checkout's stage does not know
        params["propagate"].pop(key, None)
    params["paths"].update(ingest="ingest", truth="truth", seed_annotations="seeds", masks="masks", metrics="metrics")
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])  # the checkout under test (the installed package may be another)
import denseseg.propagation.trainer as trainer
fit_seconds = []
_fit = trainer.SegmentationTrainer.fit
def fit(self, *a, **k):
    t = time.perf_counter(); out = _fit(self, *a, **k); fit_seconds.append(time.perf_counter() - t); return out
trainer.SegmentationTrainer.fit = fit
from stages.config import build_stage
report = build_stage("propagate", sys.argv[2], sys.argv[3:]).run_serial()
rounds = report.metrics["rounds"]
predict = sum(r["seconds"] for r in rounds) - sum(fit_seconds)
n_pred = sum(r["n_predicted"] for r in rounds)
print(json.dumps({"mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "n_predicted": n_pred,
                  "s_per_image_predict": predict / max(n_pred, 1), "accepted": report.metrics["final_images_accepted"],
                  "dice": report.metrics["final_dice_mean"]}))
"""


def run_stage(repo: Path, project: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(repo))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(repo), str(project), *SETTINGS],
        capture_output=True,
        text=True,
        env=env,
        cwd=repo,
    )
    if out.returncode:
        raise SystemExit(f"propagate stage failed on {project}: {out.stderr.strip().splitlines()[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=50)
    parser.add_argument("--large", type=int, default=400)
    parser.add_argument("--repo", type=Path, default=PROJECT, help="checkout whose stage code runs")
    args = parser.parse_args()
    np.random.seed(0)
    work = Path(tempfile.mkdtemp(prefix="bench-propagate-"))
    try:
        print(f"building a phantom project at {HEIGHT}x{WIDTH} ...", flush=True)
        base = build_base(work / "base")
        results = {}
        for n in (args.small, args.large):
            drop = () if args.repo.resolve() == PROJECT else ("cache_items",)
            project = replicate(base, work / f"n{n}", n, drop)
            results[n] = run_stage(args.repo.resolve(), project)
            r = results[n]
            print(
                f"N={n:4d}: peak RSS {r['mb']:7.0f} MB | predict {r['s_per_image_predict']:.3f} s/image "
                f"({r['n_predicted']} predicted) | {r['accepted']} images with masks, Dice {r['dice']}",
                flush=True,
            )
        figures = {
            "peak_mb_small": round(results[args.small]["mb"], 1),
            "peak_mb_large": round(results[args.large]["mb"], 1),
            "s_per_image_predict": round(results[args.large]["s_per_image_predict"], 4),
            "n_small": args.small,
            "n_large": args.large,
            "working_size": [HEIGHT, WIDTH],
        }
        print(json.dumps(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
