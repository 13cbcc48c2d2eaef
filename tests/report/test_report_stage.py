"""Stage ``report`` on a synthetic reports tree: what it writes, that the numbers are the inputs', and its errors."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from denseseg.anatomy import WRIST
from denseseg.evaluation.tables import format_cell
from denseseg.report.document import format_value
from stages.base import StageError
from stages.config import build_stage
from tests.report.conftest import write_boneage
from tests.report.test_renderers import Page, markdown_tables


def _run(root):
    report = build_stage("report", root).run_serial()
    return (report, *_read(root))


def _read(root):
    return (root / "reports/report.md").read_text(), (root / "reports/report.html").read_text()


def _section(md: str, title: str) -> str:
    """The Markdown of one section (its heading to the next heading of the same level)."""
    level = "## " if not title.startswith("### ") else "### "
    start = md.index(f"\n{title}\n") if title.startswith("#") else md.index(f"\n{level}{title}\n")
    end = md.find(f"\n{level}", start + 1)
    return md[start : end if end > 0 else None]


def test_writes_markdown_html_and_every_linked_figure(built):
    md, html = _read(built)
    linked = re.findall(r"!\[[^\]]*\]\(figures/([a-z0-9_-]+\.png)\)", md)
    written = sorted(p.name for p in (built / "reports/figures").iterdir())
    assert sorted(linked) == written and len(written) == 12
    page = Page(html)
    sources = [v for _, name, v in page.refs if name == "src"]
    assert len(sources) == len(linked) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(v.startswith("#") and v[1:] in page.ids for _, name, v in page.refs if name == "href")
    assert markdown_tables(md) == page.tables  # the same tables in both


def test_sections_carry_the_numbers_of_their_inputs(built):
    tree = built
    md, _ = _read(tree)
    registration = json.loads((tree / "reports/metrics/registration.json").read_text())
    flow = _section(md, "Registration error against truth")
    assert f"| all scored | 4970 | {format_value(registration['median_px'])} | {format_value(6.25)} |" in flow
    # Table 2, our DenseSeg cell: the tables stage's figure, i.e. the mean of the test cases' primary rows
    tables = json.loads((tree / "reports/tables/tables.json").read_text())
    cell = tables["table2"]["columns"]["ours 710 lms"]["rows"]["carpals"]["TRE"]["ours"]
    cases = pd.read_parquet(tree / "reports/eval/denseseg-wrist/cases.parquet")
    carpals = cases[cases["primary"] & cases["structure"].isin(WRIST.groups["carpals"])]
    assert cell["mean"] == pytest.approx(carpals["tre_px"].mean())
    (dsc, asd, tre) = [t for t in markdown_tables(_section(md, "Table 2: wrist")) if t[0][0] == "group"]
    header, rows = tre[0], {r[0]: r for r in tre[1:]}
    assert list(rows) == ["carpals", "metacarpals", "ulna/radius", "average", "pooled"]
    ours = header.index("ours 710 lms")
    assert rows["carpals"][ours] == format_cell(cell["mean"], cell["std"])
    assert header[ours + 1] == "paper: ours 720 lms" and rows["carpals"][ours + 1] == "1.7 ± 0.6"  # published
    average = tables["table2"]["columns"]["ours 710 lms"]["rows"]["average"]["TRE"]["ours"]
    glance = {r[0]: r for r in markdown_tables(_section(md, "At a glance"))[0]}
    assert glance["Table 2, ours 710 lms: TRE average [px]"][1:] == [
        format_cell(average["mean"], average["std"]),
        "2.5 ± 1.4",
    ]
    assert rows["average"][ours] == glance["Table 2, ours 710 lms: TRE average [px]"][1]
    # the data flow counts are the stages' counts
    flow = markdown_tables(_section(md, "Data flow"))[0]
    assert [r[2] for r in flow[1:]] == ["20", "12", "12", "10", "10", "7", "7", "7"]
    assert [r[3] for r in flow[1:]] == ["—", "8", "0", "2", "0", "3", "0", "0"]
    assert "median 0.81 px here" in _section(md, "What the phantom can and cannot claim")


def test_same_inputs_give_the_same_bytes(built, tmp_path):
    tree = tmp_path / "again"
    shutil.copytree(built, tree)
    (tree / "reports/figures/stale.png").write_bytes(b"old")  # a figure no longer drawn is removed
    _run(tree)
    first = {p.relative_to(built): p.read_bytes() for p in (built / "reports").rglob("*") if p.is_file()}
    second = {p.relative_to(tree): p.read_bytes() for p in (tree / "reports").rglob("*") if p.is_file()}
    assert second == first


def test_a_missing_optional_input_is_a_note_not_an_error(tree):
    for path in ("reports/tuning", "reports/tuned", "reports/plots/tuning", "reports/tables", "reports/eval"):
        shutil.rmtree(tree / path)
    shutil.rmtree(tree / "data/processed/uvmaps")
    for path in (tree / "reports/metrics").glob("tune-*.json"):
        path.unlink()
    (tree / "reports/metrics/train-heatreg-jsrt.json").unlink()
    (tree / "reports/plots/train/heatreg-jsrt.csv").unlink()
    report, md, html = _run(tree)
    assert "Tuning study denseseg-wrist: not run (stage `tune@denseseg-wrist`)" in md
    assert "Table 2: wrist: not run (stage `tables`)" in md and "Table 1: JSRT: not run (stage `tables`)" in md
    assert "uv cache wrist: not run (stage `uvmaps@wrist`)" in md
    assert "Overlays of denseseg-wrist: not run (stage `evaluate@denseseg-wrist`)" in md
    assert "Not trained yet: heatreg-jsrt" in md
    assert report.metrics["notes"] >= 8 and html.count('class="note"') == report.metrics["notes"]


def test_bone_age_is_a_line_when_absent_and_a_section_when_present(built, tree):
    assert "Bone age: not run (stage boneage)." in _section(_read(built)[0], "Bone age")
    write_boneage(tree)
    _, md, html = _run(tree)
    part = _section(md, "Bone age")
    (table,) = markdown_tables(part)
    assert table[0][:3] == ["landmarks from", "MAE chronological [months]", "R² chronological"]
    assert [r[0] for r in table[1:]] == ["baseline", "registration", "denseseg", "heatreg", "truth"]
    rows = {r[0]: r for r in table[1:]}
    assert rows["denseseg"][1] == "12" and rows["denseseg"][-1] == "13.9" and rows["truth"][-1] == "—"
    assert "figures/bone-age-scatter.png" in part and (tree / "reports/figures/bone-age-scatter.png").exists()


@pytest.mark.parametrize(
    "relative, content, message",
    [
        ("reports/metrics/registration.json", "{not json", r"registration\.json: not valid JSON"),
        ("reports/metrics/propagation.json", "[1, 2]", r"propagation\.json: a JSON object expected, found list"),
        ("reports/tables/tables.json", '{"table2": {"unit": "px"}}', r"tables\.json \[table2\]: no key 'columns'"),
        ("reports/metrics/release.json", '{"images": 7}', r"release\.json: no key 'patients'"),
        ("reports/metrics/ingest.json", '{"rows": "many"}', r"ingest\.json: 'rows' is 'many', not a number"),
        ("reports/eval/denseseg-wrist/best.png", "GIF89a", r"denseseg-wrist/best\.png: not a PNG file"),
    ],
)
def test_a_malformed_input_is_a_stage_error_naming_the_file(tree, relative, content, message):
    (tree / relative).write_text(content)
    with pytest.raises(StageError, match=message):
        build_stage("report", tree).run_serial()
    assert not (tree / "reports/report.html").exists()  # nothing half written


def test_a_csv_without_a_needed_column_is_a_stage_error_naming_file_and_column(tree):
    path = tree / "reports/plots/propagation/rounds.csv"
    pd.read_csv(path).drop(columns=["dice_mean_all"]).to_csv(path, index=False)
    with pytest.raises(StageError, match=r"rounds\.csv: missing column\(s\) dice_mean_all"):
        build_stage("report", tree).run_serial()


def test_the_uv_figure_draws_the_first_item_of_the_split_named_in_params(built, tree):
    assert "Item `wrist0002` of the uv cache `wrist`" in _read(built)[0]  # the tiny cache: train, val, test
    _, md, _ = _run_with(tree, "val")
    assert "Item `wrist0001` of the uv cache `wrist`" in md
    with pytest.raises(StageError, match=r"params\.yaml \[report\.uv_split\]"):
        build_stage("report", tree, ["report.uv_split=holdout"])


def _run_with(tree, split):
    params = tree / "params.yaml"
    params.write_text(params.read_text().replace("uv_split: test", f"uv_split: {split}"))
    return _run(tree)


def test_on_real_data_the_claims_say_there_is_no_truth(tree):
    path = tree / "reports/metrics/phantom.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "enabled": 0}))
    _, md, _ = _run(tree)
    claims = _section(md, "What the phantom can and cannot claim")
    assert "This run used real data" in claims and "synthetic" not in claims
    assert "the wrist phantom" not in _section(md, "Data flow")


def test_dvc_yaml_lists_every_file_the_stage_reads_as_a_dep(built, tmp_path, monkeypatch):
    """Every path the stage resolves (but its output folder) lies in a dep of `report`, so DVC re-runs it."""
    import yaml

    from stages.report import ReportStage
    from tests.conftest import PROJECT

    read = []
    original = ReportStage.path
    monkeypatch.setattr(
        ReportStage, "path", lambda self, relative: read.append(str(relative)) or original(self, relative)
    )
    tree = tmp_path / "copy"
    shutil.copytree(built, tree)
    write_boneage(tree)
    _run(tree)
    stage = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]["report"]
    paths = yaml.safe_load((PROJECT / "params.yaml").read_text())["paths"]
    deps = [re.sub(r"\$\{paths\.(\w+)\}", lambda m: paths[m.group(1)], d) for d in stage["deps"]]
    missing = [p for p in read if p != "reports" and not any(p == d or p.startswith(d + "/") for d in deps)]
    assert missing == []
    assert {f"{paths['uvmaps']}/wrist", "reports/tables/tables.json", "reports/eval/denseseg-wrist"} <= set(deps)
    assert [next(iter(o)) for o in stage["outs"]] == ["reports/report.md", "reports/report.html", "reports/figures"]
