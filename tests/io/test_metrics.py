"""A stage's metrics are split into numbers (``<name>.json``) and words (``<name>-info.json``) and read back merged."""

import json

from denseseg.io.metrics import read_metrics


def test_numbers_and_words_are_merged_key_by_key_and_missing_files_read_as_empty(tmp_path):
    (tmp_path / "register.json").write_text(json.dumps({"qc": {"passed": 7, "total": 9}, "p95_px": 4.8}))
    (tmp_path / "register-info.json").write_text(json.dumps({"qc": {"bounds": "none"}, "reference": "0040"}))
    assert read_metrics(tmp_path, "register") == {
        "qc": {"passed": 7, "total": 9, "bounds": "none"},
        "p95_px": 4.8,
        "reference": "0040",
    }
    (tmp_path / "numbers-only.json").write_text(json.dumps({"n": 3}))
    assert read_metrics(tmp_path, "numbers-only") == {"n": 3}
    assert read_metrics(tmp_path, "absent") == {}
