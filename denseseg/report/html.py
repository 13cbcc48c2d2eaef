"""The report as one self-contained HTML file: inline CSS, figures as base64 data URIs, in-page links only.

Nothing in the page refers to another file or to the network: every ``src``
is a ``data:`` URI and every ``href`` an in-page ``#anchor`` of the table of
contents, so the file can be mailed, archived or opened offline as it is. All
text goes through ``html.escape``; no script.
"""

from __future__ import annotations

import base64
import re
from html import escape

from denseseg.report.document import (
    Bullets,
    Document,
    Figure,
    Note,
    Paragraph,
    Reproduce,
    Section,
    Table,
    code_spans,
)

CSS = """
:root { --ink: #1d2330; --muted: #5b6473; --line: #d8dde6; --accent: #2457a6; --note: #fff6dc; --box: #f2f5fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.page { display: grid; grid-template-columns: 16rem minmax(0, 1fr); max-width: 84rem; margin: 0 auto; }
nav { position: sticky; top: 0; align-self: start; max-height: 100vh; overflow-y: auto;
      padding: 1.2rem 1rem; border-right: 1px solid var(--line); font-size: 13.5px; }
nav h2 { font-size: 14px; margin: 0 0 .5rem; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
nav ol { list-style: none; margin: 0; padding-left: 0; }
nav ol ol { padding-left: .9rem; }
nav a { color: var(--accent); text-decoration: none; display: block; padding: .12rem 0; }
nav a:hover { text-decoration: underline; }
main { padding: 1.2rem 2rem 4rem; min-width: 0; }
h1 { font-size: 28px; margin: .2rem 0 .8rem; }
h2 { font-size: 22px; margin: 2.2rem 0 .6rem; padding-top: .6rem; border-top: 2px solid var(--line); }
h3 { font-size: 18px; margin: 1.6rem 0 .5rem; }
h4 { font-size: 15px; margin: 1.2rem 0 .4rem; }
code { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; background: var(--box); padding: 0 .2em;
       border-radius: 3px; }
pre { background: #1f2633; color: #e9edf3; padding: .6rem .8rem; border-radius: 4px; overflow-x: auto; }
pre code { background: none; color: inherit; padding: 0; }
.note { background: var(--note); border-left: 4px solid #d9a400; padding: .5rem .8rem; margin: .8rem 0; }
.reproduce { background: var(--box); border: 1px solid var(--line); border-radius: 6px; padding: .4rem .9rem .6rem;
             margin: 1rem 0; font-size: 14px; }
.reproduce h4 { margin: .3rem 0; }
.reproduce dl { display: grid; grid-template-columns: max-content 1fr; gap: .15rem .8rem; margin: .3rem 0; }
.reproduce dt { color: var(--muted); }
.reproduce dd { margin: 0; }
.table-wrap { overflow-x: auto; margin: .8rem 0 1.2rem; }
table { border-collapse: collapse; font-size: 13.5px; }
caption { caption-side: top; text-align: left; color: var(--muted); padding-bottom: .3rem; max-width: 60rem; }
th, td { border: 1px solid var(--line); padding: .25rem .55rem; vertical-align: top; }
th { background: var(--box); text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafbfd; }
figure { margin: 1rem 0 1.4rem; }
figure.narrow { display: inline-block; vertical-align: top; width: calc(33% - 1rem); margin-right: 1rem; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13.5px; max-width: 60rem; }
@media (max-width: 900px) { .page { display: block; } nav { position: static; max-height: none;
  border-right: 0; border-bottom: 1px solid var(--line); } }
"""

NARROW_PX = 480  # figures at most this wide sit side by side
_NUMBER = re.compile(r"^([−\-+]?\d[\d.,]*(e[−\-+]?\d+)?( ± [\d.]+| / [\d.]+)*%?|—)$")


def inline(text: str) -> str:
    """Escaped text with `code` spans as ``<code>``."""
    return "".join(
        f"<code>{escape(part)}</code>" if is_code else escape(part) for is_code, part in code_spans(str(text))
    )


def _table(table: Table) -> str:
    head = "".join(f"<th>{inline(c)}</th>" for c in table.columns)
    body = []
    for row in table.rows:
        cells = "".join(
            f'<td class="num">{inline(c)}</td>' if _NUMBER.match(c) else f"<td>{inline(c)}</td>" for c in row
        )
        body.append(f"<tr>{cells}</tr>")
    caption = f"<caption>{inline(table.caption)}</caption>" if table.caption else ""
    rows = "\n".join(body)
    table_html = f"<table>{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody></table>"
    return f'<div class="table-wrap">{table_html}</div>'


def _figure(figure: Figure) -> str:
    width, height = figure.size
    data = base64.b64encode(figure.png).decode("ascii")
    narrow = ' class="narrow"' if width <= NARROW_PX else ""  # e.g. overlays: three side by side
    return (
        f'<figure{narrow}><img src="data:image/png;base64,{data}" alt="{escape(figure.caption)}" '
        f'width="{width}" height="{height}"><figcaption>{inline(figure.caption)}</figcaption></figure>'
    )


def _reproduce(box: Reproduce) -> str:
    rows = []
    for label, values in (("stages", box.stages), ("params.yaml", box.params), ("reads", box.files)):
        if values:
            rows.append(f"<dt>{label}</dt><dd>{', '.join(f'<code>{escape(v)}</code>' for v in values)}</dd>")
    commands = "\n".join(escape(c) for c in box.commands)
    return (
        f'<aside class="reproduce"><h4>How to reproduce</h4><dl>{"".join(rows)}</dl>'
        f"<pre><code>{commands}</code></pre></aside>"
    )


def _block(block) -> str:
    if isinstance(block, Paragraph):
        return f"<p>{inline(block.text)}</p>"
    if isinstance(block, Note):
        return f'<p class="note"><strong>Note:</strong> {inline(block.text)}</p>'
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{inline(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Reproduce):
        return _reproduce(block)
    raise TypeError(f"unknown block {type(block).__name__}")


def _section(section: Section, level: int) -> str:
    parts = [f'<section id="{section.anchor}">', f"<h{level}>{inline(section.title)}</h{level}>"]
    parts += [_block(b) for b in section.blocks]
    parts += [_section(s, min(level + 1, 6)) for s in section.subsections]
    parts.append("</section>")
    return "\n".join(parts)


def _contents(sections: list[Section]) -> str:
    items = []
    for s in sections:
        sub = _contents(s.subsections) if s.subsections else ""
        items.append(f'<li><a href="#{s.anchor}">{inline(s.title)}</a>{sub}</li>')
    return "<ol>" + "".join(items) + "</ol>"


def render_html(document: Document) -> str:
    """The whole document as one HTML page (UTF-8 text); the same input gives the same bytes."""
    document.check()
    intro = "\n".join(_block(b) for b in document.intro)
    body = "\n".join(_section(s, 2) for s in document.sections)
    title = escape(document.title)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<div class="page">\n<nav aria-label="contents"><h2>Contents</h2>{_contents(document.sections)}</nav>\n'
        f"<main>\n<header><h1>{inline(document.title)}</h1>\n{intro}\n</header>\n{body}\n</main>\n"
        "</div>\n</body>\n</html>\n"
    )
