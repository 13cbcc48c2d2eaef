"""benchmarks/registration_tails.py on a tiny project whose errors are known by construction."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "registration_tails.py"


@pytest.fixture(scope="module")
def tails():
    spec = importlib.util.spec_from_file_location("registration_tails_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _project(root: Path) -> Path:
    paths = {
        "landmarks": "landmarks.parquet",
        "truth_landmarks": "truth.parquet",
        "qc": "qc.parquet",
        "ingest": "ingest",
        "seed_annotations": "seeds",
    }
    (root / "params.yaml").write_text(yaml.safe_dump({"paths": paths}))
    (root / "ingest").mkdir()
    (root / "seeds" / "a").mkdir(parents=True)  # image a has seed masks, b a pseudo-label
    view = {"pad_top": 0.0, "pad_left": 0.0, "orig_height": 100, "orig_width": 50, "scale": 1.0}
    pd.DataFrame([{"filestem": s, **view} for s in ("a", "b")]).to_parquet(root / "ingest/manifest.parquet")
    truth, registered, qc = [], [], []
    for stem, shift in (("a", 1.0), ("b", 3.0)):
        for structure, y0 in (("lunate", 40.0), ("radius", 80.0)):
            for index in range(4):
                x, y = 10.0 + 5 * index, y0
                if structure == "radius" and index == 3:
                    y = 120.0  # beyond the 100-row view: unscored, and the radius counts as cut
                truth.append((stem, structure, index, x, y))
                registered.append((stem, structure, index, x + shift, y))
            qc.append((stem, structure, 0.95, 0.5, True, True))
    columns = ["filestem", "structure", "index", "x", "y"]
    pd.DataFrame(truth, columns=columns).to_parquet(root / "truth.parquet")
    pd.DataFrame(registered, columns=columns).to_parquet(root / "landmarks.parquet")
    qc_columns = ["filestem", "structure", "dice", "residual_px", "passed", "image_passed"]
    pd.DataFrame(qc, columns=qc_columns).to_parquet(root / "qc.parquet")
    return root


def test_errors_are_split_by_view_mask_source_and_cut(tails, tmp_path):
    rows = tails.landmark_errors(_project(tmp_path), edge_px=1.0)
    assert len(rows) == 16
    assert not rows[(rows["structure"] == "radius") & (rows["index"] == 3)]["in_view"].any()
    seen = rows[rows["in_view"]]
    assert len(seen) == 14
    assert np.allclose(seen.loc[seen["filestem"] == "a", "error_px"], 1.0)
    assert np.allclose(seen.loc[seen["filestem"] == "b", "error_px"], 3.0)
    assert (
        seen.loc[seen["structure"] == "radius", "cut"].all()
        and not seen.loc[seen["structure"] == "lunate", "cut"].any()
    )
    assert seen.loc[seen["filestem"] == "a", "seed"].all() and not seen.loc[seen["filestem"] == "b", "seed"].any()
    assert set(seen["group"]) == {"carpals", "ulna_radius"}
    figures = tails.figures(seen["error_px"])
    assert figures["n"] == 14 and figures["median_px"] == pytest.approx(2.0) and figures["max_px"] == pytest.approx(3.0)
