"""Per-case scores (one row per test image and structure) and their summaries for the paper's tables.

A row holds every figure of Tables 1 and 2 for one structure of one image:

- ``dsc``: Dice of the predicted and reference masks, a fraction (the tables
  print percent). An empty prediction of a present structure scores 0 (a miss
  is a miss, not a gap).
- ``landmark_asd_px``: the paper's "ASD": mean distance of the structure's
  predicted landmarks to the reference mask's boundary
  (``surface.landmark_to_boundary``).
- ``surface_asd_px`` and ``hd95_px``: symmetric average surface distance and
  95th percentile between predicted and reference masks (``surface``); the
  paper's ASD for nnU-Net, which has no landmarks.
- ``tre_px``: mean landmark error against the reference landmarks (pseudo-labels
  on the phantom, annotations on real data); ``tre_truth_px`` against the
  phantom's true landmarks. ``n_landmarks`` counts the reference landmarks
  scored (a NaN reference landmark is not annotated and is left out).
- ``*_mm``: the same distances times the image's mm per px.
- for each named landmark set (e.g. ``used``/``new``): ``landmark_asd_px_<set>``,
  ``tre_px_<set>``, ``tre_mm_<set>``, ``tre_truth_px_<set>``,
  ``tre_truth_mm_<set>``, ``n_landmarks_<set>`` over that set's landmarks only.
- ``reason``: empty, or why values are NaN ("; "-separated). A NaN is never
  left unexplained, and no figure is computed from part of its inputs: a
  structure with some NaN predicted landmarks gets NaN landmark figures, not
  the mean of the rest (that would reward a method for abstaining).

``aggregate`` follows the paper's (and its published code's) convention:
mean ± sample std (ddof=1) over all rows of a group; "average" is the mean of
the group means with the mean of the group stds as its spread (not the std of
anything); "pooled" is mean ± std over all rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from denseseg.anatomy import Anatomy
from denseseg.evaluation.landmarks import tre
from denseseg.evaluation.segmentation import dice
from denseseg.evaluation.surface import hausdorff95, landmark_to_boundary, symmetric_surface_distance

NAN = float("nan")

# The per-case metrics that an evaluation summarises (the cells of the paper's Tables 1 and 2).
SUMMARY_METRICS = (
    "dsc",
    "landmark_asd_px",
    "surface_asd_px",
    "hd95_px",
    "tre_px",
    "tre_mm",
    "tre_truth_px",
    "tre_truth_mm",
)

# Metrics where a larger value is better (all others are distances).
HIGHER_IS_BETTER = frozenset({"dsc"})


def _stack(name: str, item: str, array, shape: tuple[int, ...] | None, dtype) -> np.ndarray:
    array = np.asarray(array, dtype=dtype)
    if shape is not None and array.shape != shape:
        raise ValueError(f"{item}: {name} must have shape {shape}, got {array.shape}")
    return array


def _set_name_ok(name: str) -> bool:
    return bool(name) and name.replace("_", "a").isalnum()


class _Reasons:
    """Ordered, de-duplicated reasons of one row."""

    def __init__(self) -> None:
        self._seen: dict[str, None] = {}

    def add(self, text: str) -> None:
        self._seen.setdefault(text, None)

    def text(self) -> str:
        return "; ".join(self._seen)


def _landmark_figures(
    pred: np.ndarray | None,
    ref: np.ndarray | None,
    truth: np.ndarray | None,
    ref_mask: np.ndarray,
    ref_present: bool,
    label: str,
    reasons: _Reasons,
) -> dict[str, float]:
    """landmark_asd_px, tre_px, tre_truth_px and n_landmarks over one structure's (selected) landmarks."""
    out = {"landmark_asd_px": NAN, "tre_px": NAN, "tre_truth_px": NAN, "n_landmarks": 0}
    n = 0 if pred is None else len(pred)
    if ref is not None:
        out["n_landmarks"] = int(np.isfinite(ref).all(axis=1).sum())
    if pred is None:
        reasons.add("the method predicts no landmarks")
        return out
    if n == 0:
        reasons.add(f"no{label} landmarks on this structure")
        return out
    nan_pred = ~np.isfinite(pred).all(axis=1)
    if nan_pred.any():
        reasons.add(f"{int(nan_pred.sum())} of {n} predicted{label} landmarks are NaN")
        return out
    if ref_present:
        out["landmark_asd_px"] = float(landmark_to_boundary(pred, ref_mask).mean())
    for key, target, missing in (("tre_px", ref, "reference"), ("tre_truth_px", truth, "truth")):
        if target is None:
            reasons.add(f"no {missing} landmarks given")
            continue
        annotated = np.isfinite(target).all(axis=1)
        if not annotated.any():
            reasons.add(f"no{label} {missing} landmarks on this structure (all NaN)")
            continue
        out[key] = float(tre(pred[annotated], target[annotated]).mean())
    return out


def score_case(
    item: str,
    anatomy: Anatomy,
    pred_masks: np.ndarray,
    pred_landmarks: np.ndarray | None,
    ref_masks: np.ndarray,
    ref_landmarks: np.ndarray | None,
    mm_per_px: float | None,
    truth_landmarks: np.ndarray | None = None,
    landmark_sets: Mapping[str, np.ndarray] | None = None,
) -> list[dict]:
    """Score one test image: one row per structure of ``anatomy`` (see the module docstring).

    Args:
        item: the image's name, copied into every row.
        anatomy: structures (channel order), landmark counts (flat landmark order) and groups.
        pred_masks: (S, H, W) predicted masks (bool or 0/1).
        pred_landmarks: (N, 2) predicted (x, y) px, NaN where not predicted; None for a
            method without landmarks (nnU-Net).
        ref_masks: (S, H, W) reference masks; an empty one is a structure absent from the reference.
        ref_landmarks: (N, 2) reference landmarks, NaN where not annotated; None when there are none.
        mm_per_px: the image's pixel spacing at the working resolution; None or NaN leaves mm columns NaN.
        truth_landmarks: (N, 2) true landmarks (the phantom), or None.
        landmark_sets: name -> (N,) bool selecting landmarks for extra columns (``used``, ``new``).
    """
    if not isinstance(item, str):
        raise TypeError(f"item must be the image's name (str), got {type(item).__name__}")
    n_struct, n_lm = len(anatomy.structures), anatomy.n_landmarks
    pred_masks = _stack("pred_masks", item, pred_masks, None, bool)
    if pred_masks.ndim != 3 or pred_masks.shape[0] != n_struct:
        raise ValueError(f"{item}: pred_masks must be (S={n_struct}, H, W), got {pred_masks.shape}")
    ref_masks = _stack("ref_masks", item, ref_masks, pred_masks.shape, bool)
    pts = {}
    for name, value in (("pred_landmarks", pred_landmarks), ("ref_landmarks", ref_landmarks)):
        pts[name] = None if value is None else _stack(name, item, value, (n_lm, 2), np.float64)
    pts["truth_landmarks"] = (
        None if truth_landmarks is None else _stack("truth_landmarks", item, truth_landmarks, (n_lm, 2), np.float64)
    )
    sets: dict[str, np.ndarray] = {}
    for name, selection in (landmark_sets or {}).items():
        if not _set_name_ok(name):
            raise ValueError(f"{item}: landmark set name {name!r} must be letters, digits and underscores")
        sets[name] = _stack(f"landmark set {name!r}", item, selection, (n_lm,), bool)
    mm = NAN if mm_per_px is None else float(mm_per_px)
    if np.isfinite(mm) and mm <= 0:
        raise ValueError(f"{item}: mm_per_px must be positive, got {mm}")

    offsets = anatomy.landmark_offsets()
    rows = []
    for s, structure in enumerate(anatomy.structures):
        reasons = _Reasons()
        pred, ref = pred_masks[s], ref_masks[s]
        ref_present, pred_present = bool(ref.any()), bool(pred.any())
        row: dict = {"item": item, "structure": structure, "group": anatomy.group_of(structure)}
        row["dsc"] = dice(pred, ref) if ref_present else NAN
        if not ref_present:
            reasons.add("structure absent from the reference mask")
        elif not pred_present:
            reasons.add("predicted mask is empty (DSC 0, no surface to measure)")
        row["surface_asd_px"] = symmetric_surface_distance(pred, ref)
        row["hd95_px"] = hausdorff95(pred, ref)

        span = slice(offsets[structure], offsets[structure] + anatomy.landmark_counts[structure])

        def cut(name: str, select: np.ndarray | None = None, span=span) -> np.ndarray | None:
            value = pts[name]
            if value is None:
                return None
            value = value[span]
            return value if select is None else value[select[span]]

        figures = _landmark_figures(
            cut("pred_landmarks"), cut("ref_landmarks"), cut("truth_landmarks"), ref, ref_present, "", reasons
        )
        row.update({k: figures[k] for k in ("landmark_asd_px", "tre_px", "tre_truth_px")})
        row["n_landmarks"] = figures["n_landmarks"]
        for name, select in sets.items():
            figures = _landmark_figures(
                cut("pred_landmarks", select),
                cut("ref_landmarks", select),
                cut("truth_landmarks", select),
                ref,
                ref_present,
                f" '{name}'",
                reasons,
            )
            for key in ("landmark_asd_px", "tre_px", "tre_truth_px", "n_landmarks"):
                row[f"{key}_{name}"] = figures[key]
        if not np.isfinite(mm):
            reasons.add("no mm_per_px for this image")
        for key in [k for k in row if "_px" in k]:
            row[key.replace("_px", "_mm")] = row[key] * mm
        row["reason"] = reasons.text()
        rows.append(_ordered(row, sets))
    return rows


def row_columns(sets: Iterable[str] = ()) -> list[str]:
    """The columns of ``score_case``'s rows, in order, for the given landmark set names."""
    keys = ["item", "structure", "group", "dsc"]
    for base in ("surface_asd", "hd95", "landmark_asd", "tre", "tre_truth"):
        keys += [f"{base}_px", f"{base}_mm"]
    keys.append("n_landmarks")
    for name in sets:
        for base in ("landmark_asd", "tre", "tre_truth"):
            keys += [f"{base}_px_{name}", f"{base}_mm_{name}"]
        keys.append(f"n_landmarks_{name}")
    keys.append("reason")
    return keys


def case_schema(sets: Iterable[str] = ()) -> pa.Schema:
    """Parquet schema of the per-case rows (for ``denseseg.io.tables.write_table``/``read_table``)."""
    types = {"item": pa.string(), "structure": pa.string(), "group": pa.string(), "reason": pa.string()}
    return pa.schema(
        [
            pa.field(k, types.get(k, pa.int32() if k.startswith("n_landmarks") else pa.float64()))
            for k in row_columns(sets)
        ]
    )


def _ordered(row: dict, sets: Iterable[str]) -> dict:
    """Fixed column order: identity, mask figures, landmark figures, per-set figures, reason."""
    return {k: row[k] for k in row_columns(sets)}


class CaseScores:
    """Accumulates per-case rows over a test set (stream per image, reduce once, as MONAI's metrics do)."""

    def __init__(self, anatomy: Anatomy) -> None:
        self.anatomy = anatomy
        self._rows: list[dict] = []
        self._items: set[str] = set()

    def append(self, rows: Sequence[dict]) -> None:
        """Add one image's rows (``score_case``'s output); an image scored twice is an error."""
        items = {row["item"] for row in rows}
        again = items & self._items
        if again:
            raise ValueError(f"items scored twice: {sorted(again)}")
        self._items |= items
        self._rows.extend(rows)

    def frame(self) -> pd.DataFrame:
        """All rows so far, in the order appended."""
        return pd.DataFrame(self._rows)

    def aggregate(self, metrics: Sequence[str]) -> dict:
        return aggregate(self.frame(), self.anatomy, metrics)

    def extremes(self, metric: str = "landmark_asd_px") -> tuple[str, str, str]:
        return extremes(self.frame(), metric)

    def reset(self) -> None:
        self._rows.clear()
        self._items.clear()

    def __len__(self) -> int:
        return len(self._rows)


def _frame(rows) -> pd.DataFrame:
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if frame.empty:
        raise ValueError("no rows to summarise")
    return frame


def _check_metrics(frame: pd.DataFrame, metrics: Sequence[str]) -> None:
    unknown = [m for m in metrics if m not in frame.columns]
    if unknown:
        known = ", ".join(c for c in frame.columns if c not in ("item", "structure", "group", "reason"))
        raise KeyError(f"metrics {unknown} are not in the rows; known: {known}")


def _stats(values: pd.Series) -> dict:
    values = pd.to_numeric(values, errors="coerce").astype(float)
    finite = values[np.isfinite(values)]
    n = int(finite.size)
    return {
        "mean": float(finite.mean()) if n else NAN,
        "std": float(finite.std(ddof=1)) if n > 1 else NAN,
        "n": n,
        "n_missing": int(values.size - n),
    }


def aggregate(rows, anatomy: Anatomy, metrics: Sequence[str]) -> dict:
    """Per-group mean ± std, "average" and "pooled" of the given metrics (see the module docstring).

    Returns ``{group: {metric: {"mean", "std", "n", "n_missing"}}}`` for each
    group of ``anatomy`` in its order, then ``"average"`` (``mean``/``std`` of
    the group figures, and ``n_groups``: how many groups have a value; a group
    without one (its own ``n`` is 0) makes the average NaN rather than an
    average of fewer groups; the metrics file stays numbers only) and
    ``"pooled"`` (all rows). NaN values are excluded from every figure and
    counted in ``n_missing``; a group with a single value has NaN std (sample std).
    """
    frame = _frame(rows)
    _check_metrics(frame, metrics)
    group = frame["structure"].map(anatomy.group_of)
    out: dict = {}
    for name in anatomy.groups:
        part = frame[group == name]
        out[name] = {m: _stats(part[m]) for m in metrics}
    out["average"] = {}
    for m in metrics:
        per_group = [out[g][m] for g in anatomy.groups]
        missing = [g for g, stats in zip(anatomy.groups, per_group, strict=True) if stats["n"] == 0]
        means = [stats["mean"] for stats in per_group]
        stds = [stats["std"] for stats in per_group]
        out["average"][m] = {
            "mean": NAN if missing else float(np.mean(means)),
            "std": NAN if missing else float(np.mean(stds)),
            "n_groups": len(per_group) - len(missing),
            "n": int(sum(stats["n"] for stats in per_group)),
            "n_missing": int(sum(stats["n_missing"] for stats in per_group)),
        }
    out["pooled"] = {m: _stats(frame[m]) for m in metrics}
    return out


def structure_summary(rows, metrics: Sequence[str]) -> dict:
    """Mean ± std per structure (for a per-bone breakdown beside the group table)."""
    frame = _frame(rows)
    _check_metrics(frame, metrics)
    return {
        str(structure): {m: _stats(part[m]) for m in metrics}
        for structure, part in frame.groupby("structure", sort=False)
    }


def item_scores(rows, metric: str = "landmark_asd_px") -> pd.Series:
    """Mean of ``metric`` over each item's structures (NaN rows skipped; items without any value dropped)."""
    frame = _frame(rows)
    _check_metrics(frame, [metric])
    values = pd.to_numeric(frame[metric], errors="coerce").astype(float)
    scores = values.groupby(frame["item"], sort=True).mean()
    return scores[np.isfinite(scores)]


def evaluation_summary(rows, anatomy: Anatomy, estimators: Sequence[str], test_images: int) -> dict:
    """The figures of one evaluated run (``eval-<run>.json``) from its case rows.

    ``primary``: the groups' ``SUMMARY_METRICS`` over the primary estimator's rows (the tables' cells);
    ``estimators``: TRE per landmark estimator; ``rows_with_reason``: primary rows with a NaN explained.
    """
    primary = rows[rows["primary"]]
    return {
        "test_images": test_images,
        "rows_with_reason": int((primary["reason"] != "").sum()),
        "primary": aggregate(primary, anatomy, [m for m in SUMMARY_METRICS if m in primary]),
        "estimators": {
            name: aggregate(rows[rows["estimator"] == name], anatomy, ["tre_px", "tre_truth_px"]) for name in estimators
        },
    }


def extremes(rows, metric: str = "landmark_asd_px") -> tuple[str, str, str]:
    """Best, median and worst test item by the mean ``metric`` over its structures (the paper's Figs. 3 and 4).

    Falls back to ``dsc`` when ``metric`` has no value at all (a method without
    landmarks). Lower is better for distances, higher for DSC; ties are broken
    by item name, and with an even count the median is the lower-middle item,
    so the choice is deterministic.
    """
    scores = item_scores(rows, metric)
    if scores.empty and metric != "dsc":
        metric, scores = "dsc", item_scores(rows, "dsc")
    if scores.empty:
        raise ValueError(f"no item has a value of {metric!r} (nor of 'dsc')")
    sign = -1.0 if metric in HIGHER_IS_BETTER else 1.0
    ranked = sorted(scores.items(), key=lambda kv: (sign * kv[1], kv[0]))
    order = [name for name, _ in ranked]
    return str(order[0]), str(order[(len(order) - 1) // 2]), str(order[-1])
