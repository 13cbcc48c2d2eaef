"""A small synthetic reports tree: every file the report stage reads, in the formats the stages write.

Where a stage's own code writes a format cheaply (the tables, the uv cache,
the overlays' PNG encoder) that code writes it here too, so a change of format
shows up in these tests; the metrics JSON, the training curves and the
propagation rounds are written by hand in the columns and keys the stages
write (their writers import torch and monai, which would cost these tests
half a minute).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from denseseg.anatomy import JSRT, WRIST
from denseseg.evaluation.overlays import encode_rgb_png
from denseseg.shape.landmark_table import split_structures
from denseseg.shape.synthetic import wrist_cases
from denseseg.shape.template import build_template
from denseseg.uv import cache
from denseseg.uv.maps import item_crops
from stages.config import build_stage
from tests.conftest import PROJECT

UV_SIZE = (96, 56)
OVERLAY_RUNS = ("denseseg-wrist", "heatreg710-wrist")


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def png(seed: int, height: int = 30, width: int = 20) -> bytes:
    """A small RGB PNG, as the evaluate stage encodes its overlays."""
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return encode_rgb_png(rgb)


def _cases(run: str, anatomy, rng, new_landmarks: bool, estimators: tuple[str, ...]) -> pd.DataFrame:
    """Per-case rows of an evaluated run (3 test images), with the columns the tables stage reads."""
    rows = []
    for i in range(3):
        for structure in anatomy.structures:
            base = {
                "item": f"{run}-case{i}",
                "structure": structure,
                "group": anatomy.group_of(structure),
                "dsc": rng.uniform(0.5, 0.99),
                "surface_asd_px": rng.uniform(0.5, 4),
                "landmark_asd_px": rng.uniform(0.5, 4),
                "tre_px": rng.uniform(1, 9),
                "tre_truth_px": rng.uniform(1, 9) if anatomy is WRIST else np.nan,
                "reason": "",
            }
            for key in ("surface_asd", "landmark_asd", "tre", "tre_truth"):
                base[f"{key}_mm"] = base[f"{key}_px"] * 0.5
            if new_landmarks:
                for name in ("used", "new"):
                    base[f"tre_px_{name}"] = rng.uniform(1, 9)
                    base[f"tre_truth_px_{name}"] = rng.uniform(1, 9)
            for k, estimator in enumerate(estimators):
                rows.append({**base, "tre_px": base["tre_px"] + 0.1 * k, "estimator": estimator, "primary": k == 0})
    return pd.DataFrame(rows)


def _tables(root: Path, params: dict) -> None:
    """reports/eval/<run>/cases.parquet of every run the tables name, then the real tables stage."""
    rng = np.random.default_rng(7)
    spec = params["tables"]
    runs = {c["run"] for key in ("table1", "table2") for c in spec[key]["columns"].values()}
    runs |= set(spec["new_landmarks"]["runs"]) | set(spec["estimators"])
    for run in sorted(runs):
        anatomy = JSRT if run.endswith("-jsrt") else WRIST
        estimators = ("affine", "softmin") if run.startswith("denseseg") else ("subpixel",)
        rows = _cases(run, anatomy, rng, run in spec["new_landmarks"]["runs"], estimators)
        folder = root / "reports/eval" / run
        folder.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(folder / "cases.parquet", index=False)
    build_stage("tables", root).run_serial()


def _uv_cache(root: Path) -> None:
    """A 3-item wrist uv cache through the writer API (splits train, val, test)."""
    height, width = UV_SIZE
    cases = list(wrist_cases(3, seed=3, height=height, width=width))
    template = build_template(np.stack([flat for _, _, flat in cases]), WRIST)
    folder = root / "data/processed/uvmaps/wrist"
    folder.mkdir(parents=True)
    items, index = [], []
    for i, (name, masks, flat) in enumerate(cases):
        crops, _ = item_crops(masks, flat, template, extrapolate=True)
        rows = cache.item_rows(name, height, width, crops, split_structures(flat, WRIST), WRIST.structures)
        image = (np.random.default_rng(i).random((height, width)) * 60000).astype(np.uint16)
        items.append((name, rows, image, ("train", "val", "test")[i]))
    groups = cache.write_shard(folder / "shard-0000.parquet", [rows for _, rows, _, _ in items])
    image_groups = cache.write_images(folder / "images-0000.parquet", [(n, im) for n, _, im, _ in items])
    for (name, rows, _, split), g, ig in zip(items, groups, image_groups):
        index.append(
            {
                "item": name,
                "split": split,
                "mm_per_px": 0.5,
                "shard": "shard-0000.parquet",
                "row_group": g,
                "image_file": "images-0000.parquet",
                "image_row_group": ig,
                "height": height,
                "width": width,
                "n_structures": len(rows),
            }
        )
    cache.write_meta(
        folder,
        anatomy="wrist",
        mode="cartesian",
        uv_dtype="float32",
        index_rows=index,
        landmark_uv=cache.landmark_uv_frame(WRIST, template.flat_uv(), np.ones(WRIST.n_landmarks, bool)),
        landmarks="all",
        image_max=65535,
    )


def _rounds_csv(path: Path) -> None:
    """rounds.csv of two propagation rounds, in the propagate stage's columns (``PropagateStage._round_row``)."""
    rows = []
    for number, dice in ((1, 0.8), (2, 0.9)):
        row = {
            "round": number,
            "n_seeds": 4,
            "n_pseudo_train": 3 * (number - 1),
            "n_predicted": 8,
            "n_accepted": 3 + number,
            "n_rejected": 5 - number,
            "train_loss": 0.5 / number,
            "images_accepted": 3 + number,
            "dice_mean_accepted": dice,
            "asd_mean_accepted_px": 1.0,
            "dice_mean_all": dice - 0.1,
            "asd_mean_all_px": 1.1,
        }
        for group in sorted(WRIST.groups):
            row[f"dice_{group}"], row[f"asd_{group}_px"] = dice, 1.0
        rows.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def _metrics(root: Path, params: dict) -> None:
    m = root / "reports/metrics"
    _write_json(
        m / "phantom.json",
        {"enabled": 1, "n_images": 20, "n_patients": 8, "n_pa": 12, "n_lateral": 8, "n_seed_images": 4},
    )
    _write_json(m / "ingest.json", {"rows": 20, "selected": 12, "ingested": 12, "rejected": 0, "flipped": 5})
    groups = {g: {"dice_mean": 0.9, "asd_mean": 0.8, "n": 10} for g in WRIST.groups}
    _write_json(
        m / "propagation.json",
        {
            "images_in": 12,
            "seeds_used": 4,
            "final_images_accepted": 10,
            "final_pseudo_accepted": 6,
            "final_images_excluded": 2,
            "final_groups": {"all": {"dice_mean": 0.9, "asd_mean": 0.8, "n": 30}, **groups},
            "seed_groups": {"all": {"dice_mean": 0.99, "asd_mean": 0.05, "n": 40}},
            "scored_against_truth": 1,
        },
    )
    _write_json(m / "propagation-info.json", {"refiner_description": "classical refiner: random walker"})
    _write_json(
        m / "registration.json",
        {
            "images_in": 10,
            "images_registered": 10,
            "images_passed": 7,
            "images_failed": 3,
            "bones_failed_qc": 4,
            "dice_threshold": 0.8,
            "median_px": 0.8125,
            "p95_px": 6.25,
            "mean_px": 1.5,
            "landmarks_scored": 4970,
            "scored_against_truth": True,
            "groups": {
                g: {"n": 100, "median_px": 0.5, "p95_px": 2.0, "mean_px": 0.7, "max_px": 9.0} for g in WRIST.groups
            },
        },
    )
    _write_json(m / "split.json", {f"{s}_{k}": 3 for s in ("train", "val", "test") for k in ("images", "patients")})
    _write_json(
        m / "uvmaps-wrist.json",
        {"items": 7, "train_items": 3, "val_items": 2, "test_items": 2, "landmarks_cached": 710, "exactness_ok": 1},
    )
    _write_json(m / "release.json", {"images": 7, "patients": 5, "files": 8})
    (root / "reports/plots/train").mkdir(parents=True)
    for run in params["report"]["runs"]:
        curve = pd.DataFrame(
            {"epoch": [1, 2, 3], "lr": 0.01, "train_loss": [1.0, 0.5, 0.3], "val_tre_px": [9.0, 6.0, 5.0]}
        )
        curve.to_csv(root / "reports/plots/train" / f"{run}.csv", index=False)  # denseseg.training.curves' layout
        _write_json(m / f"train-{run}.json", {"epochs": 3, "best_epoch": 3, "best_monitor": 3.3, "parameters": 1000})
        truth = {"mean": 5.0, "std": 1.0, "n": 10} if run.endswith("-wrist") else {"mean": None, "std": None, "n": 0}
        average = {"dsc": {"mean": 0.8, "std": 0.1}, "tre_px": {"mean": 4.0, "std": 1.0}, "tre_truth_px": truth}
        _write_json(m / f"eval-{run}.json", {"test_images": 3, "primary": {"average": average}})
    _rounds_csv(root / "reports/plots/propagation/rounds.csv")


def _tuning(root: Path, params: dict) -> None:
    for i, study in enumerate(params["report"]["studies"]):
        front = pd.DataFrame(
            {
                "trial": [0, 3],
                "val_tre_px": [4.0, 6.0],
                "val_dice": [0.7, 0.8],
                "distance": [1.0, 0.5],
                "picked": [False, True],
            }
        )
        (root / "reports/plots/tuning").mkdir(parents=True, exist_ok=True)
        front.to_csv(root / "reports/plots/tuning" / f"{study}.csv", index=False)
        (root / "reports/tuning" / study).mkdir(parents=True)
        (root / "reports/tuning" / study / "pareto.png").write_bytes(png(100 + i, 40, 60))
        _write_json(
            root / "reports/tuned" / f"{study}.json",
            {
                "rule": "closest to the utopia point",
                "trial": 3,
                "values": {"loss.lambda_bce": 0.25},
                "objectives": {"val_dice": 0.8},
            },
        )
        _write_json(
            root / "reports/metrics" / f"tune-{study}.json",
            {"trials": 4, "complete": 4, "pruned": 0, "failed": 0, "front_size": 2},
        )


def write_boneage(root: Path) -> None:
    """The boneage stage's outputs, in the shape agreed with it."""
    methods = ("baseline", "registration", "denseseg", "heatreg", "truth")
    figures = {m: {"mae_months": 10.0 + i, "r2": 0.5 - 0.1 * i} for i, m in enumerate(methods)}
    _write_json(
        root / "reports/metrics/boneage.json",
        {
            "n_train": 20,
            "n_val": 5,
            "n_test": 7,
            "bucket_months": 4,
            "members": 5,
            "chronological": figures,
            "bone_age": figures,
            "paper": {"registration": 14.1, "denseseg": 13.9, "heatreg": 14.1, "baseline": 27.4},
        },
    )
    (root / "reports/boneage").mkdir(parents=True, exist_ok=True)
    (root / "reports/boneage/scatter.png").write_bytes(png(200, 50, 50))


def build_tree(root: Path) -> Path:
    """A project folder with params.yaml and every input of the report stage (bone age excluded)."""
    shutil.copy(PROJECT / "params.yaml", root / "params.yaml")
    params = yaml.safe_load((root / "params.yaml").read_text())
    _metrics(root, params)
    _tables(root, params)
    for i, run in enumerate(OVERLAY_RUNS):
        for k, case in enumerate(("best", "median", "worst")):
            (root / "reports/eval" / run / f"{case}.png").write_bytes(png(10 * i + k))
    _tuning(root, params)
    _uv_cache(root)
    return root


@pytest.fixture(scope="session")
def reports_tree(tmp_path_factory) -> Path:
    """The synthetic tree, built once; tests copy it before changing anything."""
    return build_tree(tmp_path_factory.mktemp("reports-tree"))


@pytest.fixture
def tree(reports_tree, tmp_path) -> Path:
    """A private copy of the synthetic tree."""
    copy = tmp_path / "project"
    shutil.copytree(reports_tree, copy)
    return copy


@pytest.fixture(scope="session")
def built(reports_tree, tmp_path_factory) -> Path:
    """A copy of the synthetic tree with the report stage run once on it (read it, do not change it)."""
    copy = tmp_path_factory.mktemp("built") / "project"
    shutil.copytree(reports_tree, copy)
    build_stage("report", copy).run_serial()
    return copy
