"""Ingest throughput and memory against a plain decode-and-resize loop.

Renders a phantom release once, replicates its PA images to N = 100 and
N = 2,000 rows (the same bytes under new filestems, so decode cost is real),
then measures, each on one core:

- ``plain_images_per_s``: PIL decode + resize of every file, nothing else;
- ``images_per_s``: the ingest stage (validation, decode, mirror, resample,
  PNG encode, atomic writes, manifest) run serially over the same files;
- ``ratio_to_plain``: images_per_s / plain_images_per_s (1.0 = no overhead);
- ``peak_mb_100`` / ``peak_mb_2000``: peak resident memory (MB) of a process
  that runs the stage over 100 / 2,000 images (flat = streaming works).

Usage: python benchmarks/ingest.py [--small N] [--large N]
The last line printed is one JSON object with these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

PROJECT = Path(__file__).resolve().parents[1]
from denseseg.io.grazpedwri import COLUMNS, read_metadata  # noqa: E402


def render_phantom(root: Path) -> Path:
    """A phantom release in ``root`` (demo params, more patients)."""
    from stages.config import build_stage

    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stage = build_stage("phantom", root, ["phantom.n_patients=60", "phantom.n_seed_annotations=0"])
    stage.run_serial()
    return root / params["paths"]["release_root"]


def replicate(source: Path, dest: Path, n: int) -> Path:
    """A release of ``n`` PA rows reusing the source's PA images under new, consistent filestems."""
    df = read_metadata(source / "dataset.csv")
    pa_rows = df[df.projection == "1"].reset_index(drop=True)
    rows = []
    (dest / "images_part1").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        row = dict(pa_rows.iloc[i % len(pa_rows)])
        patient = 1000 + i
        stem_old = row["filestem"]
        suffix = stem_old.split("_", 3)[3]
        row["filestem"] = f"{patient:04d}_{row['timehash'].zfill(10)}_{int(row['study_number']):02d}_{suffix}"
        row["patient_id"] = str(patient)
        src = next(source.glob(f"images_part*/{stem_old}.png"))
        os.link(src, dest / "images_part1" / f"{row['filestem']}.png")
        rows.append(row)
    lines = [",".join(COLUMNS)] + [",".join(f'"{r[c]}"' if "," in r[c] else r[c] for c in COLUMNS) for r in rows]
    (dest / "dataset.csv").write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    return dest


def plain_loop(release: Path, height: int, width: int) -> float:
    files = sorted(release.glob("images_part*/*.png"))
    start = time.perf_counter()
    for path in files:
        with Image.open(path) as im:
            pixels = np.asarray(im).astype(np.float32)
        Image.fromarray(pixels, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return len(files) / (time.perf_counter() - start)


def stage_in_subprocess(project: Path, release: Path) -> tuple[float, float]:
    """Run the ingest stage serially in a fresh process; (images per s, peak MB)."""
    code = (
        "import sys, time, json, resource; sys.path.insert(0, %r)\n"
        "from stages.config import build_stage\n"
        "st = build_stage('ingest', %r, ['paths.release_root=%s'])\n"
        "t = time.perf_counter(); r = st.run_serial(); dt = time.perf_counter() - t\n"
        "print(json.dumps({'n': r.metrics['ingested'], 's': dt,"
        " 'mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    ) % (str(PROJECT), str(project), release)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    return figures["n"] / figures["s"], figures["mb"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--large", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        print("rendering the phantom release ...", flush=True)
        source = render_phantom(work / "phantom")
        params = yaml.safe_load((work / "phantom/params.yaml").read_text())
        height, width = params["ingest"]["height"], params["ingest"]["width"]
        results = {}
        for n in (args.small, args.large):
            release = replicate(source, work / f"release-{n}", n)
            plain = plain_loop(release, height, width)
            staged, peak = stage_in_subprocess(work / "phantom", release)
            results[n] = (plain, staged, peak)
            print(
                f"N={n:5d}: plain loop {plain:7.1f} img/s | ingest stage {staged:7.1f} img/s "
                f"(x{staged / plain:.2f}) | peak RSS {peak:6.0f} MB",
                flush=True,
            )
        plain, staged, _ = results[args.large]
        figures = {
            "images_per_s": round(staged, 2),
            "plain_images_per_s": round(plain, 2),
            "ratio_to_plain": round(staged / plain, 3),
            "peak_mb_100": round(results[args.small][2], 1),
            "peak_mb_2000": round(results[args.large][2], 1),
            "working_size": [height, width],
        }
        print(json.dumps(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
