"""The sections of the pipeline's report, each built from the parsed outputs of the stages that feed it.

Every builder takes plain data (a metrics JSON as a ``Source``, a DataFrame,
PNG bytes) or None for an input that was not produced, and returns a
``Section``: an absent input becomes a ``Note`` saying what is missing, never
an error; a present input without a key the section needs raises
``ReportInputError`` naming its file and the key. The builders know the
stages' output formats but no folder layout: the caller reads the files and
adds the "how to reproduce" boxes.

The builders live in ``data_sections`` (the data half) and ``result_sections`` (the models); this
module is the one name the stage imports them by.
"""

from denseseg.report.data_sections import (
    PAPER_SCALE,
    ROUND_COLUMNS,
    claims,
    data_flow,
    introduction,
    propagation,
    registration,
)
from denseseg.report.result_sections import (
    BONE_AGE_SOURCES,
    PUBLISHED,
    at_a_glance,
    bone_age,
    estimators,
    new_landmarks,
    overlays,
    paper_table,
    training,
    truth_table,
    tuning,
    uv_maps,
)
from denseseg.report.source import ReportInputError, Source

__all__ = [
    "BONE_AGE_SOURCES",
    "PAPER_SCALE",
    "PUBLISHED",
    "ROUND_COLUMNS",
    "ReportInputError",
    "Source",
    "at_a_glance",
    "bone_age",
    "claims",
    "data_flow",
    "estimators",
    "introduction",
    "new_landmarks",
    "overlays",
    "paper_table",
    "propagation",
    "registration",
    "training",
    "truth_table",
    "tuning",
    "uv_maps",
]
