"""contours -> register on a synthetic project with known truth and two bad images."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from registration_project import make_project  # noqa: E402

from denseseg.io.metrics import read_metrics  # noqa: E402
from denseseg.io.tables import CONTOURS, LANDMARKS, QC, REJECTS, read_table  # noqa: E402
from stages.base import StageError  # noqa: E402
from stages.config import build_stage  # noqa: E402


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = make_project(tmp_path_factory.mktemp("reg"))
    contours_report = build_stage("contours", root).run_serial()
    register_report = build_stage("register", root).run_serial()
    return root, contours_report, register_report


def test_contours_written_per_shard_with_rejects(project):
    root, report, _ = project
    out = root / "data/interim/contours"
    shards = sorted(out.glob("shard-*.parquet"))
    assert [p.name for p in shards] == [p.name for p in sorted((root / "data/interim/masks").glob("shard-*.parquet"))]
    df = read_table(shards[0], CONTOURS)
    assert df.groupby("filestem").size().eq(4850).all()
    rejects = read_table(out / "rejects.parquet", REJECTS)
    reasons = dict(zip(rejects.filestem, rejects.reason))
    assert reasons["img-90"] == "pisiform: empty mask"
    assert reasons["img-91"].startswith("lunate: degenerate outline")
    assert report.metrics["bones_rejected"] == 2
    assert not list(out.parent.glob("*.partial"))


def test_register_outputs_qc_and_accuracy(project):
    root, _, report = project
    landmarks = read_table(root / "data/processed/landmarks.parquet", LANDMARKS)
    assert sorted(landmarks.filestem.unique()) == [f"img-{i:02d}" for i in range(6)]
    assert landmarks.groupby("filestem").size().eq(710).all()
    qc = read_table(root / "data/processed/qc.parquet", QC)
    assert len(qc) == 8 * 17
    bad = qc[qc.filestem.isin(["img-90", "img-91"])]
    assert not bad.image_passed.any()
    assert "empty mask" in bad[bad.structure == "pisiform"].reason.iloc[0]
    assert qc[qc.image_passed].dice.min() > 0.8
    registered = qc[qc.dice.notna()]  # the label-free figures of every registered bone: folds, fit disagreement
    assert (registered.order_reversals == 0).mean() > 0.9 and np.isfinite(registered.inverse_gap_px).all()
    assert registered.inverse_gap_px.median() < 2.0
    metrics = read_metrics(root / "reports/metrics", "registration")  # numbers and words (-info.json)
    assert metrics["images_in"] == 8 and metrics["images_passed"] == 6
    assert metrics["median_px"] < 1.0 and metrics["p95_px"] < 3.0
    assert set(metrics["groups"]) == {"carpals", "metacarpals", "ulna_radius"}
    assert metrics["template"]["images"] >= 3 and metrics["template"]["iterations"] == 1
    assert metrics["landmarks_inside"] <= metrics["landmarks_scored"] and metrics["landmarks_on_edge"] >= 0
    assert metrics["landmarks_uncut"] <= metrics["landmarks_scored"]
    assert metrics["median_px_inside"] < 1.0 and metrics["median_px_uncut"] < 1.0
    assert metrics["identity"].startswith("template")  # scored at the template landmarks' own atlas points
    assert set(metrics["reference_identity"]) == {"median_px", "mean_px", "p95_px"}
    assert metrics["reference_identity"]["median_px"] < 1.5
    assert set(report.rejects.filestem) == {"img-90", "img-91"}


def test_register_writes_the_true_positions_of_the_landmarks(project):
    """truth-landmarks.parquet: the atlas position of every template landmark in each passed image."""
    root, _, report = project
    landmarks = read_table(root / "data/processed/landmarks.parquet", LANDMARKS)
    truth = read_table(root / "data/processed/truth-landmarks.parquet", LANDMARKS)
    keys = ["filestem", "structure", "index"]
    assert truth[keys].equals(landmarks[keys])
    error = np.hypot(truth.x - landmarks.x, truth.y - landmarks.y)
    # the registration is accurate on this project (see the metrics above), so truth lies next to each landmark
    assert np.median(error) < 1.0 and np.percentile(error, 95) < 3.0
    assert np.median(error) == pytest.approx(report.metrics["median_px"], abs=0.1)


def test_register_is_deterministic(project):
    root, _, _ = project
    before = (root / "data/processed/landmarks.parquet").read_bytes()
    build_stage("register", root).run_serial()
    assert (root / "data/processed/landmarks.parquet").read_bytes() == before


def test_missing_contours_is_a_stage_error(tmp_path):
    make_project(tmp_path, n_images=1, bad=False)
    with pytest.raises(StageError, match="no contour shards"):
        build_stage("register", tmp_path).run_serial()


def test_contours_need_the_ingest_frames(tmp_path):
    """The frames say where the radiograph sits in the working image; without them cuts cannot be told apart."""
    from denseseg.io.tables import MANIFEST, write_table

    make_project(tmp_path, n_images=2, bad=False)
    manifest = tmp_path / "data/interim/ingest/manifest.parquet"
    rows = read_table(manifest, MANIFEST)
    write_table(rows[rows.filestem != "img-01"].reset_index(drop=True), manifest, MANIFEST)
    with pytest.raises(StageError, match="img-01 is not in the ingest manifest"):
        build_stage("contours", tmp_path).run_serial()
    manifest.unlink()
    with pytest.raises(StageError, match="manifest.parquet: missing"):
        build_stage("contours", tmp_path).run_serial()
