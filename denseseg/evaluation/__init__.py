"""Scores against a reference or the phantom's truth: segmentation, surfaces, landmarks, per-case rows, tables.

Modules: ``surface`` (boundaries and distances), ``landmarks`` (TRE),
``segmentation`` (Dice), ``cases`` (per-case rows and their summaries),
``published`` (the paper's Tables 1 and 2), ``tables`` (Markdown tables),
``overlays`` (qualitative PNGs), ``correspondence`` (registered landmarks
against the phantom's dense truth).
"""
