"""benchmarks/registration_tails.py on a tiny project whose errors are known by construction."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml


@pytest.fixture(scope="module")
def tails(load_benchmark):
    return load_benchmark("registration_tails")


def _project(root: Path) -> Path:
    paths = {
        "landmarks": "landmarks.parquet",
        "truth_landmarks": "truth.parquet",
        "qc": "qc.parquet",
        "ingest": "ingest",
        "seed_annotations": "seeds",
        "metrics": "metrics",
    }
    (root / "params.yaml").write_text(yaml.safe_dump({"paths": paths}))
    (root / "ingest").mkdir()
    (root / "metrics").mkdir()
    # the template's lunate landmarks 0 and 1 sit on the reference's cut: no identity
    info = {"template": {"landmarks_on_reference_cut": {"lunate": "0-1"}}}
    (root / "metrics" / "registration-info.json").write_text(json.dumps(info))
    (root / "seeds" / "a").mkdir(parents=True)  # image a has seed masks, b a pseudo-label
    frame = {"orig_height": 100, "orig_width": 50, "height": 100, "width": 50, "flipped": False, "scale": 1.0}
    frame |= {"pad_top": 0.0, "pad_left": 0.0, "field_left": 0.0, "field_bottom": 0.0, "field_right": 0.0}
    # image b: a collimator band over its top 50 rows hides its lunate (y = 40)
    manifest = [{"filestem": "a", **frame, "field_top": 0.0}, {"filestem": "b", **frame, "field_top": 50.0}]
    pd.DataFrame(manifest).to_parquet(root / "ingest/manifest.parquet")
    truth, registered, qc = [], [], []
    for stem, shift in (("a", 1.0), ("b", 3.0)):
        for structure, y0 in (("lunate", 40.0), ("radius", 80.0)):
            for index in range(4):
                x, y = 10.0 + 5 * index, y0
                if structure == "radius" and index == 3:
                    y = 120.0  # beyond the 100-row view: unscored, and the radius counts as cut
                truth.append((stem, structure, index, x, y))
                registered.append((stem, structure, index, x + shift, y))
            qc.append((stem, structure, 0.95, 0.5, 0, 0.4, True, True))
    columns = ["filestem", "structure", "index", "x", "y"]
    pd.DataFrame(truth, columns=columns).to_parquet(root / "truth.parquet")
    pd.DataFrame(registered, columns=columns).to_parquet(root / "landmarks.parquet")
    qc_columns = ["filestem", "structure", "dice", "residual_px", "order_reversals", "inverse_gap_px"]
    qc_columns += ["passed", "image_passed"]
    pd.DataFrame(qc, columns=qc_columns).to_parquet(root / "qc.parquet")
    return root


def test_errors_are_split_by_view_mask_source_and_cut(tails, tmp_path):
    rows = tails.landmark_errors(_project(tmp_path), edge_px=1.0)
    assert len(rows) == 16
    assert not rows[(rows["structure"] == "radius") & (rows["index"] == 3)]["in_view"].any()
    assert not rows[(rows["filestem"] == "b") & (rows["structure"] == "lunate")]["in_view"].any()  # under the blade
    seen = rows[rows["in_view"]]
    assert len(seen) == 10
    assert np.allclose(seen.loc[seen["filestem"] == "a", "error_px"], 1.0)
    assert np.allclose(seen.loc[seen["filestem"] == "b", "error_px"], 3.0)
    assert (
        seen.loc[seen["structure"] == "radius", "cut"].all()
        and not seen.loc[seen["structure"] == "lunate", "cut"].any()
    )
    assert seen.loc[seen["filestem"] == "a", "seed"].all() and not seen.loc[seen["filestem"] == "b", "seed"].any()
    assert set(seen["group"]) == {"carpals", "ulna_radius"}
    no_identity = rows[~rows["identity"]]
    assert set(zip(no_identity["structure"], no_identity["index"])) == {("lunate", 0), ("lunate", 1)}
    assert len(no_identity) == 4  # in both images
    figures = tails.figures(seen["error_px"])
    assert figures["n"] == 10 and figures["median_px"] == pytest.approx(1.0) and figures["max_px"] == pytest.approx(3.0)
