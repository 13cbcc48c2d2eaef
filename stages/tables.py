"""Stage ``tables``: the paper's Tables 1 and 2, the new-landmark experiment and the estimator comparison.

Reads ``reports/eval/<run>/cases.parquet`` of every run named in ``tables``
and writes ``reports/tables/``: ``table1.md`` (JSRT), ``table2.md`` (wrist),
``new-landmarks.md`` (DenseSeg trained on the 178 FPS landmarks, scored on
those and on the 532 it never saw), ``estimators.md`` (DenseSeg's landmarks by
the paper's softmin vs the local affine fit) and ``tables.json`` with every
figure. Each Markdown cell reads ``ours / paper``.
"""

from __future__ import annotations

import json

import pandas as pd
from pydantic import BaseModel, ConfigDict

from denseseg.anatomy import ANATOMIES, AnatomyName
from denseseg.evaluation.cases import aggregate
from denseseg.evaluation.published import TABLE_1_JSRT, TABLE_2_WRIST
from denseseg.evaluation.tables import new_landmarks_table, paper_table
from denseseg.io.atomic import json_ready, write_text_atomic
from stages.base import Stage, StageError, StageParams, StageReport

PUBLISHED = {"table1": TABLE_1_JSRT, "table2": TABLE_2_WRIST}
TABLE_METRICS = ("dsc", "landmark_asd_px", "surface_asd_px", "tre_px", "landmark_asd_mm", "surface_asd_mm", "tre_mm")


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    run: str  # an evaluated run (evaluate@<run>)
    paper: str | None  # the published column it is compared with (None: no counterpart)


class PaperTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    anatomy: AnatomyName
    columns: dict[str, Column]


class NewLandmarks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: list[str]
    cannot_predict: list[str]  # runs that predict only the landmarks they were trained on


class TablesParams(StageParams):
    table1: PaperTable | None  # null: not written
    table2: PaperTable | None
    new_landmarks: NewLandmarks | None
    estimators: list[str]  # DenseSeg runs whose estimators are compared


class TablesStage(Stage[TablesParams, None]):
    name = "tables"
    Params = TablesParams

    def cases(self, run: str, primary_only: bool = True) -> pd.DataFrame:
        path = self.path("reports/eval") / run / "cases.parquet"
        if not path.exists():
            raise StageError(f"{path}: missing; run `dvc repro evaluate@{run}` first")
        rows = pd.read_parquet(path)
        return rows[rows["primary"]] if primary_only else rows

    def process(self, shard):
        return None

    def finish(self, results) -> StageReport:
        p = self.params
        out = self.path("reports/tables")
        figures: dict = {}
        for key in ("table1", "table2"):
            spec: PaperTable | None = getattr(p, key)
            if spec is None:
                continue
            anatomy = ANATOMIES[spec.anatomy]
            results_by_column = {}
            for label, column in spec.columns.items():
                rows = self.cases(column.run)
                results_by_column[label] = aggregate(rows, anatomy, [m for m in TABLE_METRICS if m in rows])
            match = {label: column.paper for label, column in spec.columns.items() if column.paper}
            markdown, data = paper_table(results_by_column, anatomy, PUBLISHED[key], match=match)
            if spec.anatomy == "wrist":
                extra, _ = paper_table(results_by_column, anatomy, PUBLISHED[key], unit="mm", match=match)
                markdown += "\nThe same in mm (the paper's wrist figures are pixels at 384 x 224):\n\n" + extra
            write_text_atomic(out / f"{key}.md", markdown)
            figures[key] = data

        if p.new_landmarks is not None:
            new = {}
            for run in p.new_landmarks.runs:
                rows = self.cases(run)
                metrics = [c for c in rows.columns if c.startswith(("tre_px_", "tre_truth_px_"))]
                if not metrics:
                    raise StageError(f"tables.new_landmarks: run {run!r} was not trained on a landmark subset")
                new[run] = aggregate(rows, ANATOMIES[_anatomy_of(rows, run)], metrics)
            cannot = p.new_landmarks.cannot_predict
            markdown, figures["new_landmarks"] = new_landmarks_table(new, cannot_predict=cannot)
            write_text_atomic(out / "new-landmarks.md", markdown)

        lines = [
            "**DenseSeg's landmark estimators**: TRE (px, average over groups) of the same trained models, "
            "landmarks read from the predicted uv maps by the paper's softmin (eq. 3, K = 5) or the local affine fit.",
            "",
        ]
        table: dict = {}
        for run in p.estimators:
            rows = self.cases(run, primary_only=False)
            anatomy = ANATOMIES[_anatomy_of(rows, run)]
            table[run] = {
                name: aggregate(part, anatomy, ["tre_px"])["average"]["tre_px"]
                for name, part in rows.groupby("estimator", sort=True)
            }
        names = sorted({name for per_run in table.values() for name in per_run})
        lines += ["| run | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for run, per_run in table.items():
            cells = [f"{per_run[n]['mean']:.2f} ± {per_run[n]['std']:.2f}" if n in per_run else "—" for n in names]
            lines.append(f"| {run} | " + " | ".join(cells) + " |")
        write_text_atomic(out / "estimators.md", "\n".join(lines) + "\n")
        figures["estimators"] = table
        write_text_atomic(
            out / "tables.json", json.dumps(json_ready(figures), indent=1, sort_keys=True, default=_plain) + "\n"
        )
        return StageReport(metrics={"tables": len(figures)})


def _anatomy_of(rows: pd.DataFrame, run: str) -> str:
    for name, anatomy in ANATOMIES.items():
        if set(rows["structure"]) <= set(anatomy.structures):
            return name
    raise StageError(f"reports/eval/{run}/cases.parquet: structures of no known anatomy")


def _plain(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON-able: {type(value).__name__}")
