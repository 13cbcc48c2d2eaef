"""Stage ``phantom``: write the wrist phantom (a synthetic GRAZPEDWRI-DX release) with its truth.

Outputs (paths from params.yaml): ``paths.phantom_release`` (dataset.csv +
images_part1..4/), ``paths.phantom_seeds`` (annotations.csv + masks) and
``paths.truth`` (contours.parquet, images.parquet). Shards are contiguous
chunks of image indices rendered into ``<dir>.partial`` staging folders;
``finish`` writes the tables and swaps the three folders in. With
``enabled: false`` (a real download at ``paths.release_root``, elsewhere) the
stage writes only a note into its own folders and never touches the user's data.
Metrics (counts of the release) go to ``paths.metrics``/phantom.json.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pydantic import Field

from denseseg.anatomy import WRIST
from denseseg.io.atomic import commit_dir, partial_dir
from denseseg.io.tables import TRUTH_IMAGES, read_table
from denseseg.phantom.metadata import PlanSettings, image_path, plan_release
from denseseg.phantom.release import merge_truth, read_truth_contours, render_shard, write_csv
from denseseg.phantom.scene import RenderSettings
from denseseg.phantom.seeds import choose_seed_images, write_annotation_index, write_seed_image
from stages.base import Stage, StageError, StageParams, StageReport

_PARTS = "_parts"


class PhantomParams(StageParams, PlanSettings, RenderSettings):
    """The phantom section: the plan's and the renderer's settings (validated there, once) and the stage's own."""

    enabled: bool  # false with a real download: the stage leaves the data alone
    n_seed_annotations: int = Field(ge=0)
    shard_size: int = Field(ge=1)


@dataclass(frozen=True)
class Rendered:
    """One shard rendered: the number of images written."""

    n_images: int


class PhantomStage(Stage[PhantomParams, Rendered]):
    name = "phantom"
    Params = PhantomParams

    _plan: pd.DataFrame | None = None

    def _settings(self) -> tuple[PlanSettings, RenderSettings]:
        fields = self.params.model_dump()
        return (
            PlanSettings(**{k: fields[k] for k in PlanSettings.model_fields}),
            RenderSettings(**{k: fields[k] for k in RenderSettings.model_fields}),
        )

    # Output keys of params.yaml ``paths`` -> the role of the folder.
    OUTPUTS = {"phantom_release": "release", "phantom_seeds": "seeds", "truth": "truth"}

    def _dirs(self) -> dict[str, Path]:
        paths = self.config.paths
        for key in self.OUTPUTS:
            if key not in paths:
                raise StageError(f"params.yaml [paths]: missing {key!r}, needed by the phantom stage")
        return {role: self.path(paths[key]) for key, role in self.OUTPUTS.items()}

    @staticmethod
    def _staging(dest: Path) -> Path:
        return dest.with_name(dest.name + ".partial")

    def plan(self) -> pd.DataFrame:
        if self._plan is None:
            self._plan = plan_release(self.seed, self._settings()[0])
        return self._plan

    # -- stage hooks -----------------------------------------------------------------------
    def prepare(self) -> None:
        """Fresh staging folders for the three outputs (a killed run's leftovers are dropped)."""
        dirs = self._dirs()
        if not self.params.enabled:
            paths = self.config.paths
            if self.path(paths["release_root"]).resolve() == dirs["release"].resolve():
                raise StageError(
                    "phantom.enabled is false but paths.release_root is the phantom's own output folder "
                    f"({paths['phantom_release']}); point paths.release_root at your GRAZPEDWRI-DX download"
                )
            self.log.info(
                "phantom disabled (phantom.enabled: false): the chain reads %s; the phantom's "
                "folders only get a placeholder note",
                paths["release_root"],
            )
        for dest in dirs.values():
            partial_dir(dest)
        if self.params.enabled:
            (self._staging(dirs["truth"]) / _PARTS).mkdir()

    def shards(self):
        """Chunks ``(start, stop)`` of image indices."""
        if not self.params.enabled:
            return []
        plan = self.plan()
        size = self.params.shard_size
        return [(start, min(start + size, len(plan))) for start in range(0, len(plan), size)]

    def process(self, shard):
        start, stop = shard
        dirs = self._dirs()
        rows = self.plan().iloc[start:stop]
        rendered = render_shard(
            rows, self.seed, self._settings()[1], self._staging(dirs["release"]), self._staging(dirs["truth"]) / _PARTS
        )
        return Rendered(rendered["n_images"])

    def finish(self, results: list[Rendered]) -> StageReport:
        dirs = self._dirs()
        if not self.params.enabled:
            # DVC expects the outputs to exist; a note says why they are empty.
            for dest in dirs.values():
                (self._staging(dest) / "PHANTOM_DISABLED.md").write_text(
                    "The wrist phantom is disabled (phantom.enabled: false in params.yaml);\n"
                    "the pipeline reads the release at paths.release_root instead.\n"
                )
                commit_dir(self._staging(dest), dest)
            metrics = {"enabled": False}
            self.write_metrics(metrics)
            return StageReport(metrics=metrics)
        plan = self.plan()
        release, seeds, truth = (self._staging(dirs[k]) for k in ("release", "seeds", "truth"))
        done = sum(r.n_images for r in results)
        if done != len(plan) or not release.is_dir():
            raise StageError(f"phantom: {done} of {len(plan)} images were rendered; rerun the stage")
        missing = [image_path(row) for _, row in plan.iterrows() if not (release / image_path(row)).exists()]
        if missing:
            raise StageError(f"phantom: {len(missing)} image(s) missing from the staging release, e.g. {missing[0]}")
        write_csv(plan, release)
        n_truth, n_points = merge_truth(truth / _PARTS, truth)
        shutil.rmtree(truth / _PARTS)

        images = read_table(truth / "images.parquet", TRUTH_IMAGES).set_index("filestem")
        rows = []
        chosen = choose_seed_images(plan, self.params.n_seed_annotations)
        for filestem in chosen:
            contours = read_truth_contours(truth / "contours.parquet", filestem)
            info = images.loc[filestem]
            rows += write_seed_image(
                seeds, filestem, contours, (int(info["height"]), int(info["width"])), WRIST.structures
            )
        write_annotation_index(seeds, rows)

        for role, staging in (("release", release), ("seeds", seeds), ("truth", truth)):
            commit_dir(staging, dirs[role])
        metrics = {
            "enabled": True,
            "n_images": int(len(plan)),
            "n_patients": int(plan["patient_id"].nunique()),
            "n_pa": int((plan["projection"] == 1).sum()),
            "n_lateral": int((plan["projection"] == 2).sum()),
            "n_other": int((plan["projection"] == 3).sum()),
            "n_right": int((plan["laterality"] == "R").sum()),
            "n_cast": int(plan["cast"].sum()),
            "n_metal": int(plan["metal"].sum()),
            "n_truth_images": int(n_truth),
            "n_truth_points": int(n_points),
            "n_seed_images": len(chosen),
            "n_seed_masks": len(rows),
        }
        self.write_metrics(metrics)
        self.log.info("phantom: %(n_images)d images of %(n_patients)d patients, %(n_seed_images)d seed images", metrics)
        return StageReport(metrics=metrics)
