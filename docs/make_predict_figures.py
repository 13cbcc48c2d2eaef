"""Draw docs/figures/predict_real_<n>.png: the predict command on the four real GRAZPEDWRI-DX radiographs.

    python docs/make_predict_figures.py [--project DIR] [--model FOLDER] [--images DIR]

Runs ``python -m pipelines predict`` (the command a user runs) with the demo
DenseSeg wrist model of ``--project`` (default: this project; its params.yaml
gives the working size) on ``../shared/data/grazpedwri-dx/images`` and copies
each overlay, drawn at most 480 px high so it stays under 200 kB, into
docs/figures/. Prints one line per figure and its size.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_BYTES = 200_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="project folder with params.yaml and models/")
    parser.add_argument("--model", type=Path, help="model folder (default: PROJECT/models/denseseg-wrist)")
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared/data/grazpedwri-dx/images")
    args = parser.parse_args()
    model = args.model or args.project / "models/denseseg-wrist"
    images = sorted(args.images.glob("*.png"))
    if not images:
        print(f"no radiographs under {args.images}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pipelines", "predict", *map(str, images), "--model", str(model)]
        command += ["--out", tmp, "--root", str(args.project), "--set", "predict.overlay_max_side=480"]
        done = subprocess.run(command, cwd=ROOT)
        if done.returncode != 0:
            return done.returncode
        for n, image in enumerate(images, start=1):
            target = ROOT / "docs/figures" / f"predict_real_{n}.png"
            shutil.copyfile(Path(tmp) / image.stem / "overlay.png", target)
            size = target.stat().st_size
            print(f"{target.relative_to(ROOT)}: {image.name}, {size / 1000:.0f} kB")
            if size > MAX_BYTES:
                print(f"{target}: {size} bytes is above {MAX_BYTES}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
