"""Stage ``contours``: per-bone masks -> ordered outline point clouds (working pixels).

Output ``paths.contours``: one ``shard-XXXX.parquet`` (CONTOURS schema, see
``denseseg.io.contours``) per mask shard, same name and items, so later stages can
pair a contour shard with its mask shard; and ``rejects.parquet`` (REJECTS) with
one row per bone that has no usable outline, the reason written
``"<structure>: <why>"`` (an image keeps its other bones; ``register`` decides
whether the image is excluded).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import Field

from denseseg.anatomy import ANATOMIES, AnatomyName
from denseseg.io.atomic import commit_dir, partial_dir, write_json_atomic
from denseseg.io.contours import contour_frame
from denseseg.io.ingested import read_working_frames
from denseseg.io.mask_store import read_mask_shard
from denseseg.io.tables import CONTOURS, REJECTS, write_table
from denseseg.shape.contours import border_flags, image_contours
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class ContoursParams(StageParams):
    anatomy: AnatomyName
    total_points: int = Field(gt=0, description="outline points per image, shared by perimeter")
    min_points_per_bone: int = Field(ge=3)
    min_pixels: int = Field(ge=1, description="smaller masks are degenerate")
    min_thickness_px: float = Field(ge=0, description="2*area/perimeter below this is a line")
    edge_tol_px: float = Field(
        ge=0,
        description="outline points this close to the radiograph's edge are the cut (predicted masks "
        "often stop a pixel or two short of it)",
    )


@dataclass(frozen=True)
class ContoursShard:
    """One mask shard's counts and its rejected bones as (filestem, reason)."""

    images: int
    points: int
    rejects: list[tuple[str, str]]


class ContoursStage(Stage[ContoursParams, ContoursShard]):
    name = "contours"
    Params = ContoursParams

    def prepare(self) -> None:
        self.structures = ANATOMIES[self.params.anatomy].structures
        self.mask_dir = self.path(self.config.paths["masks"])
        self.out_dir = self.path(self.config.paths["contours"])
        self._shards = sorted(self.mask_dir.glob("shard-*.parquet"))
        if not self._shards:
            raise StageError(f"{self.mask_dir}: no mask shards (shard-*.parquet); did the propagate stage run?")
        with stage_errors():
            self.frames = read_working_frames(self.path(self.config.paths["ingest"]) / "manifest.parquet")
        self.staging = partial_dir(self.out_dir)

    def shards(self):
        return self._shards

    def process(self, shard: Path):
        try:
            masks = read_mask_shard(shard, self.structures)
        except Exception as err:  # a broken shard is a one-line error, not a stack trace
            raise StageError(f"{shard}: cannot read mask shard ({type(err).__name__}: {err})") from None
        frames, rejects, points = [], [], 0
        for stem in sorted(masks):
            contours, problems = image_contours(
                masks[stem],
                self.structures,
                total_points=self.params.total_points,
                min_points=self.params.min_points_per_bone,
                min_pixels=self.params.min_pixels,
                min_thickness=self.params.min_thickness_px,
            )
            present = set(contours) | set(problems)
            for s in self.structures:
                if s in problems:
                    rejects.append((stem, f"{s}: {problems[s]}"))
                elif s not in present:
                    rejects.append((stem, f"{s}: no mask"))
            if stem not in self.frames:
                raise StageError(f"{shard}: image {stem} is not in the ingest manifest; masks and ingest disagree")
            # cut bones end at the exposed field's edge: inside any letterbox padding and collimator band
            view = self.frames[stem].view_box()
            borders = {s: border_flags(pts, view, self.params.edge_tol_px) for s, pts in contours.items()}
            frames.append(contour_frame(stem, contours, borders, self.structures))
            points += sum(len(v) for v in contours.values())
        table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=CONTOURS.names)
        write_table(table, self.staging / shard.name, CONTOURS)
        return ContoursShard(len(masks), points, rejects)

    def finish(self, results: list[ContoursShard]) -> StageReport:
        rejects = pd.DataFrame(
            [(stem, self.name, reason) for r in results for stem, reason in r.rejects], columns=REJECTS.names
        ).sort_values(["filestem", "reason"], kind="stable", ignore_index=True)
        write_table(rejects, self.staging / "rejects.parquet", REJECTS)
        images = sum(r.images for r in results)
        metrics = {
            "images": images,
            "points": sum(r.points for r in results),
            "bones_rejected": len(rejects),
            "images_with_rejected_bones": int(rejects["filestem"].nunique()),
        }
        write_json_atomic(self.staging / "summary.json", metrics)
        commit_dir(self.staging, self.out_dir)
        return StageReport(metrics=metrics, rejects=rejects)
