"""Stage ``subsample``: farthest-point landmark subsets per structure on the train template.

Reads the landmarks and the split, builds the template of the train split and
keeps round(fraction * n) landmarks per structure (at least ``minimum``) by
farthest-point sampling; writes ``paths.subsets`` (JSON index masks).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from denseseg.anatomy import ANATOMIES, AnatomyName
from denseseg.io.atomic import write_json_atomic
from denseseg.io.tables import LANDMARKS, SPLITS, read_table
from denseseg.shape.farthest_point import fps_subsets
from denseseg.shape.landmark_table import landmark_array
from denseseg.shape.template import build_template
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class SubsampleParams(StageParams):
    anatomy: AnatomyName = "wrist"
    fraction: float = Field(0.25, gt=0, le=1)
    minimum: int = Field(4, ge=1)
    fractions: dict[str, float] = {}  # per-structure overrides of ``fraction``
    procrustes: bool = False  # template after generalised Procrustes
    train_split: str = "train"


def train_landmarks(landmarks_path, splits_path, anatomy, train_split: str) -> tuple[list[str], np.ndarray]:
    """(train items, (n, N, 2) landmarks) with one-line errors for missing inputs."""
    with stage_errors():
        landmarks = read_table(landmarks_path, LANDMARKS)
        splits = read_table(splits_path, SPLITS)
    train = sorted(set(splits.loc[splits["split"] == train_split, "filestem"]) & set(landmarks["filestem"]))
    if not train:
        raise StageError(f"{splits_path}: no item of split {train_split!r} has landmarks in {landmarks_path}")
    with stage_errors(f"{landmarks_path}: ", (ValueError,)):
        return landmark_array(landmarks, anatomy, train)


@dataclass(frozen=True)
class Subsets:
    """The farthest-point subsets: landmark indices per structure and the flat mask of the picked ones."""

    per_structure: dict[str, np.ndarray]
    mask: np.ndarray


class SubsampleStage(Stage[SubsampleParams, Subsets]):
    name = "subsample"
    Params = SubsampleParams

    def prepare(self) -> None:
        self.anatomy = ANATOMIES[self.params.anatomy]
        paths = self.config.paths
        self.items, self.landmarks = train_landmarks(
            self.path(paths["landmarks"]), self.path(paths["splits"]), self.anatomy, self.params.train_split
        )

    def process(self, shard):
        with stage_errors("subsample: ", (ValueError, KeyError)):
            template = build_template(self.landmarks, self.anatomy, self.params.procrustes)
            return Subsets(
                *fps_subsets(
                    template.points, self.anatomy, self.params.fraction, self.params.minimum, self.params.fractions
                )
            )

    def finish(self, results: list[Subsets]) -> StageReport:
        (found,) = results
        per_structure, mask = found.per_structure, found.mask
        counts = {s: int(len(idx)) for s, idx in per_structure.items()}
        subsets = {
            "anatomy": self.anatomy.name,
            "fraction": self.params.fraction,
            "minimum": self.params.minimum,
            "fractions": dict(self.params.fractions),
            "rounding": "round half to even, at least minimum",
            "n_train": len(self.items),
            "total": int(mask.sum()),
            "counts": counts,
            "indices": {s: [int(i) for i in idx] for s, idx in per_structure.items()},
            "flat_indices": [int(i) for i in np.flatnonzero(mask)],
        }
        write_json_atomic(self.path(self.config.paths["subsets"]), subsets)
        metrics = {"selected": subsets["total"], "landmarks": self.anatomy.n_landmarks, "n_train": len(self.items)}
        write_json_atomic(self.path(self.config.paths["metrics"]) / "subsample.json", metrics)
        return StageReport(metrics=metrics)
