"""The report as GitHub-flavoured Markdown; figures are relative links into a folder the caller fills.

Text outside code spans has every character that could start markup
backslash-escaped (emphasis, raw HTML, links, a heading or list at the start),
so a bone called ``ulna_radius`` or a value like ``<0.5`` reads as written;
``|`` is escaped in table cells, code spans included (GFM tables split on it).
"""

from __future__ import annotations

import re

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
    slug,
)

# Escaped wherever they stand: emphasis, raw HTML, strikethrough, table cells. ``[`` and ``]`` only where a
# link could form (``](``, ``][``); ``#``, ``>``, ``[``, ``-``, ``+``, ``1.`` only at the start of a block.
_ALWAYS = re.compile(r"([\\*_<&|~`])")
_LINK = re.compile(r"\](?=[(\[])")
_START = re.compile(r"^(\s*)(#{1,6}(?=\s|$)|>|\[|-{3,}|[-+](?=\s|$)|\d{1,9}(?=[.)](?:\s|$)))")


def inline(text: str, in_table: bool = False) -> str:
    """Plain text with `code` spans as Markdown; newlines become spaces (a block is one paragraph)."""
    out = []
    for is_code, part in code_spans(" ".join(str(text).split("\n"))):
        if is_code:  # code_spans leaves no backtick inside a code part
            out.append("`" + (part.replace("|", "\\|") if in_table else part) + "`")
        else:
            out.append(_LINK.sub(r"\\]", _ALWAYS.sub(r"\\\1", part)))
    text = "".join(out)
    return text if in_table else _START.sub(_escape_start, text, count=1)


def _escape_start(match: re.Match) -> str:
    """``# x`` -> ``\\# x``; ``1. x`` -> ``1\\. x`` (an ordered list is escaped at its dot)."""
    lead, mark = match.group(1), match.group(2)
    return lead + mark + "\\" if mark[0].isdigit() else lead + "\\" + mark


def _table(table: Table) -> list[str]:
    lines = []
    if table.caption:
        lines += [f"*{inline(table.caption)}*", ""]
    lines.append("| " + " | ".join(inline(c, True) for c in table.columns) + " |")
    lines.append("|" + " --- |" * len(table.columns))
    lines += ["| " + " | ".join(inline(c, True) for c in row) + " |" for row in table.rows]
    return lines


def _reproduce(box: Reproduce) -> list[str]:
    lines = ["> **How to reproduce**", ">"]
    if box.stages:
        lines.append("> - stages: " + ", ".join(f"`{s}`" for s in box.stages))
    if box.params:
        lines.append("> - params.yaml: " + ", ".join(f"`{p}`" for p in box.params))
    if box.files:
        lines.append("> - reads: " + ", ".join(f"`{f}`" for f in box.files))
    lines += [">", "> ```sh", *(f"> {c}" for c in box.commands), "> ```"]
    return lines


def _block(block, figure_dir: str) -> list[str]:
    if isinstance(block, Paragraph):
        return [inline(block.text)]
    if isinstance(block, Note):
        return [f"> **Note:** {inline(block.text)}"]
    if isinstance(block, Bullets):
        return [f"- {inline(item)}" for item in block.items]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        alt = inline(block.caption.replace("[", "(").replace("]", ")"))
        return [f"![{alt}]({figure_dir}/{block.name}.png)", "", f"*{inline(block.caption)}*"]
    if isinstance(block, Reproduce):
        return _reproduce(block)
    raise TypeError(f"unknown block {type(block).__name__}")


def _section(section: Section, level: int, figure_dir: str) -> list[str]:
    lines = [f"{'#' * level} {inline(section.title)}", ""]
    for block in section.blocks:
        lines += [*_block(block, figure_dir), ""]
    for sub in section.subsections:
        lines += _section(sub, level + 1, figure_dir)
    return lines


def render_markdown(document: Document, figure_dir: str = "figures") -> str:
    """The whole document; a figure ``f`` is linked as ``<figure_dir>/<f.name>.png`` (relative to the file).

    The contents link to the headings by the anchors GitHub and GitLab derive from their titles, so titles
    must give distinct slugs (a ValueError otherwise).
    """
    document.check()
    lines = [f"# {inline(document.title)}", ""]
    for block in document.intro:
        lines += [*_block(block, figure_dir), ""]
    lines += ["## Contents", ""]
    seen = {"contents"}
    for level, section in document.walk():
        target = slug(section.title)  # what GitHub and GitLab name the heading
        if target in seen:
            raise ValueError(f"duplicate Markdown heading anchor {target!r} (section {section.title!r})")
        seen.add(target)
        lines.append(f"{'  ' * (level - 2)}- [{inline(section.title)}](#{target})")
    lines.append("")
    for section in document.sections:
        lines += _section(section, 2, figure_dir)
    return "\n".join(lines).rstrip("\n") + "\n"
