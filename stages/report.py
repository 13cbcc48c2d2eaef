"""Stage ``report``: what a researcher reads after ``dvc repro``, as Markdown and as one self-contained HTML file.

Reads the outputs of the other stages (metrics JSON, round and training CSVs,
the tables, overlays, Pareto fronts, the uv cache, bone age when present),
builds one ``denseseg.report`` document and writes

- ``reports/report.md`` with its figures in ``reports/figures/`` (relative links);
- ``reports/report.html``: the same document, figures embedded, no reference
  outside the file.

A missing input (a stage not run, e.g. no tuning or no JSRT) is a note in
the report; a malformed one (bad JSON, a missing key or column, not a PNG)
is a StageError naming the file. Same inputs, same bytes.
"""

from __future__ import annotations

import json

import pandas as pd
from pydantic import Field

from denseseg.evaluation.cases import extremes, item_scores
from denseseg.io.atomic import commit_dir, partial_dir, write_text_atomic
from denseseg.report import Document, Note, Paragraph, Reproduce, Section, render_html, render_markdown
from denseseg.report import sections as build
from denseseg.report.document import PNG_SIGNATURE
from denseseg.report.figures import uv_figure
from denseseg.report.sections import ReportInputError, Source
from denseseg.uv.cache import SPLIT_NAMES, CacheError, UVCache
from stages.base import Stage, StageError, StageParams, StageReport

OVERLAY_CASES = ("best", "median", "worst")
TRAIN_CURVE_COLUMNS = ("epoch", "train_loss")


class ReportParams(StageParams):
    title: str
    runs: list[str]  # trained and evaluated runs: training curves, the pseudo-label vs truth table
    overlays: list[str]  # runs whose best / median / worst test cases are shown
    studies: list[str]  # tune@<study> fronts and picks
    uv_variant: str  # the uv cache (paths.uvmaps/<variant>) drawn in the uv-map figure
    uv_split: str = Field(pattern="^(train|val|test)$")  # its first item of this split is drawn


def _box(stages, params, commands, files=()) -> Reproduce:
    return Reproduce(tuple(stages), tuple(params), tuple(commands), tuple(files))


class ReportStage(Stage[ReportParams]):
    name = "report"
    Params = ReportParams

    # ------------------------------------------------------------ reading (missing: None; malformed: StageError)

    def metrics_path(self, name: str) -> str:
        return f"{self.config.paths['metrics']}/{name}.json"

    def json(self, relative: str) -> Source | None:
        path = self.path(relative)
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise StageError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(data, dict):
            raise StageError(f"{path}: a JSON object expected, found {type(data).__name__}")
        return Source(str(path), data)

    def csv(self, relative: str, columns) -> pd.DataFrame | None:
        path = self.path(relative)
        if not path.exists():
            return None
        try:
            frame = pd.read_csv(path)
        except (ValueError, UnicodeDecodeError) as err:
            raise StageError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise StageError(f"{path}: missing column(s) {', '.join(missing)}")
        return frame

    def png(self, relative: str) -> bytes | None:
        path = self.path(relative)
        if not path.exists():
            return None
        data = path.read_bytes()
        if not data.startswith(PNG_SIGNATURE):
            raise StageError(f"{path}: not a PNG file")
        return data

    # ------------------------------------------------------------ the sections

    def overlay_sections(self) -> list[Section]:
        subsections = []
        for run in self.params.overlays:
            folder = f"reports/eval/{run}"
            images = {case: self.png(f"{folder}/{case}.png") for case in OVERLAY_CASES}
            cases = self.path(folder) / "cases.parquet"
            items = scores = None
            if cases.exists():
                try:
                    rows = pd.read_parquet(cases)
                except (OSError, ValueError) as err:
                    raise StageError(f"{cases}: unreadable ({str(err).splitlines()[0]})") from None
                missing = [c for c in ("item", "structure", "primary", "landmark_asd_px") if c not in rows]
                if missing:
                    raise StageError(f"{cases}: missing column(s) {', '.join(missing)}")
                primary = rows[rows["primary"]]
                items = dict(zip(OVERLAY_CASES, extremes(primary, "landmark_asd_px")))
                scores = item_scores(primary, "landmark_asd_px").to_dict()
            subsections.append(build.overlays(run, images, items, scores))
        return subsections

    def training_section(self) -> Section:
        curves, summaries, missing = {}, {}, []
        for run in self.params.runs:
            curve = self.csv(f"reports/plots/train/{run}.csv", TRAIN_CURVE_COLUMNS)
            summary = self.json(self.metrics_path(f"train-{run}"))
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
        metrics = self.json(self.metrics_path(f"uvmaps-{variant}"))
        if not root.exists():
            return build.uv_maps(None, None, metrics, variant), None
        try:
            cache = UVCache(root)
            items = cache.items_of(split)
            if not items:
                other = [s for s in SPLIT_NAMES if cache.items_of(s)]
                raise StageError(f"{root}: no item of split {split!r} (splits present: {', '.join(other) or 'none'})")
            record = cache.read(items[0])
        except CacheError as err:
            raise StageError(str(err)) from None
        title = f"{record['item']} ({split})"
        png = uv_figure(record["image"][0], record["uv"], record["masks"], record["landmarks"], title)
        return build.uv_maps(png, record["item"], metrics, variant), tuple(record["image"].shape[-2:])

    def tuning_sections(self) -> list[Section]:
        out = []
        for study in self.params.studies:
            front = self.csv(f"reports/plots/tuning/{study}.csv", ("trial", "picked"))
            out.append(
                build.tuning(
                    study,
                    self.json(self.metrics_path(f"tune-{study}")),
                    front,
                    self.json(f"{self.config.paths['tuned']}/{study}.json"),
                    self.png(f"reports/tuning/{study}/pareto.png"),
                )
            )
        return out

    def document(self) -> Document:
        m = self.metrics_path
        phantom = self.json(m("phantom"))
        registration = self.json(m("registration"))
        release = self.json(m("release"))
        uvmaps = self.json(m("uvmaps-wrist"))
        tables = self.json("reports/tables/tables.json")
        uv, size = self.uv_section()
        evaluations = {run: ev for run in self.params.runs if (ev := self.json(m(f"eval-{run}"))) is not None}
        table2 = build.paper_table("table2", tables, "Table 2: wrist", "table-2")
        table2.subsections.append(
            build.truth_table(evaluations).add(
                _box(
                    ("evaluate@<run>",),
                    ("evaluate", "report.runs"),
                    ("dvc repro evaluate@denseseg-wrist",),
                    [m(f"eval-{r}") for r in evaluations],
                )
            )
        )
        n_images = release.number("images") if release else uvmaps.number("items") if uvmaps else None
        median = registration.get("median_px") if registration else None

        sections = [
            (
                build.at_a_glance(tables, registration, n_images),
                _box(
                    ("register", "tables", "release"),
                    ("register", "tables"),
                    ("dvc repro tables",),
                    (m("registration"), "reports/tables/tables.json", m("release")),
                ),
            ),
            (build.claims(n_images, size, median, phantom is None or bool(phantom.get("enabled", 1))), None),
            (
                build.data_flow(
                    self.json(m("ingest")),
                    self.json(m("propagation")),
                    registration,
                    self.json(m("split")),
                    uvmaps,
                    release,
                    phantom,
                ),
                _box(
                    ("phantom", "ingest", "propagate", "register", "split", "uvmaps@wrist", "release"),
                    ("phantom", "ingest", "propagate", "register", "split", "uvmaps.wrist", "release"),
                    ("dvc repro release", "python -m pipelines ingest --set ingest.limit=40"),
                    [m(n) for n in ("phantom", "ingest", "propagation", "registration", "split", "uvmaps-wrist")],
                ),
            ),
            (
                build.propagation(
                    self.json(m("propagation")),
                    self.json(m("propagation-info")),
                    self.csv("reports/plots/propagation/rounds.csv", build.ROUND_COLUMNS),
                ),
                _box(
                    ("propagate",),
                    ("seed", "propagate"),
                    ("dvc repro propagate", "python -m pipelines propagate --set propagate.rounds=3"),
                    ("reports/plots/propagation/rounds.csv", m("propagation")),
                ),
            ),
            (
                build.registration(registration),
                _box(
                    ("register",),
                    ("seed", "register"),
                    ("dvc repro register", "python -m pipelines register --set register.inverse_weight=0"),
                    (m("registration"),),
                ),
            ),
            (
                table2,
                _box(
                    ("train@<run>", "evaluate@<run>", "tables"),
                    ("train.training", "train.methods", "train.runs", "evaluate", "tables.table2"),
                    (
                        "dvc repro tables",
                        "python -m pipelines train@denseseg-wrist --set train.training.epochs=100",
                        "python -m pipelines evaluate@denseseg-wrist",
                    ),
                    ("reports/tables/tables.json",),
                ),
            ),
            (
                build.paper_table("table1", tables, "Table 1: JSRT", "table-1"),
                _box(
                    ("jsrt", "uvmaps@jsrt", "train@<run>-jsrt", "evaluate@<run>-jsrt", "tables"),
                    ("jsrt", "uvmaps.jsrt", "train.runs", "tables.table1"),
                    ("dvc repro tables", "python -m pipelines jsrt --set jsrt.size=256"),
                    ("reports/tables/tables.json",),
                ),
            ),
            (
                build.new_landmarks(tables),
                _box(
                    ("subsample", "uvmaps@wrist178", "train@denseseg178-wrist", "train@heatreg178-wrist", "tables"),
                    ("subsample", "uvmaps.wrist178", "tables.new_landmarks"),
                    ("dvc repro tables", "python -m pipelines subsample --set subsample.fraction=0.5"),
                    ("reports/tables/tables.json",),
                ),
            ),
            (
                build.estimators(tables),
                _box(
                    ("evaluate@<run>", "tables"),
                    ("train.methods.denseseg.estimators", "tables.estimators"),
                    ("dvc repro tables", "python -m pipelines evaluate@denseseg-wrist"),
                    ("reports/tables/tables.json",),
                ),
            ),
            (
                Section(
                    "Best, median and worst test cases",
                    [
                        Paragraph(
                            "Test images ranked by mean landmark ASD over their bones (the paper's Figs. 3 and 4)."
                        )
                    ],
                    self.overlay_sections(),
                    anchor="overlays",
                ),
                _box(
                    ("evaluate@<run>",),
                    ("evaluate.overlay_scale", "report.overlays"),
                    ("dvc repro evaluate@denseseg-wrist", "python -m pipelines evaluate@heatreg710-wrist"),
                    [f"reports/eval/{r}" for r in self.params.overlays],
                ),
            ),
            (
                self.training_section(),
                _box(
                    ("train@<run>",),
                    ("train.training", "train.augment", "train.monitor", "train.methods", "report.runs"),
                    (
                        "dvc repro train@denseseg-wrist",
                        "python -m pipelines train@heatreg710-wrist --set train.training.lr=0.005",
                    ),
                    [f"reports/plots/train/{r}.csv" for r in self.params.runs],
                ),
            ),
            (
                uv,
                _box(
                    (f"uvmaps@{self.params.uv_variant}",),
                    (f"uvmaps.{self.params.uv_variant}", "report.uv_variant", "report.uv_split"),
                    (
                        f"dvc repro uvmaps@{self.params.uv_variant}",
                        f"python -m pipelines uvmaps@{self.params.uv_variant}",
                    ),
                    (f"{self.config.paths['uvmaps']}/{self.params.uv_variant}",),
                ),
            ),
            (
                Section(
                    "Tuning",
                    [Paragraph("Multi-objective TPE over each method's loss weights (paper 3.4); docs/tuning.md.")],
                    self.tuning_sections(),
                    anchor="tuning",
                ),
                _box(
                    ("tune@<study>", "train_tuned@<run>"),
                    ("tune", "train.tuned_runs", "report.studies"),
                    ("dvc repro tune@denseseg-wrist", "python -m pipelines tune@denseseg-wrist --set tune.n_trials=16"),
                    [f"{self.config.paths['tuned']}/{s}.json" for s in self.params.studies],
                ),
            ),
            (
                build.bone_age(self.json(m("boneage")), self.png("reports/boneage/scatter.png")),
                _box(
                    ("boneage",),
                    ("boneage",),
                    ("dvc repro boneage", "python -m pipelines boneage"),
                    (m("boneage"), "reports/boneage/scatter.png"),
                ),
            ),
        ]
        for section, box in sections:
            if box is not None:
                section.add(box)
        intro = [
            Paragraph(
                "Results of one `dvc repro` of the DenseSeg pipeline (Keuth et al., 'DenseSeg: Joint Learning for "
                "Semantic Segmentation and Landmark Detection Using Dense Image-to-Shape Representation') on "
                + (
                    "the embedded default data: a synthetic wrist phantom in the GRAZPEDWRI-DX format, and a "
                    "chest phantom on the JSRT landmark shapes. Read 'What the phantom can and cannot claim' "
                    "before any number."
                    if phantom is None or phantom.get("enabled", 1)
                    else "the data that params `paths.release_root` points at."
                )
            ),
            Paragraph(
                "Every section ends with how to reproduce its numbers: the stages, their params keys in "
                "`params.yaml`, the files read and the commands (`dvc repro <stage>` re-runs what changed; "
                "`python -m pipelines <stage> --set section.key=value` runs one stage with one value changed)."
            ),
            _box(("report",), ("report",), ("dvc repro report", "python -m pipelines report"), ()),
        ]
        return Document(self.params.title, intro, [s for s, _ in sections])

    # ------------------------------------------------------------ the stage

    def process(self, shard):
        return None

    def finish(self, results) -> StageReport:
        try:
            document = self.document()
            document.check()
        except ReportInputError as err:
            raise StageError(str(err)) from None
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
