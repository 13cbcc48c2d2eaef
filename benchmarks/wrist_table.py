"""The wrist comparison (the paper's Table 2 and the new-landmark experiment) at a chosen scale.

Runs the stages themselves in a scratch project, from the phantom to the
evaluation: ``phantom`` -> ``ingest`` -> ``propagate`` -> ``contours`` ->
``register`` -> ``split`` -> ``subsample`` -> ``uvmaps@wrist`` / ``uvmaps@wrist178``
-> ``train`` + ``evaluate`` for DenseSeg (710), HeatReg (710) and DenseSeg
trained on the 178 FPS landmarks. Every other value comes from params.yaml;
the options below override the scale only.

Printed figures (the last line is one JSON object); TRE and DSC are the
"average" rows (mean of the group means) of the test split, px at the working
resolution:
- ``tre_px_denseseg``, ``tre_px_heatreg710``, ``tre_ratio`` (DenseSeg / HeatReg; the paper: 2.5 / 4.8 = 0.52);
- ``dsc_denseseg``, ``dsc_heatreg710`` (fractions);
- ``tre_px_used_landmarks``, ``tre_px_new_landmarks``: DenseSeg-178 on the 178 landmarks it
  trained on and on the 532 it never saw (against the registration's pseudo-labels);
  ``new_over_used`` their ratio (target: at most 1.25);
- ``*_truth`` variants against the phantom's true landmark positions;
- ``images_train``, ``images_test``, ``seconds``.

Usage: python benchmarks/wrist_table.py [--patients 60] [--height 192] [--width 112] [--epochs 100]
       [--channels 8 16 32 64 128] [--workdir DIR (kept; default a temporary folder)]
       [--data-from PROJECT (copy PROJECT/data and params.yaml's data sections instead of running the
        data stages: e.g. `.` after `make run`; --patients/--height/--width are then ignored)]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import yaml

from stages.config import build_stage

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("denseseg-wrist", "heatreg710-wrist", "denseseg178-wrist")
DATA_STAGES = (
    "phantom",
    "ingest",
    "propagate",
    "contours",
    "register",
    "split",
    "subsample",
    "uvmaps@wrist",
    "uvmaps@wrist178",
)


def scratch_project(workdir: Path, args: argparse.Namespace) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["phantom"]["n_patients"] = args.patients
    params["ingest"].update({"height": args.height, "width": args.width})
    params["train"]["training"]["epochs"] = args.epochs
    if args.channels:
        for method in params["train"]["methods"].values():
            method["backbone"]["channels"] = list(args.channels)
    (workdir / "data/external").mkdir(parents=True, exist_ok=True)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def average(aggregate: dict, metric: str) -> float | None:
    """The "average" row (mean of the group means) of an evaluation aggregate; None when absent."""
    return aggregate.get("average", {}).get(metric, {}).get("mean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=60)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=112)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--channels", type=int, nargs="*", default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--data-from", type=Path, default=None)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wrist-table-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.data_from is not None:  # the data half as that project made it, at its scale
        source = yaml.safe_load((args.data_from / "params.yaml").read_text())
        args.patients, args.height, args.width = (
            source["phantom"]["n_patients"],
            source["ingest"]["height"],
            source["ingest"]["width"],
        )
        shutil.copytree(args.data_from / "data", workdir / "data", dirs_exist_ok=True)
    scratch_project(workdir, args)
    started = time.perf_counter()
    for stage in DATA_STAGES if args.data_from is None else ():
        t0 = time.perf_counter()
        build_stage(stage, workdir).run_serial()
        print(f"{stage}: {time.perf_counter() - t0:.0f} s", flush=True)
    for run in RUNS:
        for stage in (f"train@{run}", f"evaluate@{run}"):
            t0 = time.perf_counter()
            build_stage(stage, workdir).run_serial()
            print(f"{stage}: {time.perf_counter() - t0:.0f} s", flush=True)
    read = lambda name: json.loads((workdir / "reports/metrics" / name).read_text())  # noqa: E731
    evals = {run: read(f"eval-{run}.json") for run in RUNS}
    train = read("train-denseseg-wrist.json")
    primary = {run: evals[run]["primary"] for run in RUNS}
    sets = evals["denseseg178-wrist"]["landmark_sets"]
    figures = {
        "tre_px_denseseg": average(primary["denseseg-wrist"], "tre_px"),
        "tre_px_heatreg710": average(primary["heatreg710-wrist"], "tre_px"),
        "dsc_denseseg": average(primary["denseseg-wrist"], "dsc"),
        "dsc_heatreg710": average(primary["heatreg710-wrist"], "dsc"),
        "tre_px_denseseg_truth": average(primary["denseseg-wrist"], "tre_truth_px"),
        "tre_px_heatreg710_truth": average(primary["heatreg710-wrist"], "tre_truth_px"),
        "tre_px_used_landmarks": average(sets, "tre_px_used"),
        "tre_px_new_landmarks": average(sets, "tre_px_new"),
        "tre_px_used_landmarks_truth": average(sets, "tre_truth_px_used"),
        "tre_px_new_landmarks_truth": average(sets, "tre_truth_px_new"),
    }
    ratio = lambda a, b: None if a is None or b in (None, 0) else a / b  # noqa: E731
    figures["tre_ratio"] = ratio(figures["tre_px_denseseg"], figures["tre_px_heatreg710"])
    figures["new_over_used"] = ratio(figures["tre_px_new_landmarks"], figures["tre_px_used_landmarks"])
    figures.update(
        {
            "images_train": train["train_items"],
            "images_test": evals["denseseg-wrist"]["test_images"],
            "patients": args.patients,
            "height": args.height,
            "width": args.width,
            "epochs": args.epochs,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    for key, value in figures.items():
        print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
