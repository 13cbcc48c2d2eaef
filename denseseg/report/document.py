"""A small document model for the pipeline's report, rendered to Markdown and to one self-contained HTML file.

A ``Document`` is a title, an introduction and ``Section``s (each with an
anchor and optional subsections). A section holds blocks: ``Paragraph``,
``Bullets``, ``Note`` (a missing input or a caveat), ``Table``, ``Figure``
(PNG bytes) and ``Reproduce`` (which stages, params keys and commands give its
numbers). Text is plain; the only markup is a backtick-quoted code span
(`` `dvc repro` ``), which both renderers understand and everything else is
escaped by them. The model knows no files: the renderers return text, and the
caller writes figures where the Markdown links them.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
DASH = "—"


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "items", tuple(str(i) for i in self.items))


@dataclass(frozen=True)
class Note:
    """Something the reader must not miss: an input that is absent, or a limit of what a number means."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of text cells; ``from_frame`` and ``from_records`` format numbers."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def __post_init__(self):
        columns = tuple(str(c) for c in self.columns)
        rows = tuple(tuple(str(c) for c in row) for row in self.rows)
        if not columns:
            raise ValueError("a table needs at least one column")
        for i, row in enumerate(rows):
            if len(row) != len(columns):
                raise ValueError(f"table {self.caption!r}: row {i} has {len(row)} cells for {len(columns)} columns")
        object.__setattr__(self, "columns", columns)
        object.__setattr__(self, "rows", rows)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, caption: str = "", digits: int = 3) -> Table:
        """A DataFrame's columns and rows (its index is dropped; keep it as a column if it matters)."""
        rows = [[format_value(v, digits) for v in row] for row in frame.itertuples(index=False, name=None)]
        return cls(tuple(frame.columns), tuple(tuple(r) for r in rows), caption)

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping], columns: Sequence[str] | None = None, caption: str = "", digits: int = 3
    ) -> Table:
        """One row per mapping; columns in order of first appearance unless given; absent cells are "—"."""
        if columns is None:
            columns = list(dict.fromkeys(key for record in records for key in record))
        rows = [[format_value(record.get(c), digits) for c in columns] for record in records]
        return cls(tuple(columns), tuple(tuple(r) for r in rows), caption)


@dataclass(frozen=True)
class Figure:
    """A PNG figure; ``name`` is its file stem under the Markdown's figure folder (lower case, digits, - and _)."""

    name: str
    png: bytes
    caption: str

    def __post_init__(self):
        if not FIGURE_NAME.match(self.name):
            raise ValueError(f"figure name {self.name!r}: use lower-case letters, digits, '-' and '_'")
        if not self.png.startswith(PNG_SIGNATURE) or len(self.png) < 24:
            raise ValueError(f"figure {self.name!r}: not PNG bytes")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, from the PNG header."""
        return struct.unpack(">II", self.png[16:24])


@dataclass(frozen=True)
class Reproduce:
    """How to get a section's numbers again: the stages, their params keys, the files read and the commands."""

    stages: tuple[str, ...]
    params: tuple[str, ...]
    commands: tuple[str, ...]
    files: tuple[str, ...] = ()

    def __post_init__(self):
        for name in ("stages", "params", "commands", "files"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        if not self.commands:
            raise ValueError("a reproduce box needs at least one command")

    @classmethod
    def from_spec(cls, spec: dict, values: dict[str, str], lists: dict[str, list[str]]) -> Reproduce:
        """A box from its template entry (``stages``, ``params``, ``commands``, ``files``; see reproduce.yaml).

        Every string is formatted with ``values``; a file given as ``{each: LIST, file: PATTERN}`` is the
        pattern once per name of ``lists[LIST]``, with the name as ``{name}``.
        """
        files = []
        for entry in spec.get("files", []):
            if isinstance(entry, dict):
                files += [entry["file"].format(**values, name=name) for name in lists[entry["each"]]]
            else:
                files.append(entry.format(**values))
        keys = ("stages", "params", "commands")
        return cls(*(tuple(v.format(**values) for v in spec[key]) for key in keys), tuple(files))


Block = Paragraph | Bullets | Note | Table | Figure | Reproduce


@dataclass
class Section:
    """A titled part of the report; its anchor (default: the title as a slug) is its in-page address in HTML.

    Markdown has no anchors of its own: there a section is reached by the slug GitHub makes of its title.
    """

    title: str
    blocks: list[Block] = field(default_factory=list)
    subsections: list[Section] = field(default_factory=list)
    anchor: str = ""

    def __post_init__(self):
        self.anchor = self.anchor or slug(self.title)
        if not re.fullmatch(r"[a-z0-9_][a-z0-9_-]*", self.anchor):
            raise ValueError(f"section {self.title!r}: anchor {self.anchor!r}: use lower-case letters, digits, - and _")

    def add(self, *blocks: Block) -> Section:
        self.blocks.extend(blocks)
        return self


@dataclass
class Document:
    title: str
    intro: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)

    def walk(self) -> Iterator[tuple[int, Section]]:
        """(level, section) in reading order: 2 for a section, 3 for a subsection, and so on."""

        def visit(sections, level):
            for section in sections:
                yield level, section
                yield from visit(section.subsections, level + 1)

        yield from visit(self.sections, 2)

    def figures(self) -> list[Figure]:
        blocks = list(self.intro) + [b for _, s in self.walk() for b in s.blocks]
        return [b for b in blocks if isinstance(b, Figure)]

    def check(self) -> None:
        """Anchors and figure names must be unique (a link or a file would silently point at the wrong one)."""
        anchors = [s.anchor for _, s in self.walk()]
        for names, what in ((anchors, "section anchor"), ([f.name for f in self.figures()], "figure name")):
            seen = set()
            for name in names:
                if name in seen:
                    raise ValueError(f"duplicate {what} {name!r}")
                seen.add(name)


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces to hyphens."""
    text = re.sub(r"[^a-z0-9 _-]", "", title.lower())
    return re.sub(r" ", "-", text.strip()) or "section"


def format_value(value, digits: int = 3) -> str:
    """A cell's text: "—" for missing (None, NaN), integers as such, floats to ``digits`` significant digits."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:  # a numpy scalar
        value = value.item()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return DASH
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.{digits}g}" if abs(value) < 10**digits else f"{value:.0f}"
    return str(value)


def code_spans(text: str) -> list[tuple[bool, str]]:
    """``text`` cut at backticks: (is_code, part) pairs; an unpaired backtick is kept as text."""
    parts = text.split("`")
    if len(parts) % 2 == 0:  # odd number of backticks: the last one is literal
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    return [(i % 2 == 1, part) for i, part in enumerate(parts) if part or i % 2 == 1]
