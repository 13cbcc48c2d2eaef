"""Where the tail of the registered landmarks' error comes from, on a project that has run ``register``.

Reads, under ``--root`` (default: this project), the registered landmarks
(``paths.landmarks``), the phantom's true landmark positions
(``paths.truth_landmarks``), the QC table (``paths.qc``), the ingest manifest
(each image's view inside the working frame) and the seed annotations (which
images had manual masks), and breaks the per-landmark error (px, working frame)
down over the images that pass QC (``--all`` for every registered image):

- by bone group and by bone;
- by how the bone was seen: whole, or cut by the edge of the image's view
  (a true landmark within ``--edge`` px of the view's border, outside it, or
  without a true position because it lies beyond the image);
  landmarks whose true point lies outside the view are left out (as ``register``
  leaves them unscored: there is no anatomy there to register to);
- by the mask it was registered to: a seed annotation or a pseudo-label;
- the template's landmarks on the reference's cut (``registration-info.json``:
  ``template.landmarks_on_reference_cut``) mark no anatomical point and are left
  out, as ``register`` leaves them unscored (``--with-reference-cut`` keeps them);
- the worst bones (image, bone: p95 and max error, QC Dice, residual).

Figures: ``median_px``, ``p95_px``, ``max_px`` overall and for each subset
(``<subset>_p95_px`` ...), the share of the error tail (landmarks above the
overall p95) that each subset holds (``tail_share_<subset>``), and the number
of images and bones.

Usage: python benchmarks/registration_tails.py [--root DIR] [--all] [--edge PX] [--with-reference-cut]
The last line printed is one JSON object with these figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from denseseg.anatomy import WRIST
from denseseg.io.ingested import working_frames
from denseseg.io.metrics import read_metrics
from denseseg.shape.landmark_table import parse_ranges
from denseseg.shape.view_box import inside_box, on_box_edge

PROJECT = Path(__file__).resolve().parents[1]


def landmark_errors(root: Path, edge_px: float) -> pd.DataFrame:
    """One row per scored landmark: image, bone, group, error px, cut, seed, QC of its bone and image."""
    paths = yaml.safe_load((root / "params.yaml").read_text())["paths"]
    keys = ["filestem", "structure", "index"]
    registered = pd.read_parquet(root / paths["landmarks"])
    truth = pd.read_parquet(root / paths["truth_landmarks"])
    if truth.empty:
        raise SystemExit(f"{root / paths['truth_landmarks']}: no truth (not a phantom project?)")
    rows = registered.merge(truth, on=keys, suffixes=("", "_true"))
    rows["error_px"] = np.hypot(rows["x"] - rows["x_true"], rows["y"] - rows["y_true"])
    # a true landmark without a position (NaN) lies outside the image: its bone is cut by the view
    rows["hidden"] = ~np.isfinite(rows["x_true"]) | ~np.isfinite(rows["y_true"])
    hidden = rows.groupby(["filestem", "structure"])["hidden"].transform("any")
    rows = rows[np.isfinite(rows["error_px"])].copy()
    rows["hidden_part"] = hidden[rows.index]

    # the view of each image: its exposed field inside the letterbox (WorkingFrame.view_box), as register sees it
    frames = working_frames(pd.read_parquet(root / paths["ingest"] / "manifest.parquet"))
    points = rows[["x_true", "y_true"]].to_numpy(np.float64)
    in_view = np.zeros(len(rows), dtype=bool)
    near_edge = np.zeros(len(rows), dtype=bool)
    for stem, at in rows.groupby("filestem").indices.items():
        view = frames[stem].view_box()
        in_view[at] = inside_box(points[at], view, 0.5)  # pixel centres on the picture
        near_edge[at] = on_box_edge(points[at], view, 0.5 + edge_px)
    rows["near_edge"] = near_edge
    # a true point outside the view has no anatomy in the image: registration can only guess it (unscored)
    rows["in_view"] = in_view
    rows["cut"] = rows.groupby(["filestem", "structure"])["near_edge"].transform("any") | rows["hidden_part"]

    seeds = {p.name for p in (root / paths["seed_annotations"]).iterdir() if p.is_dir()}
    seeds |= {p.stem for p in (root / paths["seed_annotations"]).glob("*.png")}
    rows["seed"] = rows["filestem"].isin(seeds)
    qc_columns = ["filestem", "structure", "dice", "residual_px", "order_reversals", "inverse_gap_px", "passed"]
    qc = pd.read_parquet(root / paths["qc"])[[*qc_columns, "image_passed"]]
    rows = rows.merge(qc, on=["filestem", "structure"], how="left")
    rows["group"] = rows["structure"].map(WRIST.group_of)
    # the template's landmarks on the reference's cut mark no anatomical point (register leaves them unscored)
    info = read_metrics(root / paths["metrics"], "registration")
    on_cut = (info.get("template") or {}).get("landmarks_on_reference_cut") or {}
    pairs = {(s, i) for s, text in on_cut.items() for i in parse_ranges(text)}
    rows["identity"] = [(s, i) not in pairs for s, i in zip(rows["structure"], rows["index"])]
    return rows


def figures(errors: pd.Series) -> dict:
    e = errors.to_numpy(np.float64)
    if not len(e):
        return {"n": 0}
    return {
        "n": len(e),
        "median_px": float(np.median(e)),
        "p95_px": float(np.percentile(e, 95)),
        "max_px": float(e.max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--root", type=Path, default=PROJECT)
    parser.add_argument("--all", action="store_true", help="every registered image, not only those passing QC")
    parser.add_argument("--edge", type=float, default=1.0, help="px from the view's border that count as cut")
    parser.add_argument(
        "--with-reference-cut", action="store_true", help="also score the template's landmarks on the reference's cut"
    )
    args = parser.parse_args()
    rows = landmark_errors(args.root, args.edge)
    if not args.all:
        rows = rows[rows["image_passed"].fillna(False).astype(bool)]
    unseen = int((~rows["in_view"]).sum())
    rows = rows[rows["in_view"]]
    print(f"{unseen} landmarks whose true point lies outside the image's view are left out (no anatomy to match)")
    if not args.with_reference_cut:
        no_identity = int((~rows["identity"]).sum())
        rows = rows[rows["identity"]]
        print(
            f"{no_identity} landmarks on the reference's cut are left out (no anatomical identity; --with-reference-cut)"
        )
    if rows.empty:
        raise SystemExit("no scored landmark (no image passed QC?)")
    tail = float(np.percentile(rows["error_px"], 95))
    out: dict = {"images": int(rows["filestem"].nunique()), "bones": int(len(rows.groupby(["filestem", "structure"])))}
    out.update(figures(rows["error_px"]))
    subsets = {
        **{group: rows["group"] == group for group in WRIST.groups},
        "whole": ~rows["cut"],
        "cut": rows["cut"],
        "seed_masks": rows["seed"],
        "pseudo_masks": ~rows["seed"],
    }
    in_tail = rows["error_px"] > tail
    print(
        f"{out['images']} images, {out['bones']} bones, {out['n']} landmarks ({'all registered' if args.all else 'QC passed'})"
    )
    print(f"{'subset':<14} {'n':>7} {'median':>7} {'p95':>7} {'max':>7} {'tail share':>10}")
    print(
        f"{'all':<14} {out['n']:>7} {out['median_px']:>7.2f} {out['p95_px']:>7.2f} {out['max_px']:>7.2f} {1.0:>10.2f}"
    )
    for name, mask in subsets.items():
        f = figures(rows.loc[mask, "error_px"])
        share = float(in_tail[mask].sum() / max(in_tail.sum(), 1))
        out.update({f"{name}_{k}": v for k, v in f.items()})
        out[f"tail_share_{name}"] = share
        if f["n"]:
            print(
                f"{name:<14} {f['n']:>7} {f['median_px']:>7.2f} {f['p95_px']:>7.2f} {f['max_px']:>7.2f} {share:>10.2f}"
            )
    per_bone = rows.groupby("structure")["error_px"].agg(median="median", p95=lambda e: np.percentile(e, 95), max="max")
    print("\nby bone (px):")
    print(per_bone.sort_values("p95", ascending=False).round(2).to_string())
    worst = (
        rows.groupby(["filestem", "structure"])
        .agg(
            p95=("error_px", lambda e: np.percentile(e, 95)),
            max=("error_px", "max"),
            dice=("dice", "first"),
            residual_px=("residual_px", "first"),
            cut=("cut", "first"),
            seed=("seed", "first"),
        )
        .sort_values("max", ascending=False)
        .head(12)
    )
    print("\nthe worst bones:")
    print(worst.round(3).to_string())
    worst_bones = worst.reset_index()
    out["worst_bones_cut"] = int(worst_bones["cut"].sum())
    out["worst_bones_min_dice"] = float(worst_bones["dice"].min())
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
