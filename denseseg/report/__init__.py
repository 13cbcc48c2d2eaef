"""The pipeline's report: a small document model, its Markdown and self-contained HTML renderers, its sections.

- ``document``: sections with anchors, paragraphs, notes, tables (from DataFrames or records), PNG figures,
  "how to reproduce" boxes.
- ``markdown`` / ``html``: the two renderers of one document (``render_markdown``, ``render_html``).
- ``figures``: the matplotlib figures as deterministic PNG bytes.
- ``sections``: one builder per section, from the stages' parsed outputs (no folder layout).
"""

from denseseg.report.document import Bullets, Document, Figure, Note, Paragraph, Reproduce, Section, Table
from denseseg.report.html import render_html
from denseseg.report.markdown import render_markdown

__all__ = [
    "Bullets",
    "Document",
    "Figure",
    "Note",
    "Paragraph",
    "Reproduce",
    "Section",
    "Table",
    "render_html",
    "render_markdown",
]
