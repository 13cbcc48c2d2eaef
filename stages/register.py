"""Stage ``register``: contour point clouds -> corresponding landmarks, QC and (phantom) accuracy.

A reference image is chosen once (``prepare``: the medoid under a shape distance,
see ``denseseg.shape.registration``); it defines the landmarks (uniform by arc
length on its outline). With ``template_iterations`` > 0 it is then replaced by a
group-wise template (``groupwise_template``: the reference's landmarks registered
onto a seeded sample of ``template_images`` complete images and averaged after
Procrustes alignment, so the reference's own deviations do not enter every
correspondence); landmark k of the template is landmark k of the reference. The
template (or the reference) is registered onto every image, bone by bone (with
``inverse_weight`` > 0, landmarks are partly moved towards a reverse fit's positions,
see ``denseseg.shape.registration``). Outputs:

- ``paths.landmarks`` (LANDMARKS): the landmarks of the images that passed QC;
- ``paths.qc`` (QC): one row per image and structure with Dice, residual, pass
  flags and the reason when not passed; an image passes when every bone passes
  (and, with ``require_all_bones``, when it has every bone);
- ``paths.metrics``/registration.json: QC counts, the reference and, when the
  phantom's truth exists, the landmark error against the true atlas points
  (``median_px``, ``mean_px``, ``p95_px`` over the passed images, per group;
  ``null`` without truth). The true point of a landmark is its atlas point: with a
  template, the template landmark's own (the mean atlas point of the registered
  reference landmarks it averages, ``template_identity``); ``reference_identity``
  scores the same landmarks at the reference's atlas points, which adds the
  template's shift from the reference to every image. Only landmarks with anatomy
  at both ends are scored (see ``denseseg.evaluation.correspondence``);
  ``landmarks_unscored`` counts the others. Two subsets of the same landmarks qualify the headline (which stays
  over all scored landmarks): ``*_px_inside`` (true point at least
  ``inside_margin_px`` from the edges of both images: away from the cuts, where
  the image shows the anatomy around the point) and ``*_px_uncut`` (bones whole in
  both the reference and the image). ``landmarks_on_edge`` counts the passed
  images' landmarks that carry no evidence (outside the image, or snapped onto the
  artificial edge segment of a cut outline). ``images_in`` counts the images that reached the contours stage.
  Timings are logged, not written (``benchmarks/registration.py`` gives the one-core figure).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from pydantic import Field

from denseseg.anatomy import ANATOMIES
from denseseg.evaluation.correspondence import (
    contour_parameter,
    inside_image,
    scored_errors,
    summarise,
    summarise_by_group,
    template_identity,
    true_positions,
)
from denseseg.io.atomic import json_ready, write_json_atomic
from denseseg.io.mask_store import read_mask_shard
from denseseg.io.tables import (
    LANDMARKS,
    MANIFEST,
    QC,
    REJECTS,
    TRUTH_CONTOURS,
    read_table,
    write_table,
)
from denseseg.preprocessing.working_frame import WorkingFrame
from denseseg.shape.quality import bone_qc
from denseseg.shape.registration import (
    RegistrationParams,
    choose_reference,
    evidence_mask,
    groupwise_template,
    make_reference,
    register_image,
)
from stages.base import Stage, StageError, StageParams, StageReport
from stages.contours import read_contour_shard


class RegisterParams(StageParams):
    anatomy: str = "wrist"
    reference: str | None = Field(None, description="force this filestem as reference; null: the medoid")
    reference_candidates: int = Field(64, gt=0, description="medoid among at most this many seeded images")
    global_prealign: bool = True
    prealign: str = Field("affine", pattern="^(affine|icp|cpd|none)$")
    beta: float = Field(3.0, gt=0)
    lam: float = Field(8.0, gt=0)
    w: float = Field(0.0, ge=0, lt=1)
    w_cut: float = Field(0.1, ge=0, lt=1)
    edge_margin_px: float = Field(1.0, ge=0)
    max_iter: int = Field(60, gt=0)
    tol: float = Field(1e-5, gt=0)
    max_points: int = Field(80, ge=8)
    max_fixed_points: int | None = Field(None, ge=8, description="image outline points in the fit (null: max_points)")
    template_iterations: int = Field(1, ge=0, description="group-wise template updates (0: the reference itself)")
    template_images: int = Field(64, ge=3, description="seeded sample of complete images the template averages")
    inside_margin_px: float = Field(10.0, ge=0, description="accuracy 'inside': true point this far from the edge")
    low_rank: int | None = Field(None, gt=0)
    inverse_weight: float = Field(0.0, ge=0, le=1, description="weight of the reverse fit's position (0: off)")
    dice_threshold: float = Field(0.8, ge=0, le=1)
    max_residual_px: float | None = Field(None, gt=0)
    require_all_bones: bool = True


def _truth_by_image(path: Path, stems: list[str]) -> dict[str, dict[str, np.ndarray]]:
    df = read_table(path, TRUTH_CONTOURS, filters=[("filestem", "in", stems)])
    df = df.sort_values(["filestem", "structure", "point"], kind="stable")
    out: dict[str, dict[str, np.ndarray]] = {}
    for (stem, s), g in df.groupby(["filestem", "structure"], sort=False):
        out.setdefault(stem, {})[s] = g[["x", "y"]].to_numpy(np.float64)
    return out


class RegisterStage(Stage[RegisterParams]):
    name = "register"
    Params = RegisterParams

    def prepare(self) -> None:
        if self.params.anatomy not in ANATOMIES:
            raise StageError(f"register.anatomy: unknown anatomy {self.params.anatomy!r}")
        self.anatomy = ANATOMIES[self.params.anatomy]
        self.structures = self.anatomy.structures
        self.contour_dir = self.path(self.config.paths["contours"])
        self.mask_dir = self.path(self.config.paths["masks"])
        self._shards = sorted(self.contour_dir.glob("shard-*.parquet"))
        if not self._shards:
            raise StageError(f"{self.contour_dir}: no contour shards; did the contours stage run?")
        p = self.params
        self.reg_params = RegistrationParams(
            global_prealign=p.global_prealign,
            prealign=p.prealign,
            beta=p.beta,
            lam=p.lam,
            w=p.w,
            w_cut=p.w_cut,
            edge_margin_px=p.edge_margin_px,
            max_iter=p.max_iter,
            tol=p.tol,
            max_points=p.max_points,
            max_fixed_points=p.max_fixed_points,
            low_rank=p.low_rank,
            inverse_weight=p.inverse_weight,
        )
        # upstream reasons per image (bones without an outline)
        self.upstream: dict[str, list[str]] = {}
        rejects_path = self.contour_dir / "rejects.parquet"
        if rejects_path.exists():
            for row in read_table(rejects_path, REJECTS).itertuples():
                self.upstream.setdefault(row.filestem, []).append(row.reason)
        manifest = self.path(self.config.paths["ingest"]) / "manifest.parquet"
        if not manifest.exists():
            raise StageError(f"{manifest}: missing; the image frames (letterbox padding) come from ingest")
        self.frames: dict[str, WorkingFrame] = {
            row["filestem"]: WorkingFrame.from_row(row) for row in read_table(manifest, MANIFEST).to_dict("records")
        }
        self._views: dict[str, tuple] = {}
        self._choose_reference()
        self._build_template(stems_by_shard=self._stems_by_shard)
        self._prepare_truth()

    def _choose_reference(self) -> None:
        stems_by_shard = {
            shard: sorted(set(pq.read_table(shard, columns=["filestem"]).column(0).to_pylist()))
            for shard in self._shards
        }
        self._stems_by_shard = stems_by_shard
        all_stems = sorted(s for stems in stems_by_shard.values() for s in stems)
        if not all_stems:
            raise StageError(f"{self.contour_dir}: contour shards hold no image")
        forced = self.params.reference
        if forced is not None and forced not in all_stems:
            raise StageError(f"register.reference: {forced!r} has no contours in {self.contour_dir}")
        if forced is not None:
            pool = {forced}
        elif len(all_stems) > self.params.reference_candidates:
            rng = np.random.default_rng(self.seed)
            pool = set(rng.choice(all_stems, size=self.params.reference_candidates, replace=False).tolist())
        else:
            pool = set(all_stems)
        candidates, borders = {}, {}
        for shard, stems in stems_by_shard.items():
            if pool.intersection(stems):
                shard_contours, shard_borders = read_contour_shard(shard, self.structures, with_border=True)
                candidates.update({k: v for k, v in shard_contours.items() if k in pool})
                borders.update({k: v for k, v in shard_borders.items() if k in pool})
        try:
            stem, info = choose_reference(
                candidates, self.structures, self.params.reference_candidates, self.seed, borders
            )
        except ValueError as err:
            raise StageError(f"register: {err}") from None
        if forced is not None:
            info["method"] = "given in params (register.reference)"
        self.reference = make_reference(
            stem, candidates[stem], self.anatomy.landmark_counts, borders[stem], self._view(stem)
        )
        self.reference_info = {"filestem": stem, **info}
        self.reference_landmarks = self.reference.landmarks  # landmark identities (scoring), never the template's
        self._ref_cut = {k: bool(np.any(borders[stem].get(k, False))) for k in self.structures}
        self.log.info("register: reference %s (%s)", stem, info["method"])

    def _build_template(self, stems_by_shard: dict) -> None:
        """Replace the reference by a group-wise template (``groupwise_template``), when asked.

        The images it averages: complete images (every structure), read shard by shard in
        a seeded order until ``template_images`` are found, so the cost is bounded on
        large data and the result does not depend on the number of workers.
        """
        self.template_info = None
        self._template_sets: list = []
        if self.params.template_iterations <= 0:
            return
        rng = np.random.default_rng(self.seed + 1)
        shards = list(stems_by_shard)
        order = rng.permutation(len(shards))
        images = []
        for i in order:
            shard = shards[int(i)]
            contours, borders = read_contour_shard(shard, self.structures, with_border=True)
            shapes = _shard_shapes(self.mask_dir / shard.name)
            for stem in sorted(contours):
                if stem in shapes and all(s in contours[stem] for s in self.structures):
                    images.append((stem, contours[stem], borders[stem], self._view(stem, shapes[stem])))
            if len(images) >= self.params.template_images:
                break
        images = sorted(images, key=lambda t: t[0])[: self.params.template_images]
        if len(images) < 3:
            self.template_info = {"method": "none: fewer than 3 complete images", "images": len(images)}
            return
        averaged: list = []
        template, info = groupwise_template(
            self.reference,
            [(c, b, sh) for _, c, b, sh in images],
            self.reg_params,
            iterations=self.params.template_iterations,
            collect=averaged,
        )
        self._template_sets = [(images[i][0], lms, valid) for i, lms, valid in averaged]
        self.reference = template
        self.template_info = info
        self.log.info(
            "register: group-wise template from %d images, %d iteration(s)", info["images"], info["iterations"]
        )

    def _view(self, stem: str, shape: tuple[int, int] | None = None):
        """The part of an image that shows the radiograph (``WorkingFrame.view_box``).

        Cut bones end there; outside it there is no evidence. Without a manifest row,
        the whole frame of ``shape`` (or of the image's mask rows).
        """
        if stem not in self._views:
            if stem in self.frames:
                self._views[stem] = self.frames[stem].view_box()
            else:
                self._views[stem] = shape if shape is not None else self._image_shape(stem)
        return self._views[stem]

    def _image_shape(self, stem: str) -> tuple[int, int] | None:
        """(height, width) of an image, from its mask shard's rows."""
        for shard in sorted(self.mask_dir.glob("shard-*.parquet")):
            t = pq.read_table(shard, columns=["item", "height", "width"], filters=[("item", "==", stem)])
            if t.num_rows:
                return int(t["height"][0].as_py()), int(t["width"][0].as_py())
        return None

    def _prepare_truth(self) -> None:
        truth = (
            self.path(self.config.paths.get("truth", "")) / "contours.parquet"
            if self.config.paths.get("truth")
            else None
        )
        self.truth_path = truth if truth is not None and truth.exists() else None
        self.reference_truth = None
        self.identity: dict[str, np.ndarray] = {}
        self.reference_params: dict[str, np.ndarray] = {}
        if self.truth_path is None:
            return
        ref = self.reference.filestem
        truth = _truth_by_image(self.truth_path, [ref]).get(ref)
        if truth is None or ref not in self.frames:
            self.log.warning("register: no truth for the reference %s; accuracy is not scored", ref)
            self.truth_path = None
            return
        self.reference_truth = {s: self.frames[ref].to_working(v) for s, v in truth.items()}
        # the reference landmarks' atlas points, once (not per scored image)
        self.reference_params = {
            s: contour_parameter(self.reference_landmarks[s], t)
            for s, t in self.reference_truth.items()
            if s in self.reference_landmarks
        }
        self.identity = self._landmark_identity()

    def _landmark_identity(self) -> dict[str, np.ndarray]:
        """Atlas points (contour parameters) of the landmarks in use: the template's when there is one.

        See ``denseseg.evaluation.correspondence.template_identity``; without a
        template (or without the truth of its images) the reference's own.
        """
        stems = sorted({stem for stem, _, _ in self._template_sets if stem in self.frames})
        truth = _truth_by_image(self.truth_path, stems) if stems else {}
        identity = {}
        for s, ref_truth in self.reference_truth.items():
            if s not in self.reference_landmarks:
                continue
            registered = [
                (lms[s], valid[s], self.frames[stem].to_working(truth[stem][s]))
                for stem, lms, valid in self._template_sets
                if s in lms and s in truth.get(stem, {})
            ]
            identity[s] = template_identity(self.reference_landmarks[s], ref_truth, registered)
        return identity

    def shards(self):
        return self._shards

    def process(self, shard: Path):
        started = time.perf_counter()
        contours, borders = read_contour_shard(shard, self.structures, with_border=True)
        mask_path = self.mask_dir / shard.name
        if not mask_path.exists():
            raise StageError(f"{mask_path}: mask shard for {shard.name} is missing")
        masks = read_mask_shard(mask_path, self.structures, items=sorted(contours))
        truth = _truth_by_image(self.truth_path, sorted(contours)) if self.truth_path is not None else {}
        lm_parts, truth_parts, qc_rows, rejects = [], [], [], []
        errors: dict[str, list[np.ndarray]] = {s: [] for s in self.structures}
        unscored = 0
        inside_err: list[np.ndarray] = []
        on_edge = 0
        uncut_err: list[np.ndarray] = []
        reference_err: list[np.ndarray] = []
        for stem in sorted(contours):
            view = self._view(stem, masks[stem].shape[1:])  # the radiograph inside any letterbox padding
            results, problems = register_image(self.reference, contours[stem], self.reg_params, borders[stem], view)
            upstream = {r.split(":", 1)[0]: r.split(":", 1)[1].strip() for r in self.upstream.get(stem, [])}
            image_reasons, rows = [], []
            for s in self.structures:
                if s in results:
                    res = results[s]
                    q = bone_qc(
                        res.landmarks,
                        masks[stem][self.structures.index(s)],
                        res.residual_px,
                        self.params.dice_threshold,
                        self.params.max_residual_px,
                    )
                    rows.append([stem, s, q.dice, q.residual_px, q.passed, q.reason])
                    if not q.passed:
                        image_reasons.append(f"{s}: {q.reason}")
                else:
                    why = upstream.get(s) or problems.get(s, "no outline")
                    rows.append([stem, s, np.nan, np.nan, False, why])
                    if self.params.require_all_bones or s in contours[stem]:
                        image_reasons.append(f"{s}: {why}")
            passed = not image_reasons
            for row in rows:
                qc_rows.append(row + [passed])
            if not passed:
                rejects.append((stem, "; ".join(image_reasons)))
                continue
            for s, res in results.items():
                on_edge += int(
                    (~evidence_mask(res.landmarks, contours[stem][s], borders[stem].get(s), view, 0.5)).sum()
                )
                lm_parts.append(_landmark_frame(stem, s, res.landmarks))
                if (
                    self.reference_truth is not None
                    and stem in truth
                    and stem in self.frames
                    and s in truth[stem]
                    and s in self.reference_truth
                ):
                    target = self.frames[stem].to_working(truth[stem][s])
                    ref_lm = self.reference_landmarks[s]
                    ref_shape, shape = self._view(self.reference.filestem), view
                    identity = self.identity.get(s)
                    err, left_out = scored_errors(
                        ref_lm, self.reference_truth[s], res.landmarks, target, ref_shape, shape, identity=identity
                    )
                    errors[s].append(err)
                    unscored += left_out
                    reference_err.append(
                        scored_errors(
                            ref_lm,
                            self.reference_truth[s],
                            res.landmarks,
                            target,
                            ref_shape,
                            shape,
                            identity=self.reference_params[s],
                        )[0]
                    )
                    # the same landmarks, flagged: away from both images' edges; bone whole in both images
                    truth_pts = true_positions(ref_lm, self.reference_truth[s], target, identity)
                    truth_parts.append(_landmark_frame(stem, s, truth_pts))
                    keep = inside_image(ref_lm, ref_shape) & inside_image(truth_pts, shape)
                    margin = self.params.inside_margin_px
                    inner = inside_image(ref_lm, ref_shape, margin) & inside_image(truth_pts, shape, margin)
                    inside_err.append(err[inner[keep]])
                    if not (self._ref_cut[s] or bool(np.any(borders[stem].get(s, False)))):
                        uncut_err.append(err)
        return {
            "landmarks": pd.concat(lm_parts, ignore_index=True) if lm_parts else None,
            "truth_landmarks": pd.concat(truth_parts, ignore_index=True) if truth_parts else None,
            "qc": pd.DataFrame(
                qc_rows, columns=["filestem", "structure", "dice", "residual_px", "passed", "reason", "image_passed"]
            ),
            "rejects": rejects,
            "errors": errors,
            "inside_errors": inside_err,
            "on_edge": on_edge,
            "uncut_errors": uncut_err,
            "reference_errors": reference_err,
            "unscored": unscored,
            "images": len(contours),
            "seconds": time.perf_counter() - started,
        }

    def finish(self, results) -> StageReport:
        order = {s: i for i, s in enumerate(self.structures)}

        def landmark_table(key: str) -> pd.DataFrame:
            parts = [r[key] for r in results if r[key] is not None]
            table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=LANDMARKS.names)
            return table.sort_values(
                ["filestem", "structure", "index"],
                key=lambda c: c.map(order) if c.name == "structure" else c,
                kind="stable",
                ignore_index=True,
            )

        landmarks = landmark_table("landmarks")
        qc = pd.concat([r["qc"] for r in results], ignore_index=True)
        qc = qc.sort_values(
            ["filestem", "structure"],
            key=lambda c: c.map(order) if c.name == "structure" else c,
            kind="stable",
            ignore_index=True,
        )
        registered = set(qc["filestem"])
        rejects = [(stem, reason) for r in results for stem, reason in r["rejects"]]
        # images none of whose bones had an outline never reached a contour shard
        for stem in sorted(set(self.upstream) - registered):
            rejects.append((stem, "; ".join(sorted(self.upstream[stem]))))
        reject_frame = pd.DataFrame([(s, self.name, why) for s, why in rejects], columns=REJECTS.names)
        reject_frame = reject_frame.sort_values(["filestem"], kind="stable", ignore_index=True)

        write_table(landmarks, self.path(self.config.paths["landmarks"]), LANDMARKS)
        write_table(qc[QC.names], self.path(self.config.paths["qc"]), QC)
        # the true atlas position of every template landmark in the passed images (empty without truth);
        # only evaluation reads it
        truth_landmarks = landmark_table("truth_landmarks")
        truth_landmarks = truth_landmarks[truth_landmarks["filestem"].isin(set(landmarks["filestem"]))]
        write_table(truth_landmarks, self.path(self.config.paths["truth_landmarks"]), LANDMARKS)

        images_in = len(registered | set(self.upstream))
        images_passed = int(landmarks["filestem"].nunique())
        scored = self.reference_truth is not None
        metrics: dict = {
            "images_in": images_in,
            "images_registered": len(registered),
            "images_passed": images_passed,
            "images_failed": images_in - images_passed,
            "bones_failed_qc": int((~qc["passed"]).sum()),
            "landmarks_on_edge": sum(r["on_edge"] for r in results),
            "dice_threshold": self.params.dice_threshold,
            "dice_median": float(np.nanmedian(qc["dice"])) if qc["dice"].notna().any() else float("nan"),
            "residual_median_px": (
                float(np.nanmedian(qc["residual_px"])) if qc["residual_px"].notna().any() else float("nan")
            ),
            "reference": self.reference_info,
            "template": self.template_info,
            "scored_against_truth": scored,
        }
        # wall time goes to the log, not the metrics file (same params, same bytes)
        self.log.info(
            "register: %.2f s of shard time per image", sum(r["seconds"] for r in results) / max(len(registered), 1)
        )
        if scored:
            errors = {s: [e for r in results for e in r["errors"][s]] for s in self.structures}
            summary = summarise_by_group(errors, self.anatomy.groups)
            metrics.update({k: summary[k] for k in ("median_px", "mean_px", "p95_px", "max_px")})
            metrics["landmarks_scored"] = summary["n"]
            metrics["landmarks_unscored"] = sum(r["unscored"] for r in results)  # cut by the image edge
            metrics["groups"] = summary["groups"]
            for name, key in (("inside", "inside_errors"), ("uncut", "uncut_errors")):
                part = summarise(np.concatenate([e for r in results for e in r[key]] or [np.zeros(0)]))
                metrics.update({f"{k}_{name}": part[k] for k in ("median_px", "mean_px", "p95_px")})
                metrics[f"landmarks_{name}"] = part["n"]
            metrics["inside_margin_px"] = self.params.inside_margin_px
            metrics["identity"] = (
                "template: mean atlas point of the registered reference landmarks it averages"
                if self._template_sets
                else "reference: the reference landmarks' atlas points"
            )
            part = summarise(np.concatenate([e for r in results for e in r["reference_errors"]] or [np.zeros(0)]))
            metrics["reference_identity"] = {k: part[k] for k in ("median_px", "mean_px", "p95_px")}
        else:
            metrics.update({"median_px": None, "mean_px": None, "p95_px": None, "max_px": None, "groups": None})
            for name in ("inside", "uncut"):
                metrics.update({f"{k}_{name}": None for k in ("median_px", "mean_px", "p95_px")})
            metrics.update({"identity": None, "reference_identity": None})
        metrics = json_ready(metrics)  # missing figures are null in the file and the UI alike
        write_json_atomic(self.path(self.config.paths["metrics"]) / "registration.json", metrics)
        tables = {"qc_failures": qc[~qc["passed"]].reset_index(drop=True)}
        return StageReport(metrics=metrics, rejects=reject_frame, tables=tables)


def _landmark_frame(stem: str, structure: str, points: np.ndarray) -> pd.DataFrame:
    """Rows of the LANDMARKS schema for one image and structure."""
    return pd.DataFrame(
        {
            "filestem": stem,
            "structure": structure,
            "index": np.arange(len(points), dtype=np.int16),
            "x": points[:, 0].astype(np.float32),
            "y": points[:, 1].astype(np.float32),
        }
    )


def _shard_shapes(mask_shard: Path) -> dict[str, tuple[int, int]]:
    """{item: (height, width)} from a mask shard's rows."""
    if not mask_shard.exists():
        return {}
    t = pq.read_table(mask_shard, columns=["item", "height", "width"]).to_pandas()
    t = t.drop_duplicates("item")
    return {str(r.item): (int(r.height), int(r.width)) for r in t.itertuples()}
