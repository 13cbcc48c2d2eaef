"""Stage ``ingest``: a GRAZPEDWRI-DX release (real or phantom) -> working-resolution left-hand images.

Bad rows and bad files become reject rows with the reason; the stage only
fails when nothing can be trusted (missing ``dataset.csv``, wrong columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from pydantic import Field

from denseseg.io.atomic import commit_dir, partial_dir, write_json_atomic
from denseseg.io.grazpedwri import MetadataError, index_images, inside, read_metadata, select, validate_metadata
from denseseg.io.png import ImageError
from denseseg.io.tables import FIELD_COLUMNS, MANIFEST, REJECTS, write_table
from denseseg.preprocessing.field import FieldParams
from denseseg.preprocessing.ingest import ingest_image
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class IngestParams(StageParams):
    height: int = Field(384, gt=16, description="working height in px")
    width: int = Field(224, gt=16, description="working width in px")
    projections: list[int] = [1]
    exclude_cast: bool = False
    exclude_metal: bool = False
    image_folders: list[str] = ["images_part*", "images"]
    shard_size: int = Field(64, gt=0)
    limit: int | None = Field(None, gt=0, description="ingest only the first N selected images")
    field: FieldParams  # collimator bands: where each image's exposed field ends


def _manifest_row(item, image_path: str) -> dict:
    record, frame = item.record, item.frame
    return {
        "filestem": record.filestem,
        "patient_id": record.patient_id,
        "study_number": record.study_number,
        "age": record.age,
        "sex": record.sex,
        "laterality": record.laterality,
        "flipped": frame.flipped,
        "projection": record.projection,
        "cast": record.flags["cast"],
        "metal": record.flags["metal"],
        "fracture_visible": record.flags["fracture_visible"],
        "osteopenia": record.flags["osteopenia"],
        "ao_classification": record.ao_classification,
        "device_manufacturer": record.device_manufacturer,
        "pixel_spacing_mm": record.pixel_spacing_mm,
        "orig_height": frame.orig_height,
        "orig_width": frame.orig_width,
        "height": frame.height,
        "width": frame.width,
        "scale": frame.scale,
        "pad_top": frame.pad_top,
        "pad_left": frame.pad_left,
        **dict(zip(FIELD_COLUMNS, frame.field)),
        "image_path": image_path,
    }


@dataclass(frozen=True)
class IngestShard:
    """One shard's manifest rows and its rejected images as (filestem, reason)."""

    rows: list[dict]
    rejects: list[tuple[str, str]]


class IngestStage(Stage[IngestParams, IngestShard]):
    name = "ingest"
    Params = IngestParams

    def prepare(self) -> None:
        self.root_dir = self.path(self.config.paths["release_root"])
        self.out_dir = self.path(self.config.paths["ingest"])
        csv = self.root_dir / "dataset.csv"
        with stage_errors(errors=(MetadataError,)):
            records, self.row_rejects = validate_metadata(read_metadata(csv))
        selected = select(records, tuple(self.params.projections), self.params.exclude_cast, self.params.exclude_metal)
        selected.sort(key=lambda r: r.filestem)
        if self.params.limit:
            selected = selected[: self.params.limit]
        self.counts = {
            "rows": len(records) + len(self.row_rejects),
            "rows_valid": len(records),
            "selected": len(selected),
        }
        self.images = index_images(self.root_dir, self.params.image_folders)
        self.staging = partial_dir(self.out_dir)
        (self.staging / "images").mkdir()
        size = self.params.shard_size
        self._shards = [selected[i : i + size] for i in range(0, len(selected), size)]
        self.log.info(
            "ingest: %d of %d rows selected, %d shards", len(selected), self.counts["rows"], len(self._shards)
        )

    def shards(self):
        return self._shards

    def process(self, shard) -> IngestShard:
        rows, rejects = [], []
        for record in shard:
            source = self.images.get(record.filestem)
            if source is None:
                rejects.append((record.filestem, f"image {record.filestem}.png not found under {self.root_dir}"))
                continue
            if not inside(self.root_dir, source):
                rejects.append((record.filestem, f"{source} resolves outside the release root"))
                continue
            try:
                item = ingest_image(record, source, self.params.height, self.params.width, self.params.field)
            except ImageError as err:
                rejects.append((record.filestem, str(err)))
                continue
            relative = f"images/{record.filestem}.png"
            # The staging folder is swapped in whole, so a plain write is already atomic here.
            (self.staging / relative).write_bytes(item.png)
            rows.append(_manifest_row(item, relative))
        return IngestShard(rows, rejects)

    def finish(self, results: list[IngestShard]) -> StageReport:
        rows = [row for r in results for row in r.rows]
        rejects = list(self.row_rejects) + [reject for r in results for reject in r.rejects]
        manifest = pd.DataFrame(rows, columns=MANIFEST.names).sort_values("filestem", kind="stable")
        reject_frame = pd.DataFrame(
            [(stem, self.name, reason) for stem, reason in rejects], columns=REJECTS.names
        ).sort_values(["filestem", "reason"], kind="stable")
        write_table(manifest, self.staging / "manifest.parquet", MANIFEST)
        write_table(reject_frame, self.staging / "rejects.parquet", REJECTS)
        if manifest.empty:
            raise StageError(f"ingest: no usable image in {self.root_dir} ({len(rejects)} rejected)")
        commit_dir(self.staging, self.out_dir)
        metrics = {
            **self.counts,
            "ingested": len(manifest),
            "rejected": len(reject_frame),
            "flipped": int(manifest["flipped"].sum()),
        }
        write_json_atomic(self.path(self.config.paths["metrics"]) / "ingest.json", metrics)
        return StageReport(metrics=metrics, rejects=reject_frame)
