"""Checkpoints are written atomically and refused, with the file named, when they cannot be used."""

from __future__ import annotations

import pytest
import torch

from denseseg.training import checkpoint as checkpoint_module
from denseseg.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def state() -> dict:
    return {
        "epoch": 3,
        "fingerprint": "abc",
        "network": {"w": torch.arange(6.0).reshape(2, 3)},
        "history": [{"a": 1.5}],
    }


def test_a_saved_checkpoint_reads_back_equal(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", state())
    loaded = load_checkpoint(path, required=("epoch", "network"), fingerprint="abc")
    assert loaded["epoch"] == 3 and loaded["history"] == [{"a": 1.5}]
    assert torch.equal(loaded["network"]["w"], torch.arange(6.0).reshape(2, 3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_write_killed_half_way_leaves_the_old_checkpoint_and_no_temporary(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "last.pt", state())
    before = path.read_bytes()

    def half_save(obj, handle):
        handle.write(b"PK\x03\x04 half")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(checkpoint_module.torch, "save", half_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 4})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_a_truncated_checkpoint_is_refused_naming_the_file(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", state())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"last\.pt.*truncated or corrupt"):
        load_checkpoint(path)


def test_garbage_bytes_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "best.pt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match=r"best\.pt.*truncated or corrupt"):
        load_checkpoint(path)


def test_a_pickled_object_is_refused_because_only_weights_are_loaded(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"epoch": 1, "thing": pytest.approx}, path)  # arbitrary callable: weights_only refuses it
    with pytest.raises(CheckpointError, match=r"evil\.pt"):
        load_checkpoint(path)


def test_missing_keys_missing_files_and_other_fingerprints_are_named(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", state())
    with pytest.raises(CheckpointError, match=r"last\.pt: missing keys \['optimizer'\]"):
        load_checkpoint(path, required=("network", "optimizer"))
    with pytest.raises(CheckpointError, match=r"last\.pt: written for fingerprint 'abc', expected 'xyz'"):
        load_checkpoint(path, fingerprint="xyz")
    with pytest.raises(CheckpointError, match=r"nothere\.pt: no such file"):
        load_checkpoint(tmp_path / "nothere.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(tmp_path / "list.pt")
    assert issubclass(CheckpointError, ValueError)
