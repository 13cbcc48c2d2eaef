"""parse_row's cross-checks and range checks, each at the case that only that check catches.

A right hand whose row says L would not be mirrored by ingest; an age or a
pixel spacing outside the plausible range would silently scale every mm figure.
The expected verdicts come from the dataset's published conventions (filestem
``..._WRI-<L|R><projection>_<sex><age>``; ages 0..30 years; spacing in mm below 1),
not from the parser.
"""

import math

import pytest

from denseseg.io import grazpedwri as g
from tests.builders import HEADER, csv_row

STEM_R = "0002_0354485735_01_WRI-R1_F012"


def _row(stem: str = STEM_R, age: float = 12.0, spacing: str = "0.144", **changes: str) -> dict[str, str]:
    row = dict(zip(HEADER.split(","), csv_row(stem, age, spacing=spacing).split(",")))
    row.update(changes)
    return row


def test_a_right_hand_filestem_with_a_left_row_is_rejected_naming_both():
    with pytest.raises(ValueError, match=r"filestem does not match its row: laterality 'R' != row 'L'"):
        g.parse_row(_row(laterality="L"))


def test_a_left_hand_filestem_with_a_right_row_is_rejected():
    with pytest.raises(ValueError, match=r"laterality 'L' != row 'R'"):
        g.parse_row(_row("0001_1297860395_01_WRI-L1_M014", 14.1, laterality="R"))


def test_the_projection_sex_patient_and_study_are_cross_checked_too():
    cases = {
        "projection": ("2", "projection 1 != row 2"),
        "gender": ("M", "gender 'F' != row 'M'"),
        "patient_id": ("3", "patient 2 != row 3"),
        "study_number": ("2", "study 1 != row 2"),
        "timehash": ("354485736", "timehash 354485735 != row 354485736"),
    }
    for column, (value, reason) in cases.items():
        with pytest.raises(ValueError, match=reason):
            g.parse_row(_row(**{column: value}))


def test_a_consistent_right_hand_row_is_accepted_with_its_values():
    record = g.parse_row(_row())
    assert (record.laterality, record.age, record.pixel_spacing_mm, record.patient_id) == ("R", 12.0, 0.144, "2")


@pytest.mark.parametrize("age, stem_age", [(0.0, "000"), (0.4, "000"), (29.9, "029")])
def test_ages_inside_0_to_30_years_are_accepted(age, stem_age):
    stem = STEM_R[:-3] + stem_age
    assert g.parse_row(_row(stem, age)).age == age


@pytest.mark.parametrize("age, stem_age", [(30.0, "030"), (31.5, "031"), (-1.0, "000")])
def test_ages_outside_0_to_30_years_are_rejected(age, stem_age):
    with pytest.raises(ValueError, match=r"column age: .* years is outside 0\.\.30"):
        g.parse_row(_row(STEM_R[:-3] + stem_age, age))


@pytest.mark.parametrize("spacing", ["0.0001", "0.144", "0.999"])
def test_pixel_spacings_strictly_between_0_and_1_mm_are_accepted(spacing):
    assert g.parse_row(_row(spacing=spacing)).pixel_spacing_mm == float(spacing)


@pytest.mark.parametrize("spacing", ["0", "-0.1", "1", "1.44"])
def test_pixel_spacings_of_0_or_of_1_mm_and_more_are_rejected(spacing):
    with pytest.raises(ValueError, match=r"column pixel_spacing: .* mm is implausible"):
        g.parse_row(_row(spacing=spacing))


def test_a_blank_pixel_spacing_is_unknown_not_an_error():
    assert math.isnan(g.parse_row(_row(spacing="")).pixel_spacing_mm)
