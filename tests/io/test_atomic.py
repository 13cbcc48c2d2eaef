import pytest

from denseseg.io.atomic import atomic_file, commit_dir, partial_dir


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(dest) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert dest.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_partial_dir_is_fresh_and_commit_replaces_whole(tmp_path):
    dest = tmp_path / "out"
    (dest).mkdir()
    (dest / "stale.txt").write_text("from an old run")
    staging = partial_dir(dest)
    (staging / "leftover").write_text("killed run")
    staging = partial_dir(dest)  # a rerun starts clean
    assert list(staging.iterdir()) == []
    (staging / "new.txt").write_text("new")
    commit_dir(staging, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_json_is_valid_with_missing_figures_as_null(tmp_path):
    import json

    from denseseg.io.atomic import write_json_atomic

    write_json_atomic(tmp_path / "m.json", {"b": float("nan"), "a": [1.5, float("inf")], "c": {"d": float("-inf")}})
    text = (tmp_path / "m.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": [1.5, None], "b": None, "c": {"d": None}}
