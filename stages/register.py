"""Stage ``register``: contour point clouds -> corresponding landmarks, QC and (phantom) accuracy.

The reference image (the medoid under a shape distance, ``register.reference``)
defines the landmarks; a group-wise template (``register.template``) averaged
from a seeded sample of complete images replaces it, and is registered onto every
image bone by bone (``register.registration``; see ``denseseg.shape.registration``
and ``docs/registration.md``). Outputs:

- ``paths.landmarks`` (LANDMARKS): the landmarks of the images that passed QC
  (``register.qc``: every bone's landmark polygon agrees with its mask);
- ``paths.qc`` (QC): one row per image and structure, with the reason when not passed;
- ``paths.truth_landmarks`` (LANDMARKS): on the phantom, the true atlas point of every
  landmark of the passed images (only evaluation reads it);
- ``paths.metrics``/registration.json: QC counts, the reference and template, and on
  the phantom the landmark error (``denseseg.evaluation.correspondence.RegistrationAccuracy``;
  ``null`` without truth). ``landmarks_on_edge`` counts the passed images' landmarks
  without evidence; ``registration-info.json`` names the template's landmarks on the
  reference's cut (``template.landmarks_on_reference_cut``: they mark no anatomical
  point, and the accuracy leaves them unscored). Timings are logged, not written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from pydantic import Field

from denseseg.anatomy import ANATOMIES, AnatomyName
from denseseg.evaluation.correspondence import RegistrationAccuracy
from denseseg.evaluation.registration_truth import phantom_accuracy
from denseseg.io.atomic import json_ready
from denseseg.io.contours import contour_filestems, read_contour_shard
from denseseg.io.ingested import read_working_frames
from denseseg.io.mask_store import read_mask_shard
from denseseg.io.tables import LANDMARKS, QC, reasons_by_item, reject_frame, write_table
from denseseg.io.truth import read_working_truth
from denseseg.shape.landmark_table import index_ranges, sorted_rows, structure_rows
from denseseg.shape.quality import QCParams, image_qc, qc_figures, qc_rows, qc_table
from denseseg.shape.registration import (
    ReferenceParams,
    RegistrationParams,
    TemplateParams,
    evidence_mask,
    landmark_edge_flags,
    reference_from_shards,
    register_image,
    template_from_shards,
)
from stages.base import Stage, StageError, StageParams, StageReport, stage_errors


class RegisterParams(StageParams):
    anatomy: AnatomyName
    reference: ReferenceParams
    template: TemplateParams
    registration: RegistrationParams
    qc: QCParams
    inside_margin_px: float = Field(ge=0, description="accuracy 'inside': true point this far from the edges")


@dataclass(frozen=True)
class Registered:
    """One contour shard registered: landmark and true-point rows of the passed images, QC rows, rejects,
    the shard's accuracy scorer (None without truth), landmarks without evidence and the seconds it took."""

    landmarks: list
    truth_landmarks: list
    qc: list
    rejects: list[tuple[str, str]]
    accuracy: RegistrationAccuracy | None
    on_edge: int
    seconds: float


class RegisterStage(Stage[RegisterParams, Registered]):
    name = "register"
    Params = RegisterParams

    def prepare(self) -> None:
        self.anatomy = ANATOMIES[self.params.anatomy]
        self.structures = self.anatomy.structures
        self.contour_dir = self.path(self.config.paths["contours"])
        self.mask_dir = self.path(self.config.paths["masks"])
        self._shards = sorted(self.contour_dir.glob("shard-*.parquet"))
        if not self._shards:
            raise StageError(f"{self.contour_dir}: no contour shards; did the contours stage run?")
        self.upstream = reasons_by_item(self.contour_dir / "rejects.parquet")  # bones without an outline
        with stage_errors():
            self.frames = read_working_frames(self.path(self.config.paths["ingest"]) / "manifest.parquet")
            self.stems = contour_filestems(self._shards, self.frames)
        self.views = {stem: frame.view_box() for stem, frame in self.frames.items()}  # cut bones end at their edge
        forced = self.params.reference.filestem
        if forced is not None and not any(forced in part for part in self.stems.values()):
            raise StageError(f"register.reference.filestem: {forced!r} has no contours in {self.contour_dir}")
        read = partial(read_contour_shard, structures=self.structures)
        with stage_errors("register: ", (ValueError,)):
            reference, info = reference_from_shards(
                self.stems, read, self.anatomy.landmark_counts, self.views, self.params.reference, self.seed
            )
        if forced is not None:
            info["method"] = "given in params (register.reference.filestem)"
        self.reference_info = {"filestem": reference.filestem, **info}
        self.log.info("register: reference %s (%s)", reference.filestem, info["method"])
        # the template replaces the reference in every registration (its sample: a stream apart from the reference's)
        built = template_from_shards(
            reference, list(self.stems), read, self.views, self.params.registration, self.params.template, self.seed + 1
        )
        self.template, self.template_info = built.template, built.info
        # landmarks on the reference's cut (the image edge or a collimator band) mark no anatomical point
        flags = landmark_edge_flags(self.template)
        cut_landmarks = {s: index_ranges(np.flatnonzero(f)) for s, f in flags.items() if f.any()}  # words: info
        self.template_info = {**(self.template_info or {}), "landmarks_on_reference_cut": cut_landmarks}
        if built.filestems:
            self.log.info("register: group-wise template from %d images", built.info["images"])
        self.accuracy = self._accuracy(reference, built)

    def _accuracy(self, reference, built) -> RegistrationAccuracy | None:
        """The scorer against the phantom's truth (None without truth)."""
        truth = self.config.paths.get("truth")
        path = self.path(truth) / "contours.parquet" if truth else None
        accuracy = None
        if path is not None and path.exists():
            p = self.params
            accuracy = phantom_accuracy(path, reference, built, self.frames, self.views, self.structures,
                                        p.inside_margin_px)  # fmt: skip
        self.truth_path = path if accuracy is not None else None
        return accuracy

    def shards(self):
        return self._shards

    def process(self, shard: Path):
        started = time.perf_counter()
        outlines, borders = read_contour_shard(shard, self.structures)
        mask_path = self.mask_dir / shard.name
        if not mask_path.exists():
            raise StageError(f"{mask_path}: mask shard for {shard.name} is missing")
        masks = read_mask_shard(mask_path, self.structures, items=sorted(outlines))
        accuracy = self.accuracy.fresh() if self.accuracy is not None else None
        truth = read_working_truth(self.truth_path, sorted(outlines), self.frames) if accuracy is not None else {}
        landmarks, true_points, qc_parts, rejects, on_edge = [], [], [], [], 0
        for stem in sorted(outlines):
            view = self.views[stem]
            results, problems = register_image(
                self.template, outlines[stem], self.params.registration, borders[stem], view
            )
            earlier = self.upstream.get(stem, [])
            qc = image_qc(self.structures, results, masks[stem], outlines[stem], problems, earlier, self.params.qc)
            qc_parts.append(qc_rows(stem, qc))
            if not qc.passed:
                rejects.append((stem, "; ".join(qc.reasons)))
                continue
            for s, res in results.items():
                border = borders[stem].get(s)
                on_edge += int((~evidence_mask(res.landmarks, outlines[stem][s], border, view, 0.5)).sum())
                landmarks.append(structure_rows(stem, s, res.landmarks))
                if accuracy is not None and s in truth.get(stem, {}) and accuracy.scores(s):
                    points = accuracy.append(s, res.landmarks, truth[stem][s], view, bool(np.any(border)))
                    true_points.append(structure_rows(stem, s, points))
        return Registered(landmarks, true_points, qc_parts, rejects, accuracy, on_edge, time.perf_counter() - started)

    def finish(self, results: list[Registered]) -> StageReport:
        landmarks = sorted_rows([part for r in results for part in r.landmarks], self.structures)
        qc = qc_table([part for r in results for part in r.qc], self.structures)
        registered = set(qc["filestem"])
        rejects = [(stem, reason) for r in results for stem, reason in r.rejects]
        # images none of whose bones had an outline never reached a contour shard
        rejects += [(stem, "; ".join(sorted(self.upstream[stem]))) for stem in sorted(set(self.upstream) - registered)]
        rejected = reject_frame(rejects, self.name)
        write_table(landmarks, self.path(self.config.paths["landmarks"]), LANDMARKS)
        write_table(qc[QC.names], self.path(self.config.paths["qc"]), QC)
        truth_landmarks = sorted_rows([part for r in results for part in r.truth_landmarks], self.structures)
        truth_landmarks = truth_landmarks[truth_landmarks["filestem"].isin(set(landmarks["filestem"]))]
        write_table(truth_landmarks, self.path(self.config.paths["truth_landmarks"]), LANDMARKS)

        images_in = len(registered | set(self.upstream))
        images_passed = int(landmarks["filestem"].nunique())
        metrics: dict = {
            "images_in": images_in,
            "images_registered": len(registered),
            "images_passed": images_passed,
            "images_failed": images_in - images_passed,
            **qc_figures(qc),
            "landmarks_on_edge": sum(r.on_edge for r in results),
            "dice_threshold": self.params.qc.dice_threshold,
            "reference": self.reference_info,
            "template": self.template_info,
            "scored_against_truth": self.accuracy is not None,
        }
        seconds = sum(r.seconds for r in results) / max(len(registered), 1)
        self.log.info("register: %.2f s of shard time per image", seconds)  # the log, not the metrics: same bytes
        if self.accuracy is not None:
            total = self.accuracy.fresh()
            for r in results:
                total.extend(r.accuracy)
            metrics.update(total.aggregate(self.anatomy.groups))
        else:
            metrics.update(RegistrationAccuracy.unscored_figures())
        metrics = json_ready(metrics)  # missing figures are null in the UI and absent from the metrics file
        self.write_metrics(metrics, "registration")  # the reference's and template's descriptions: -info.json
        tables = {"qc_failures": qc[~qc["passed"]].reset_index(drop=True)}
        return StageReport(metrics=metrics, rejects=rejected, tables=tables)
