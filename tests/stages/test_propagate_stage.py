"""Stage ``propagate`` on a tiny synthetic project: outputs, rejects with reasons, metrics, same bytes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from skimage.measure import find_contours

from denseseg.anatomy import WRIST
from denseseg.io.mask_store import read_mask_shard
from denseseg.io.png import write_png
from denseseg.io.tables import FIELD_COLUMNS, MANIFEST, REJECTS, TRUTH_CONTOURS, read_table, write_table
from denseseg.preprocessing.working_frame import WorkingFrame
from denseseg.propagation.toy import toy_case
from stages.base import StageError
from stages.config import build_stage
from tests.builders import project_params

ORIG, WORK = (128, 96), (64, 48)
N_IMAGES = 10


def _manifest_row(stem: str, frame: WorkingFrame) -> dict:
    return {
        "filestem": stem,
        "patient_id": stem[:4],
        "study_number": 1,
        "age": 10.0,
        "sex": "M",
        "laterality": "R" if frame.flipped else "L",
        "flipped": frame.flipped,
        "projection": 1,
        "cast": False,
        "metal": False,
        "fracture_visible": False,
        "osteopenia": False,
        "ao_classification": "",
        "device_manufacturer": "toy",
        "pixel_spacing_mm": 0.144,
        "orig_height": frame.orig_height,
        "orig_width": frame.orig_width,
        "height": frame.height,
        "width": frame.width,
        "scale": frame.scale,
        "pad_top": frame.pad_top,
        "pad_left": frame.pad_left,
        **dict.fromkeys(FIELD_COLUMNS, 0.0),
        "image_path": f"images/{stem}.png",
    }


@pytest.fixture
def project(tmp_path):
    """Ingest output, seed annotations (with bad ones) and truth, built from toy ellipses."""
    images, masks = toy_case(N_IMAGES, *ORIG, n_structures=len(WRIST.structures), seed=7)
    stems = [f"{i:04d}_toy_01_WRI-{'R' if i % 3 == 0 else 'L'}1_M010" for i in range(N_IMAGES)]
    ingest = tmp_path / "data/interim/ingest"
    seeds = tmp_path / "data/raw/seed-annotations"
    rows, annotations, truth = [], [], []
    for i, stem in enumerate(stems):
        frame = WorkingFrame.fit(*ORIG, *WORK, flipped=i % 3 == 0)
        original = images[i][:, ::-1] if frame.flipped else images[i]  # the release shows a right hand
        orig_masks = masks[i][:, :, ::-1] if frame.flipped else masks[i]
        write_png(ingest / f"images/{stem}.png", np.round(frame.warp_image(original)).astype(np.uint16))
        rows.append(_manifest_row(stem, frame))
        for s, name in enumerate(WRIST.structures):
            (contour,) = find_contours(np.pad(orig_masks[s], 1).astype(float), 0.5)[:1]
            yx = contour[:-1] - 1
            truth += [(stem, name, j, x, y) for j, (y, x) in enumerate(yx)]
            if i < 8:  # images 0..7 are seeds
                path = f"{stem}/{name}.png"
                write_png(seeds / path, orig_masks[s].astype(np.uint8) * 255)
                annotations.append((stem, name, path))
    write_table(pd.DataFrame(rows, columns=MANIFEST.names), ingest / "manifest.parquet", MANIFEST)
    write_table(
        pd.DataFrame(truth, columns=TRUTH_CONTOURS.names), tmp_path / "data/truth/contours.parquet", TRUTH_CONTOURS
    )
    # bad seeds: unknown structure, empty mask, corrupt PNG, image not ingested
    annotations.append((stems[5], "femur", f"{stems[5]}/radius.png"))
    write_png(seeds / f"{stems[6]}/ulna.png", np.zeros(ORIG, np.uint8))
    (seeds / f"{stems[7]}/lunate.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    annotations.append(("9999_toy_01_WRI-L1_M010", "radius", f"{stems[0]}/radius.png"))
    pd.DataFrame(annotations, columns=["filestem", "structure", "mask_path"]).to_csv(
        seeds / "annotations.csv", index=False
    )
    params = {
        "seed": 123,
        "paths": {
            "ingest": "data/interim/ingest",
            "seed_annotations": "data/raw/seed-annotations",
            "truth": "data/truth",
            "masks": "data/interim/masks",
            "metrics": "reports/metrics",
        },
        "runner": {"kind": "serial"},
        "propagate": project_params(
            "propagate",
            rounds=2,
            epochs=3,
            finetune_epochs=1,
            network={"channels": [4, 8], "num_res_units": 0, "dropout": 0.0},
            confidence_threshold=0.0,
            expected_fraction=0.0,
            threads=1,
            shard_size=4,
            device="cpu",
        ),
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path, stems


def _run(root, *overrides):
    return build_stage("propagate", root, list(overrides)).run_serial()


def test_writes_masks_rejects_and_round_metrics(project):
    root, stems = project
    report = _run(root)
    out = root / "data/interim/masks"
    shards = sorted(out.glob("shard-*.parquet"))
    masks = {}
    for shard in shards:
        masks.update(read_mask_shard(shard, WRIST.structures))
    rejects = read_table(out / "rejects.parquet", REJECTS)
    reasons = rejects.groupby("filestem")["reason"].apply(" | ".join).to_dict()
    # good seeds keep their manual masks; bad seeds are rejected with the reason and propagated
    assert "unknown structure 'femur'" in reasons[stems[5]]
    assert "empty mask" in reasons[stems[6]]
    assert "cannot decode PNG" in reasons[stems[7]]
    assert "not in the ingest manifest" in reasons["9999_toy_01_WRI-L1_M010"]
    assert set(stems[:5]) <= set(masks)
    assert masks[stems[0]].shape == (len(WRIST.structures), *WORK) and masks[stems[0]].all(axis=(1, 2)).sum() == 0
    # every ingested image has masks in the shards or an exclusion reason
    excluded = set(rejects.filestem[rejects.reason.str.startswith("excluded")])
    assert set(masks) | excluded == set(stems) and not set(masks) & excluded
    metrics = json.loads((root / "reports/metrics/propagation.json").read_text())
    assert metrics["final_images_accepted"] == len(masks) and metrics["seeds_used"] == 5
    assert sorted(metrics["rounds"]) == ["1", "2"] and metrics["scored_against_truth"] == 1
    assert set(metrics["rounds"]["1"].get("groups", {})) <= {"carpals", "metacarpals", "ulna_radius"}
    assert metrics["seed_groups"]["all"]["dice_mean"] > 0.85  # warped seeds agree with the truth
    # a figure that cannot be computed (no pseudo-label accepted: no Dice of them) is absent, not null
    assert ("final_dice_mean" in metrics) == (metrics["final_pseudo_accepted"] > 0)
    assert "images_accepted" in metrics["rounds"]["1"]
    assert _numbers_only(metrics)  # dvc metrics show / diff read numbers
    info = json.loads((root / "reports/metrics/propagation-info.json").read_text())
    assert info["refiner"] == "classical" and info["device"] == "cpu"
    assert info["refiner_description"].startswith("classical refiner: random walker")
    assert list(report.tables["rounds"]["round"]) == [1, 2]
    assert not list(out.parent.glob("*.partial"))
    # dvc plots: a row per round with Dice and ASD, and the training loss (epochs 3, then 1 of fine-tuning)
    plots = root / "reports/plots/propagation"
    rounds = pd.read_csv(plots / "rounds.csv")
    assert list(rounds["round"]) == [1, 2]
    assert {"dice_mean_accepted", "dice_mean_all", "asd_mean_accepted_px", "asd_mean_all_px"} <= set(rounds.columns)
    assert rounds["dice_mean_all"].tolist() == pytest.approx([metrics["rounds"][r]["dice_mean_all"] for r in "12"])
    loss = pd.read_csv(plots / "train_loss.csv")
    assert list(loss.columns) == ["step", "round", "epoch", "loss"]
    assert loss["loss"].gt(0).all() and loss["step"].is_monotonic_increasing and loss["step"].iloc[-1] == 4


def _numbers_only(tree) -> bool:
    """Every leaf of the nested dicts is an int or a float (not a bool, a string, a list or null)."""
    if isinstance(tree, dict):
        return all(_numbers_only(v) for v in tree.values())
    return isinstance(tree, (int, float)) and not isinstance(tree, bool)


def test_loss_rows_count_epochs_over_rounds():
    from types import SimpleNamespace

    from denseseg.propagation.records import loss_rows

    per_epoch = [SimpleNamespace(round=1, epoch_losses=[0.9, 0.5, 0.4]), SimpleNamespace(round=2, epoch_losses=[0.3])]
    assert loss_rows(per_epoch, lambda r: 99) == [(1, 1, 1, 0.9), (2, 1, 2, 0.5), (3, 1, 3, 0.4), (4, 2, 1, 0.3)]
    # records with the final loss only: one point per round, at its last epoch
    final = [SimpleNamespace(round=1, train_loss=0.4), SimpleNamespace(round=2, train_loss=0.3)]
    assert loss_rows(final, {1: 3, 2: 2}.get) == [(3, 1, 3, 0.4), (5, 2, 2, 0.3)]


def test_same_params_same_bytes(project):
    root, _ = project
    _run(root, "propagate.rounds=1")
    first = {p.name: p.read_bytes() for p in (root / "data/interim/masks").glob("*.parquet")}
    _run(root, "propagate.rounds=1")
    second = {p.name: p.read_bytes() for p in (root / "data/interim/masks").glob("*.parquet")}
    assert first.keys() == second.keys() and all(first[k] == second[k] for k in first if k != "rounds.parquet")


def test_missing_inputs_and_bad_params_are_one_line_errors(project):
    root, _ = project
    with pytest.raises(StageError, match="refiner"):
        _run(root, "propagate.refiner.method=other")
    (root / "data/raw/seed-annotations/annotations.csv").unlink()
    with pytest.raises(StageError, match="seed annotations not found"):
        _run(root)
    (root / "data/interim/ingest/manifest.parquet").unlink()
    with pytest.raises(StageError, match="manifest.parquet"):
        _run(root)


def _outputs(root):
    out = root / "data/interim/masks"
    masks, confidence = {}, {}
    for shard in sorted(out.glob("shard-*.parquet")):
        masks.update(read_mask_shard(shard, WRIST.structures))
        table = pd.read_parquet(shard, columns=["item", "structure", "confidence"])
        confidence.update({(r.item, r.structure): r.confidence for r in table.itertuples()})
    files = {p.name: p.read_bytes() for p in out.glob("*.parquet") if not p.name.startswith(("shard-", "rounds"))}
    return masks, confidence, files


def test_streamed_outputs_do_not_depend_on_the_shard_size(project):
    root, _ = project
    _run(root, "propagate.rounds=2", "propagate.epochs=2", "propagate.shard_size=3", "propagate.training.batch_size=2")
    masks_a, conf_a, files_a = _outputs(root)
    assert len(list((root / "data/interim/masks").glob("shard-*.parquet"))) == 2  # 5 seeds + pseudo-labels, 3 per shard
    metrics_a = json.loads((root / "reports/metrics/propagation.json").read_text())
    _run(root, "propagate.rounds=2", "propagate.epochs=2", "propagate.shard_size=64", "propagate.training.batch_size=2")
    masks_b, conf_b, files_b = _outputs(root)
    metrics_b = json.loads((root / "reports/metrics/propagation.json").read_text())
    assert masks_a.keys() == masks_b.keys() and all(masks_a[k].tobytes() == masks_b[k].tobytes() for k in masks_a)
    assert conf_a == conf_b and files_a == files_b  # excluded masks and rejects: same bytes
    assert metrics_a == metrics_b  # no wall-clock figures in outputs
    rounds_a = (root / "data/interim/masks/rounds.parquet").read_bytes()
    _run(root, "propagate.rounds=2", "propagate.epochs=2", "propagate.shard_size=3", "propagate.training.batch_size=2")
    assert (root / "data/interim/masks/rounds.parquet").read_bytes() == rounds_a
    assert not list((root / "data/interim").glob("masks*/.work")) and not list(
        (root / "data/interim").glob("*.partial")
    )
