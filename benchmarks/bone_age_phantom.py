"""Bone-age regression on a larger wrist phantom, from its true landmarks: what the regressor can learn.

The demo pipeline keeps about 20 training images after QC, far too few for a
60-class ensemble; this renders a phantom of ``--patients`` patients (PA views
only, no seed annotations), takes every image's true landmarks in the working
frame (``denseseg.phantom.truth_landmarks``; a bone not ossified or not wholly
on the image is absent, NaN), splits the images by patient (60 / 10 / 30 %
train / val / test, seeded), and trains the ``boneage`` ensemble of
params.yaml on the train split for both targets. Figures (months):

- ``n_train``, ``n_val``, ``n_test``: images per split;
- ``<target>_mae_months``, ``<target>_r2``: the ensemble on the test split,
  target ``chronological`` (the dataset's age) or ``bone_age`` (the skeletal
  age the phantom grew the bones to);
- ``<target>_baseline_mae_months``: the mean training age for every test image;
- ``seconds``: rendering plus training.

Usage: python benchmarks/bone_age_phantom.py [--patients N]
The last line printed is one JSON object with these figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

PROJECT = Path(__file__).resolve().parents[1]
from denseseg.anatomy import WRIST  # noqa: E402
from denseseg.bone_age.config import BoneAgeParams  # noqa: E402
from denseseg.bone_age.experiment import fit_and_score, mean_age_baseline  # noqa: E402
from denseseg.bone_age.training import AgeSamples  # noqa: E402
from denseseg.training.config import TrainingConfig  # noqa: E402


def render(root: Path, params: dict, patients: int) -> None:
    """The phantom stage with more patients, PA views only and no seed annotations."""
    from stages.config import build_stage

    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    overrides = [f"phantom.n_patients={patients}", "phantom.n_seed_annotations=0", "phantom.p_lateral=0.0"]
    build_stage("phantom", root, [*overrides, "phantom.p_other=0.0"]).run_serial()


def truth_samples(truth_dir: Path, height: int, width: int) -> tuple[list[str], list[str], np.ndarray, dict]:
    """(filestems, patient ids, (n, 710, 2) true landmarks, {"chronological", "bone_age"} months)."""
    import pandas as pd

    from denseseg.phantom.truth_landmarks import read_truth_items

    images = pd.read_parquet(truth_dir / "images.parquet").set_index("filestem")
    stems, patients, points, ages, bone_ages = [], [], [], [], []
    for item in read_truth_items(truth_dir, height, width, WRIST):
        if not np.isfinite(item.landmarks).any():
            continue
        stems.append(item.filestem)
        patients.append(str(images.at[item.filestem, "patient_id"]))
        points.append(item.landmarks)
        ages.append(12.0 * item.info["age"])
        bone_ages.append(12.0 * item.info["bone_age"])
    months = {"chronological": np.array(ages), "bone_age": np.array(bone_ages)}
    return stems, patients, np.stack(points), months


def patient_split(patients: list[str], seed: int) -> np.ndarray:
    """train / val / test per image, whole patients to one split (60 / 10 / 30 % of patients)."""
    unique = sorted(set(patients))
    order = np.random.default_rng(seed).permutation(len(unique))
    cut_val, cut_test = round(0.6 * len(unique)), round(0.7 * len(unique))
    split_of = {}
    for rank, index in enumerate(order):
        split_of[unique[index]] = "train" if rank < cut_val else "val" if rank < cut_test else "test"
    return np.array([split_of[p] for p in patients])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=300)
    args = parser.parse_args()
    import torch

    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    section = params["boneage"]
    network, training = BoneAgeParams(**section["network"]), TrainingConfig(**section["training"])
    torch.set_num_threads(training.threads)
    height, width, seed = params["ingest"]["height"], params["ingest"]["width"], params["seed"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="boneage-phantom-") as tmp:
        render(Path(tmp), params, args.patients)
        stems, patients, points, months = truth_samples(Path(tmp) / params["paths"]["truth"], height, width)
    split = patient_split(patients, seed)
    figures: dict = {f"n_{s}": int((split == s).sum()) for s in ("train", "val", "test")}
    print(f"{len(stems)} PA images of {len(set(patients))} patients: {figures}")
    for target, ages in months.items():
        parts = {
            s: AgeSamples([t for t, k in zip(stems, split) if k == s], points[split == s], ages[split == s])
            for s in ("train", "val", "test")
        }
        result = fit_and_score(
            network,
            training,
            parts["train"],
            parts["val"],
            parts["test"],
            anatomy=WRIST,
            height=height,
            width=width,
            seed=seed,
        )
        _, baseline = mean_age_baseline(parts["train"], parts["test"])
        figures[f"{target}_mae_months"] = round(result.metrics["mae_months"], 2)
        figures[f"{target}_r2"] = round(result.metrics["r2"], 3)
        figures[f"{target}_baseline_mae_months"] = round(baseline["mae_months"], 2)
        print(
            f"{target}: MAE {result.metrics['mae_months']:.1f} months, R2 {result.metrics['r2']:.3f} "
            f"(mean training age: MAE {baseline['mae_months']:.1f})"
        )
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
