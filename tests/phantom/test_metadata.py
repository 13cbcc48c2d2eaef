import io
import re

import numpy as np
import pandas as pd
import pytest

from denseseg.phantom.metadata import COLUMNS, csv_bytes, format_age, make_filestem, plan_release
from tests.phantom.tiny import plan_settings

PATTERN = re.compile(r"^(\d{4})_(\d{10})_(\d{2})_WRI-([LR])([123])_([MFO])(\d{3})$")


def test_format_age_and_filestem():
    assert format_age(14.1) == "14.1" and format_age(12.0) == "12" and format_age(0.24) == "0.2"
    assert make_filestem(1, 1297860395, 1, "L", 1, "M", 14.1) == "0001_1297860395_01_WRI-L1_M014"
    assert make_filestem(12, 354485735, 2, "R", 2, "F", 0.96) == "0012_0354485735_02_WRI-R2_F001"


def test_csv_encoding_header_and_rows_match_filestems():
    plan = plan_release(3, plan_settings(n_patients=25, p_other=0.2))
    data = csv_bytes(plan)
    assert data.startswith(
        b"\xef\xbb\xbf" + b"filestem,patient_id,study_number,timehash,gender,age,laterality,"
        b"projection,initial_exam,ao_classification,cast,diagnosis_uncertain,osteopenia,"
        b"fracture_visible,metal,pixel_spacing,device_manufacturer\r\n"
    )
    assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
    df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert tuple(df.columns) == COLUMNS
    for row in df.itertuples():
        m = PATTERN.match(row.filestem)
        assert m, row.filestem
        pid, th, study, side, proj, sex, years = m.groups()
        assert int(pid) == int(row.patient_id) and row.patient_id == str(int(pid))
        assert int(th) == int(row.timehash) and row.timehash == str(int(th))
        assert int(study) == int(row.study_number)
        assert (side, proj, sex) == (row.laterality, row.projection, row.gender)
        assert int(years) == int(np.floor(float(row.age)))
    for col in ("initial_exam", "cast", "diagnosis_uncertain", "osteopenia", "fracture_visible", "metal"):
        assert set(df[col]) <= {"1", ""}
    assert set(df.pixel_spacing) <= {"0.144", "0.143"} and set(df.device_manufacturer) <= {"Siemens", "Agfa"}
    assert list(df.filestem) == sorted(df.filestem)
    assert df.groupby("patient_id").size().max() >= 2  # several images per patient
    assert {"1", "2"} <= set(df.projection)


def test_plan_is_deterministic_and_validated():
    a = csv_bytes(plan_release(5, plan_settings(n_patients=10)))
    assert a == csv_bytes(plan_release(5, plan_settings(n_patients=10)))
    assert a != csv_bytes(plan_release(6, plan_settings(n_patients=10)))
    with pytest.raises(ValueError, match="p_cast"):
        plan_settings(p_cast=1.5)


def test_header_matches_the_real_release(shared_data):
    real = (shared_data / "grazpedwri-dx" / "dataset.csv").read_bytes()
    header = real.split(b"\r\n", 1)[0]
    assert csv_bytes(plan_release(1, plan_settings(n_patients=1))).split(b"\r\n", 1)[0] == header
