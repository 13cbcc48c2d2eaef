"""release: regenerable bit for bit, checksummed, credited; publishable with `dvc push`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from registration_project import make_project  # noqa: E402

from denseseg.io.checksums import checksums, verify_checksums  # noqa: E402
from denseseg.io.metrics import read_metrics, split_metrics  # noqa: E402
from denseseg.io.tables import LANDMARKS, SPLITS, read_table  # noqa: E402
from stages.base import StageError  # noqa: E402
from stages.config import build_stage  # noqa: E402


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("rel"), n_images=4)
    for stage in ("contours", "register", "split", "release"):
        build_stage(stage, root).run_serial()
    return root


def test_release_contents_and_checksums(project):
    rel = project / "release"
    names = set(checksums(rel))
    assert {
        "landmarks.parquet",
        "splits.parquet",
        "qc.parquet",
        "images.parquet",
        "DATASHEET.md",
        "release.json",
    } <= names
    assert any(n.startswith("masks/shard-") for n in names)
    assert verify_checksums(rel) == []
    landmarks = read_table(rel / "landmarks.parquet", LANDMARKS)
    splits = read_table(rel / "splits.parquet", SPLITS)
    assert set(splits.filestem) == set(landmarks.filestem) and "img-90" not in set(splits.filestem)
    sheet = (rel / "DATASHEET.md").read_text()
    assert "CC BY 4.0" in sheet and "Nagy" in sheet and "Sci Data 9, 222 (2022)" in sheet
    assert "Dice" in sheet and "0.8" in sheet and "phantom" in sheet
    info = json.loads((rel / "release.json").read_text())
    assert info["version"] == "1.0.0" and info["counts"]["images"] == 4


def test_metrics_are_numbers_and_the_version_is_info(project):
    metrics = json.loads((project / "reports/metrics/release.json").read_text())
    assert set(metrics) == {"images", "patients", "files"} and metrics["images"] == 4
    assert all(type(v) is int for v in metrics.values())
    assert metrics["files"] == len((project / "release/SHA256SUMS").read_text().splitlines())
    assert json.loads((project / "reports/metrics/release-info.json").read_text()) == {"version": "1.0.0"}


def test_the_datasheet_reads_the_registration_words_from_either_file(project, tmp_path):
    copy = tmp_path / "p"
    shutil.copytree(project, copy)
    build_stage("release", copy).run_serial()
    sheet = (copy / "release/DATASHEET.md").read_text()
    folder = copy / "reports/metrics"
    # register writes numbers to registration.json and its words to registration-info.json
    numbers = json.loads((folder / "registration.json").read_text())
    words = json.loads((folder / "registration-info.json").read_text())
    assert "filestem" not in numbers.get("reference", {}) and words["reference"]["filestem"]
    registration = read_metrics(folder, "registration")
    assert f"image {registration['reference']['filestem']}, " in sheet  # the reference, described in words
    assert split_metrics(registration) == (numbers, words)
    # the words back in one file (as an older register wrote it): the same datasheet
    (folder / "registration.json").write_text(json.dumps(registration))
    (folder / "registration-info.json").unlink()
    build_stage("release", copy).run_serial()
    assert (copy / "release/DATASHEET.md").read_text() == sheet


def test_regenerating_gives_the_same_checksums(project):
    first = (project / "release/SHA256SUMS").read_text()
    build_stage("release", project).run_serial()
    assert (project / "release/SHA256SUMS").read_text() == first
    assert verify_checksums(project / "release") == []


def test_tampering_is_detected(project, tmp_path):
    copy = tmp_path / "release"
    shutil.copytree(project / "release", copy)
    (copy / "DATASHEET.md").write_text("changed")
    assert verify_checksums(copy) == ["DATASHEET.md"]


def test_missing_split_is_a_stage_error(project, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(project, root)
    (root / "data/processed/splits.parquet").unlink()
    with pytest.raises(StageError, match="splits"):
        build_stage("release", root).run_serial()


def _run(cmd, cwd, env):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed: {done.stderr[-2000:]}"


@pytest.mark.slow
def test_release_pushes_to_a_local_dvc_remote(project, tmp_path):
    dvc = Path(sys.executable).with_name("dvc")
    git = shutil.which("git")
    if not dvc.exists() or git is None:
        pytest.skip("dvc or git not installed")
    repo, remote = tmp_path / "repo", tmp_path / "remote"
    repo.mkdir()
    shutil.copytree(project / "release", repo / "release")
    env = dict(
        os.environ,
        DVC_NO_ANALYTICS="true",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    _run([git, "init", "-q"], repo, env)
    _run([str(dvc), "init", "-q"], repo, env)
    _run([str(dvc), "remote", "add", "-d", "store", str(remote)], repo, env)
    _run([str(dvc), "add", "-q", "release"], repo, env)
    _run([str(dvc), "push", "-q"], repo, env)
    pushed = [p for p in remote.rglob("*") if p.is_file()]
    # one object per file plus the directory listing (.dir)
    assert len(pushed) >= len(checksums(repo / "release")) + 1
    assert any(p.name.endswith(".dir") for p in pushed)
    # what is in the remote is byte-identical to the release: restore into a fresh clone of the cache
    shutil.rmtree(repo / "release")
    shutil.rmtree(repo / ".dvc" / "cache")
    _run([str(dvc), "pull", "-q"], repo, env)
    assert verify_checksums(repo / "release") == []
