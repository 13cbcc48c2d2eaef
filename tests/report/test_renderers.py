"""The report's document model and its two renderers: escaping, anchors, figures, the same tables in both."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from denseseg.report import (
    Bullets,
    Document,
    Figure,
    Note,
    Paragraph,
    Reproduce,
    Section,
    Table,
    render_html,
    render_markdown,
)
from denseseg.report.document import format_value, slug
from denseseg.report.figures import rounds_figure, uv_projection
from tests.report.conftest import png

HOSTILE = 'a <script>alert("x")</script> & b | c *d* _e_ [f](http://g) `code | <x>`'


class Page(HTMLParser):
    """What a check of the HTML needs: tables as cell texts, ids, every src / href, the text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables, self.ids, self.refs, self.tags, self.text = [], set(), [], [], []
        self._row = self._cell = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        self.refs += [(tag, name, attrs[name]) for name in ("src", "href") if name in attrs]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append("".join(self._cell))
            self._cell = None
        elif tag == "tr":
            self.tables[-1].append(self._row)

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def markdown_tables(text: str) -> list[list[list[str]]]:
    """GFM tables of a Markdown text as cell texts, with the renderer's backslash escapes undone."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if all(c == "---" for c in cells):
                continue
            cells = [re.sub(r"\\(.)", r"\1", c.replace("`", "")) for c in cells]
            if current is None:
                current = []
                tables.append(current)
            current.append(cells)
        else:
            current = None
    return tables


def _document() -> Document:
    frame = pd.DataFrame({"group": ["carpals", "ulna_radius"], "TRE [px]": [1.23456, np.nan], "n": [3, 4]})
    first = Section(
        "Results & more",
        [
            Paragraph(HOSTILE),
            Table.from_frame(frame, caption="per group <b>"),
            Table.from_records([{"a": 1, "b": "x|y"}, {"a": 2.5}], caption="records"),
            Figure("one", png(1), "the first figure"),
        ],
        [Section("Sub part", [Note("careful")])],
    )
    second = Section(
        "Second", [Bullets(("one", "two `b`")), Reproduce(("report",), ("report",), ("dvc repro report",))]
    )
    return Document("Title <1>", [Paragraph("intro")], [first, second])


def test_html_escapes_all_text_and_keeps_code_spans():
    html = render_html(_document())
    assert "<script>" not in html and "alert(&quot;x&quot;)" in html
    assert "&lt;script&gt;" in html and "a &lt;script&gt;" in html
    assert "<code>code | &lt;x&gt;</code>" in html
    assert "<title>Title &lt;1&gt;</title>" in html
    page = Page(html)
    assert "script" not in page.tags
    assert HOSTILE.replace("`", "") in "".join(page.text)  # the reader sees exactly the text


def test_markdown_escapes_markup_but_not_code():
    md = render_markdown(_document())
    paragraph = next(line for line in md.splitlines() if line.startswith("a "))
    assert paragraph == r"a \<script>alert(\"x\")\</script> \& b \| c \*d\* \_e\_ [f\](http://g) `code | <x>`".replace(
        r"\"", '"'
    )
    assert "| x\\|y |" in md  # a pipe inside a table cell does not split it
    assert md.startswith("# Title \\<1>\n")


def test_anchors_are_unique_slugs_and_every_contents_link_resolves():
    doc = _document()
    assert [s.anchor for _, s in doc.walk()] == ["results--more", "sub-part", "second"]
    page = Page(render_html(doc))
    links = [value for tag, name, value in page.refs if name == "href"]
    assert links == ["#results--more", "#sub-part", "#second"]
    assert {link[1:] for link in links} <= page.ids
    md = render_markdown(doc)
    assert "- [Results & more](#results--more)" in md.replace("\\&", "&") and "  - [Sub part](#sub-part)" in md
    assert slug("Table 2: wrist (px)") == "table-2-wrist-px" and slug("ulna_radius: 3") == "ulna_radius-3"


def test_markdown_contents_link_to_the_heading_slugs_html_to_the_anchors():
    doc = Document("t", [], [Section("What the phantom can claim", [Paragraph("x")], anchor="claims")])
    assert "- [What the phantom can claim](#what-the-phantom-can-claim)" in render_markdown(doc)
    page = Page(render_html(doc))
    assert ("a", "href", "#claims") in page.refs and "claims" in page.ids
    with pytest.raises(ValueError, match="duplicate Markdown heading anchor 'a-b'"):
        render_markdown(Document("t", [], [Section("A b", anchor="one"), Section("A: b", anchor="two")]))


def test_duplicate_anchors_and_figure_names_and_bad_anchors_are_errors():
    with pytest.raises(ValueError, match="duplicate section anchor 'a'"):
        render_html(Document("t", [], [Section("A"), Section("a")]))
    with pytest.raises(ValueError, match="duplicate figure name 'f'"):
        render_markdown(Document("t", [], [Section("A", [Figure("f", png(1), "x"), Figure("f", png(2), "y")])]))
    with pytest.raises(ValueError, match="anchor"):
        Section("x", anchor="Not an anchor")
    with pytest.raises(ValueError, match="not PNG bytes"):
        Figure("f", b"GIF89a....", "x")
    with pytest.raises(ValueError, match="figure name"):
        Figure("../f", png(1), "x")


def test_markdown_and_html_carry_the_same_tables():
    doc = _document()
    html_tables = Page(render_html(doc)).tables
    md_tables = markdown_tables(render_markdown(doc))
    assert len(html_tables) == 2
    assert md_tables == html_tables
    assert html_tables[0] == [["group", "TRE [px]", "n"], ["carpals", "1.23", "3"], ["ulna_radius", "—", "4"]]
    assert html_tables[1] == [["a", "b"], ["1", "x|y"], ["2.5", "—"]]


def test_figures_are_embedded_in_html_and_linked_from_markdown():
    doc = _document()
    page = Page(render_html(doc))
    sources = [value for tag, name, value in page.refs if name == "src"]
    assert len(sources) == 1 and sources[0].startswith("data:image/png;base64,")
    assert base64.b64decode(sources[0].split(",", 1)[1]) == doc.figures()[0].png
    assert all(value.startswith(("data:", "#")) for _, _, value in page.refs)
    assert "![the first figure](figures/one.png)" in render_markdown(doc)
    assert "![the first figure](img/one.png)" in render_markdown(doc, "img")


def test_rendering_is_deterministic_and_figures_have_fixed_bytes():
    assert render_html(_document()) == render_html(_document())
    assert render_markdown(_document()) == render_markdown(_document())
    rounds = pd.DataFrame(
        {
            "round": [1, 2],
            "dice_mean_accepted": [0.8, 0.9],
            "dice_mean_all": [0.7, 0.8],
            "asd_mean_accepted_px": [1.2, 1.0],
            "asd_mean_all_px": [2.0, 1.8],
            "n_accepted": [3, 4],
            "n_rejected": [2, 1],
        }
    )
    first, second = rounds_figure(rounds), rounds_figure(rounds)
    assert first == second and first.startswith(b"\x89PNG") and b"Software" not in first
    assert Figure("r", first, "x").size == (1100, 340)  # figsize (11, 3.4) at 100 dpi


def test_reproduce_box_lists_stages_params_and_commands_in_both():
    doc = _document()
    md, html = render_markdown(doc), render_html(doc)
    assert "> **How to reproduce**" in md and "> dvc repro report" in md and "> - stages: `report`" in md
    assert '<aside class="reproduce">' in html and "<pre><code>dvc repro report</code></pre>" in html
    with pytest.raises(ValueError, match="at least one command"):
        Reproduce(("a",), (), ())


def test_cells_format_missing_values_integers_and_floats():
    assert [format_value(v) for v in (None, float("nan"), 3, 3.0, 0.123456, 1234.5, True, np.int64(7))] == [
        "—",
        "—",
        "3",
        "3",
        "0.123",
        "1234",
        "yes",
        "7",
    ]
    with pytest.raises(ValueError, match="row 0 has 1 cells for 2 columns"):
        Table(("a", "b"), (("x",),))


def test_uv_projection_keeps_the_larger_value_where_bones_overlap_and_nan_outside():
    uv = np.full((2, 2, 2, 3), np.nan, np.float32)
    masks = np.zeros((2, 2, 3), bool)
    masks[0, 0, :2], masks[1, 0, 1:] = True, True
    uv[0, :, 0, :2], uv[1, :, 0, 1:] = 0.2, 0.5
    u, v = uv_projection(uv, masks)
    assert np.allclose(u[0], [0.2, 0.5, 0.5]) and np.allclose(v[0], [0.2, 0.5, 0.5])
    assert np.isnan(u[1]).all() and np.isnan(v[1]).all()
