"""Stage ``release``: a versioned, checksummed dataset release with a datasheet.

The release holds only what passed QC, in the pipeline's own formats, and is
regenerable bit for bit: every table is written from sorted rows with fixed
Parquet settings and no timestamp appears anywhere, so the same inputs give the
same sha256 for every file. Layout under ``paths.release`` (see ``docs/release.md``):

- ``landmarks.parquet`` (LANDMARKS), ``splits.parquet`` (SPLITS),
  ``images.parquet`` (MANIFEST rows), ``masks/shard-XXXX.parquet`` (mask store):
  the images that passed QC;
- ``qc.parquet`` (QC): every image and bone, passed or not, with the reason;
- ``DATASHEET.md`` (``denseseg/release/templates/DATASHEET.md``): provenance, counts,
  QC thresholds, limitations, licence;
- ``release.json``: name, version, counts; ``SHA256SUMS``: sha256 of every other file.

Metrics (images, patients, files) go to ``paths.metrics``/release.json, the
version beside them in release-info.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from denseseg.anatomy import ANATOMIES
from denseseg.io.atomic import commit_dir, partial_dir, write_text_atomic
from denseseg.io.checksums import write_checksums
from denseseg.io.mask_store import write_item_subset
from denseseg.io.metrics import read_metrics
from denseseg.io.tables import LANDMARKS, MANIFEST, QC, SPLITS, read_table, write_table
from denseseg.release.contents import ReleaseParams, datasheet, qc_summary, release_counts, release_json
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class ReleaseStageParams(StageParams, ReleaseParams):
    """The release section validated into the library's ``ReleaseParams``."""


@dataclass(frozen=True)
class ReleaseBuild:
    """The staged release folder, its counts and the number of checksummed files."""

    staging: Path
    counts: dict
    files: int


class ReleaseStage(Stage[ReleaseStageParams, ReleaseBuild]):
    name = "release"
    Params = ReleaseStageParams

    def process(self, shard):
        paths = self.config.paths
        with stage_errors(errors=(FileNotFoundError,)):
            landmarks = read_table(self.path(paths["landmarks"]), LANDMARKS)
            qc = read_table(self.path(paths["qc"]), QC)
            splits = read_table(self.path(paths["splits"]), SPLITS)
            manifest = read_table(self.path(paths["ingest"]) / "manifest.parquet", MANIFEST)
        anatomy = ANATOMIES[self.params.anatomy]
        released = sorted(set(landmarks["filestem"]))
        missing = sorted(set(released) - set(splits["filestem"]))
        if missing:
            raise StageError(f"{paths['splits']}: {len(missing)} released image(s) have no split, e.g. {missing[0]}")
        out = partial_dir(self.path(paths["release"]))
        keep = set(released)
        write_table(landmarks, out / "landmarks.parquet", LANDMARKS)
        write_table(qc, out / "qc.parquet", QC)
        split_rows = splits[splits["filestem"].isin(keep)].sort_values("filestem", kind="stable", ignore_index=True)
        write_table(split_rows, out / "splits.parquet", SPLITS)
        images = manifest[manifest["filestem"].isin(keep)].sort_values("filestem", kind="stable", ignore_index=True)
        write_table(images, out / "images.parquet", MANIFEST)
        (out / "masks").mkdir(parents=True, exist_ok=True)
        for shard_path in sorted(self.path(paths["masks"]).glob("shard-*.parquet")):
            write_item_subset(shard_path, out / "masks" / shard_path.name, keep, anatomy.structures)

        qc_info = qc_summary(read_metrics(self.path(paths["metrics"]), "registration"))
        counts = release_counts(released, qc, split_rows, images, anatomy)
        synthetic = bool(paths.get("truth")) and self.path(paths["truth"]).exists()
        write_text_atomic(out / "DATASHEET.md", datasheet(self.params, counts, qc_info, synthetic))
        write_text_atomic(out / "release.json", release_json(self.params, counts, qc_info, synthetic))
        return ReleaseBuild(out, counts, len(write_checksums(out)))

    def finish(self, results: list[ReleaseBuild]) -> StageReport:
        (build,) = results
        commit_dir(build.staging, self.path(self.config.paths["release"]))
        metrics = {
            "images": build.counts["images"],
            "patients": build.counts["patients"],
            "files": build.files,
            "version": self.params.version,
        }
        self.write_metrics(metrics)  # the version (a string) goes to release-info.json
        return StageReport(metrics=metrics)
