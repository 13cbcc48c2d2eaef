"""Stage ``split``: patient-level train / val / test from the ingest manifest.

All images of a patient land on one side, so no child is seen in training and
scored in testing. Patients are shuffled with the project seed (sorted first, so
the input order does not matter) and taken greedily until each part holds its
share of the images: ``test_fraction`` of all images is test, and
``val_fraction`` of the rest is carved out of train for tuning.
Output ``paths.splits`` (SPLITS), sorted by filestem; images and patients per
part in ``paths.metrics``/split.json.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import Field

from denseseg.io.tables import MANIFEST, SPLITS, read_table, write_table
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class SplitParams(StageParams):
    test_fraction: float = Field(0.4, ge=0, lt=1, description="share of images in test")
    val_fraction: float = Field(0.15, ge=0, lt=1, description="share of the non-test images moved to val")


def patient_split(manifest: pd.DataFrame, test_fraction: float, val_fraction: float, seed: int) -> pd.DataFrame:
    """(filestem, patient_id, split) with every patient on exactly one side."""
    counts = manifest.groupby("patient_id", sort=True).size()
    patients = counts.index.to_numpy()
    order = np.random.default_rng(seed).permutation(len(patients))
    total = int(counts.sum())
    n_test = test_fraction * total
    n_val = val_fraction * (total - n_test)
    side, taken_test, taken_val = {}, 0, 0
    for i in order:
        pid, n = patients[i], int(counts.iloc[i])
        if taken_test + n / 2 <= n_test:
            side[pid], taken_test = "test", taken_test + n
        elif taken_val + n / 2 <= n_val:
            side[pid], taken_val = "val", taken_val + n
        else:
            side[pid] = "train"
    out = manifest[["filestem", "patient_id"]].copy()
    out["split"] = out["patient_id"].map(side)
    return out.sort_values("filestem", kind="stable", ignore_index=True)


class SplitStage(Stage[SplitParams, pd.DataFrame]):  # the SPLITS table
    name = "split"
    Params = SplitParams

    def process(self, shard):
        path = self.path(self.config.paths["ingest"]) / "manifest.parquet"
        with stage_errors(errors=(FileNotFoundError,)):
            manifest = read_table(path, MANIFEST)
        if manifest.empty:
            raise StageError(f"{path}: the manifest has no image to split")
        return patient_split(manifest, self.params.test_fraction, self.params.val_fraction, self.seed)

    def finish(self, results: list[pd.DataFrame]) -> StageReport:
        (splits,) = results
        write_table(splits, self.path(self.config.paths["splits"]), SPLITS)
        metrics = {}
        for part in ("train", "val", "test"):
            rows = splits[splits["split"] == part]
            metrics[f"{part}_images"] = len(rows)
            metrics[f"{part}_patients"] = int(rows["patient_id"].nunique())
        self.write_metrics(metrics)
        return StageReport(metrics=metrics)
