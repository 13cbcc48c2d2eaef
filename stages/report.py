"""Stage ``report``: what a researcher reads after ``dvc repro``, as Markdown and as one self-contained HTML file.

Reads the outputs of the other stages (metrics JSON, round and training CSVs,
the tables, overlays, Pareto fronts, the uv cache, bone age when present),
builds one ``denseseg.report`` document and writes

- ``reports/report.md`` with its figures in ``reports/figures/`` (relative links);
- ``reports/report.html``: the same document, figures embedded, no reference
  outside the file.

A missing input (a stage not run, e.g. no tuning or no JSRT) is a note in
the report; a malformed one (bad JSON, a missing key or column, not a PNG)
is a StageError naming the file (``denseseg.report.inputs``). Every section ends with how to reproduce
it: the boxes are data, ``stages/templates/reproduce.yaml``. Same inputs, same bytes.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field

from denseseg.evaluation.cases import extremes, item_scores
from denseseg.io.atomic import commit_dir, partial_dir, write_text_atomic
from denseseg.report import Document, Note, Paragraph, Reproduce, Section, render_html, render_markdown
from denseseg.report import sections as build
from denseseg.report.figures import uv_figure
from denseseg.report.inputs import ReportInputs
from denseseg.report.sections import ReportInputError
from denseseg.uv.cache import SPLIT_NAMES, UVCache
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors

OVERLAY_CASES = ("best", "median", "worst")
TRAIN_CURVE_COLUMNS = ("epoch", "train_loss")
REPRODUCE = Path(__file__).with_name("templates") / "reproduce.yaml"


class ReportParams(StageParams):
    title: str
    runs: list[str]  # trained and evaluated runs: training curves, the pseudo-label vs truth table
    overlays: list[str]  # runs whose best / median / worst test cases are shown
    studies: list[str]  # tune@<study> fronts and picks
    uv_variant: str  # the uv cache (paths.uvmaps/<variant>) drawn in the uv-map figure
    uv_split: str = Field(pattern="^(train|val|test)$")  # its first item of this split is drawn


class ReportStage(Stage[ReportParams, None]):
    name = "report"
    Params = ReportParams

    def prepare(self) -> None:
        self.inputs = ReportInputs(self.root)
        self.boxes = yaml.safe_load(REPRODUCE.read_text(encoding="utf-8"))

    def box(self, name: str, evaluated=()) -> Reproduce:
        """The section's "how to reproduce" box from ``reproduce.yaml`` (see its header)."""
        p = self.params
        lists = {"runs": p.runs, "overlays": p.overlays, "studies": p.studies, "evaluated": list(evaluated)}
        return Reproduce.from_spec(self.boxes[name], {**self.config.paths, "variant": p.uv_variant}, lists)

    def metrics(self, name: str):
        return self.inputs.metrics(self.config.paths["metrics"], name)

    # ------------------------------------------------------------ sections that gather several files

    def overlay_sections(self) -> list[Section]:
        subsections = []
        for run in self.params.overlays:
            folder = f"reports/eval/{run}"
            images = {case: self.inputs.png(f"{folder}/{case}.png") for case in OVERLAY_CASES}
            columns = ("item", "structure", "primary", "landmark_asd_px")
            rows = self.inputs.parquet(f"{folder}/cases.parquet", columns)
            items = scores = None
            if rows is not None:
                primary = rows[rows["primary"]]
                items = dict(zip(OVERLAY_CASES, extremes(primary, "landmark_asd_px")))
                scores = item_scores(primary, "landmark_asd_px").to_dict()
            subsections.append(build.overlays(run, images, items, scores))
        return subsections

    def training_section(self) -> Section:
        curves, summaries, missing = {}, {}, []
        for run in self.params.runs:
            curve = self.inputs.csv(f"reports/plots/train/{run}.csv", TRAIN_CURVE_COLUMNS)
            summary = self.metrics(f"train-{run}")
            if curve is None and summary is None:
                missing.append(run)
            if curve is not None:
                curves[run] = curve
            if summary is not None:
                summaries[run] = summary
        return build.training(curves, summaries, missing)

    def uv_section(self) -> tuple[Section, tuple[int, int] | None]:
        variant, split = self.params.uv_variant, self.params.uv_split
        root = self.path(f"{self.config.paths['uvmaps']}/{variant}")
        metrics = self.metrics(f"uvmaps-{variant}")
        if not root.exists():
            return build.uv_maps(None, None, metrics, variant), None
        with stage_errors():
            cache = UVCache(root)
            items = cache.items_of(split)
            if not items:
                other = [s for s in SPLIT_NAMES if cache.items_of(s)]
                raise StageError(f"{root}: no item of split {split!r} (splits present: {', '.join(other) or 'none'})")
            record = cache.read(items[0])
        title = f"{record['item']} ({split})"
        png = uv_figure(record["image"][0], record["uv"], record["masks"], record["landmarks"], title)
        return build.uv_maps(png, record["item"], metrics, variant), tuple(record["image"].shape[-2:])

    def tuning_sections(self) -> list[Section]:
        return [
            build.tuning(
                study,
                self.metrics(f"tune-{study}"),
                self.inputs.csv(f"reports/plots/tuning/{study}.csv", ("trial", "picked")),
                self.inputs.json(f"{self.config.paths['tuned']}/{study}.json"),
                self.inputs.png(f"reports/tuning/{study}/pareto.png"),
            )
            for study in self.params.studies
        ]

    # ------------------------------------------------------------ the document

    def document(self) -> Document:
        m, inputs = self.metrics, self.inputs
        phantom, registration, release, uvmaps = m("phantom"), m("registration"), m("release"), m("uvmaps-wrist")
        tables = inputs.json("reports/tables/tables.json")
        uv, size = self.uv_section()
        evaluations = {run: ev for run in self.params.runs if (ev := m(f"eval-{run}")) is not None}
        table2 = build.paper_table("table2", tables, "Table 2: wrist", "table-2")
        table2.subsections.append(build.truth_table(evaluations).add(self.box("truth_table", evaluations)))
        n_images = release.number("images") if release else uvmaps.number("items") if uvmaps else None
        median = registration.get("median_px") if registration else None
        phantom_data = phantom is None or bool(phantom.get("enabled", 1))
        overlays = Paragraph("Test images ranked by mean landmark ASD over their bones (the paper's Figs. 3 and 4).")
        tuning = Paragraph("Multi-objective TPE over each method's loss weights (paper 3.4); docs/tuning.md.")
        sections = [
            (build.at_a_glance(tables, registration, n_images), "at_a_glance"),
            (build.claims(n_images, size, median, phantom_data), None),
            (
                build.data_flow(m("ingest"), m("propagation"), registration, m("split"), uvmaps, release, phantom),
                "data_flow",
            ),
            (
                build.propagation(
                    m("propagation"),
                    m("propagation-info"),
                    inputs.csv("reports/plots/propagation/rounds.csv", build.ROUND_COLUMNS),
                ),
                "propagation",
            ),
            (build.registration(registration), "registration"),
            (table2, "table2"),
            (build.paper_table("table1", tables, "Table 1: JSRT", "table-1"), "table1"),
            (build.new_landmarks(tables), "new_landmarks"),
            (build.estimators(tables), "estimators"),
            (Section("Best, median and worst test cases", [overlays], self.overlay_sections(), "overlays"), "overlays"),
            (self.training_section(), "training"),
            (uv, "uv_maps"),
            (Section("Tuning", [tuning], self.tuning_sections(), anchor="tuning"), "tuning"),
            (build.bone_age(m("boneage"), inputs.png("reports/boneage/scatter.png")), "bone_age"),
        ]
        for section, box in sections:
            if box is not None:
                section.add(self.box(box))
        intro = [*build.introduction(phantom_data), self.box("intro")]
        return Document(self.params.title, intro, [s for s, _ in sections])

    # ------------------------------------------------------------ the stage

    def process(self, shard):
        return None

    def finish(self, results) -> StageReport:
        with stage_errors(errors=(ReportInputError,)):
            document = self.document()
            document.check()
        out = self.path("reports")
        staging = partial_dir(out / "figures")
        for figure in document.figures():
            (staging / f"{figure.name}.png").write_bytes(figure.png)
        markdown = render_markdown(document, "figures")
        html = render_html(document)
        commit_dir(staging, out / "figures")
        write_text_atomic(out / "report.md", markdown)
        write_text_atomic(out / "report.html", html)
        notes = sum(1 for _, s in document.walk() for b in s.blocks if isinstance(b, Note))
        return StageReport(
            metrics={
                "sections": sum(1 for _ in document.walk()),
                "figures": len(document.figures()),
                "notes": notes,
                "html_bytes": len(html.encode("utf-8")),
            }
        )
