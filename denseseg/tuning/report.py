"""A finished study as tables and a figure: every trial, the Pareto front, the pick.

``trials_frame`` reads a study into one row per trial (number, state, the
objectives, the sampled values, the reason of a pruned or failed trial); the
front and the pick follow ``denseseg.tuning.pareto``; ``front_markdown`` and
``plot_front`` write the human-readable forms. The CSV files hold no wall-clock
times, so that the same trials give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from denseseg.io.atomic import write_bytes_atomic
from denseseg.tuning.pareto import normalised_distances, pareto_mask, pick_compromise
from denseseg.tuning.space import SearchSpace
from denseseg.tuning.study import INTERRUPTED_ATTR, REASON_ATTR


def trials_frame(study: optuna.Study, objectives: Sequence[str], space: SearchSpace) -> pd.DataFrame:
    """One row per trial, by number: ``trial, state, <objectives>, <params>, interrupted, reason``."""
    rows = []
    for trial in study.get_trials(deepcopy=False):
        values = trial.values if trial.values is not None else [np.nan] * len(objectives)
        row = {"trial": trial.number, "state": trial.state.name}
        row.update({name: float(v) for name, v in zip(objectives, values, strict=True)})
        row.update({path: float(trial.params[path]) if path in trial.params else np.nan for path in space.ranges})
        row["interrupted"] = bool(trial.user_attrs.get(INTERRUPTED_ATTR, False))
        row["reason"] = str(trial.user_attrs.get(REASON_ATTR, ""))
        rows.append(row)
    columns = ["trial", "state", *objectives, *space.ranges, "interrupted", "reason"]
    return pd.DataFrame(rows, columns=columns)


def pareto_front(trials: pd.DataFrame, objectives: Sequence[str], directions: Sequence[str]) -> pd.DataFrame:
    """The complete trials on the front with their ``distance`` to the utopia point and the ``picked`` one.

    Empty (with those columns) when no trial completed.
    """
    complete = trials[trials["state"] == "COMPLETE"].reset_index(drop=True)
    if complete.empty:
        empty = complete.drop(columns=["state", "interrupted", "reason"])
        return empty.assign(distance=pd.Series(dtype=float), picked=pd.Series(dtype=bool))
    values = complete[list(objectives)].to_numpy(np.float64)
    front = complete[pareto_mask(values, directions)].reset_index(drop=True)
    front = front.drop(columns=["state", "interrupted", "reason"])
    front["distance"] = normalised_distances(front[list(objectives)].to_numpy(np.float64), directions)
    picked_trial = int(complete["trial"].iloc[pick_compromise(values, directions)])
    front["picked"] = front["trial"] == picked_trial
    return front


def front_markdown(front: pd.DataFrame, study: str, directions: dict[str, str]) -> str:
    """The front as a Markdown table, the picked trial in bold, the rule stated above it."""
    lines = [
        f"# Pareto front of study `{study}`",
        "",
        "Objectives: " + ", ".join(f"{name} ({d})" for name, d in directions.items()) + ".",
        "Pick: the trial on the front closest to the utopia point after min-max normalising each objective "
        "over the front (`distance`); see docs/tuning.md.",
        "",
    ]
    if front.empty:
        return "\n".join([*lines, "No trial completed (all pruned or failed): no front, nothing picked."]) + "\n"
    columns = [c for c in front.columns if c != "picked"]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for _, row in front.iterrows():
        cells = [str(int(row[c])) if c == "trial" else f"{row[c]:.4g}" for c in columns]
        if row["picked"]:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_front(trials: pd.DataFrame, front: pd.DataFrame, objectives: Sequence[str], path: Path, title: str) -> None:
    """Every pair of objectives: completed trials (grey), the front (red), the pick (black star); a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = [(a, b) for i, a in enumerate(objectives) for b in objectives[i + 1 :]]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.8), squeeze=False)
    complete = trials[trials["state"] == "COMPLETE"]
    picked = front[front["picked"]]
    for ax, (x, y) in zip(axes[0], pairs, strict=True):
        ax.scatter(complete[x], complete[y], c="0.7", s=18, label="trials")
        ax.scatter(front[x], front[y], c="tab:red", s=26, label="Pareto front")
        ax.scatter(picked[x], picked[y], c="k", marker="*", s=140, label="picked")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
    if front.empty:
        axes[0][0].text(0.5, 0.5, "no completed trial", ha="center", transform=axes[0][0].transAxes)
    else:
        axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())


PICK_RULE = "closest to the utopia point after min-max normalising each objective over the Pareto front"


def picked_values(front: pd.DataFrame, n_trials: int, objectives: Sequence[str], space: SearchSpace) -> dict:
    """The front's picked trial as ``trial``, ``objectives``, ``values`` and ``overrides`` (the nested form,
    a deep update of the method's params); ``trial`` None with a ``note`` when no trial completed."""
    if front.empty:
        note = f"none of {n_trials} trial(s) completed (all pruned or failed)"
        return {"trial": None, "objectives": {}, "values": {}, "overrides": {}, "note": note}
    pick = front[front["picked"]].iloc[0]
    values = {path: float(pick[path]) for path in space.ranges}
    return {
        "trial": int(pick["trial"]),
        "objectives": {name: float(pick[name]) for name in objectives},
        "values": values,
        "overrides": SearchSpace.nested(values),
    }


def write_study_reports(
    folder: Path, trials: pd.DataFrame, front: pd.DataFrame, study: str, directions: dict[str, str]
) -> None:
    """``trials.csv``, ``pareto.csv``, ``pareto.md`` and ``pareto.png`` of one study into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    trials.to_csv(folder / "trials.csv", index=False)
    front.to_csv(folder / "pareto.csv", index=False)
    (folder / "pareto.md").write_text(front_markdown(front, study, directions))
    plot_front(trials, front, list(directions), folder / "pareto.png", f"tune@{study}: {len(trials)} trials")


def study_metrics(trials: pd.DataFrame, front: pd.DataFrame, picked: dict) -> dict:
    """Trial counts by state, the front's size and the pick (``picked_values``): a study's metrics file."""
    states = trials["state"].value_counts().to_dict()
    return {
        "trials": len(trials),
        "complete": int(states.get("COMPLETE", 0)),
        "pruned": int(states.get("PRUNED", 0)),
        "failed": int(states.get("FAIL", 0)),
        "interrupted": int(trials["interrupted"].sum()),
        "front_size": len(front),
        "picked_trial": picked["trial"],
        "picked": {**picked["objectives"], **picked["values"]},
    }
