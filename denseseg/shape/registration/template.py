"""The group-wise template: the reference's landmarks averaged over the images they were registered onto.

Why: a single reference carries its own deviations (per-bone pose, size and shape,
its maturity) into every correspondence; averaging the corresponded landmark sets
cancels them. Landmark k of the template is landmark k of the reference, so the
landmark identities are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from denseseg.shape.contours import resample_closed
from denseseg.shape.polyline import nearest_vertex
from denseseg.shape.registration.bone import register_image
from denseseg.shape.registration.params import RegistrationParams
from denseseg.shape.registration.reference import Reference, landmark_edge_flags
from denseseg.shape.registration.repairs import evidence_mask
from denseseg.shape.umeyama import DegenerateShapeError, umeyama

# one image the template averages: (outlines, edge flags or None, view or None)
TemplateImage = tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray] | None, Sequence[float] | None]
T = TypeVar("T")


class TemplateParams(BaseModel):
    """How the group-wise template is built (``register.template`` in ``params.yaml``).

    Args:
        iterations: template updates (0: the reference itself is registered onto every image).
        images: the seeded sample of complete images (every structure) the template averages.
        min_images: a landmark is averaged only over at least this many images with evidence for it.
        procrustes_iterations: rounds of generalised Procrustes alignment per update.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    iterations: int = Field(ge=0)
    images: int = Field(ge=3)
    min_images: int = Field(ge=1)
    procrustes_iterations: int = Field(ge=1)


@dataclass(frozen=True)
class AveragedImage:
    """One image of the template's last update: the reference landmarks registered onto it."""

    index: int  # position in the ``images`` given to ``groupwise_template``
    landmarks: dict[str, np.ndarray]  # structure -> (L, 2)
    evidence: dict[str, np.ndarray]  # structure -> (L,) bool: the landmark carries evidence there


@dataclass(frozen=True)
class GroupwiseTemplate:
    """What ``groupwise_template`` computes."""

    template: Reference  # the reference itself when no update happened
    info: dict | None  # method, iterations, images, min_images (for the metrics); None when not asked for
    averaged: list[AveragedImage] = field(default_factory=list)  # the last update's registrations
    filestems: list[str] = field(default_factory=list)  # of the images given, when known (``template_from_shards``)


def sample_images(
    shards: Sequence[T], read: Callable[[T], Iterable[tuple[str, object]]], count: int, seed: int
) -> list[tuple[str, object]]:
    """The seeded sample of template images: shards read in a seeded order until ``count`` are found.

    ``read(shard)`` gives the shard's complete images as (filestem, anything) in
    filestem order. The cost is bounded on large data and the sample does not
    depend on the number of workers; the first ``count`` by filestem are kept.
    """
    order = np.random.default_rng(seed).permutation(len(shards))
    images: list[tuple[str, object]] = []
    for i in order:
        images.extend(read(shards[int(i)]))
        if len(images) >= count:
            break
    return sorted(images, key=lambda t: t[0])[:count]


def template_from_shards(
    reference: Reference,
    shards: Sequence[T],
    read: Callable[[T], tuple[Mapping, Mapping]],
    views: Mapping[str, Sequence[float]],
    registration: RegistrationParams,
    params: TemplateParams,
    seed: int,
) -> GroupwiseTemplate:
    """The group-wise template from a seeded sample (``sample_images``) of the shards' complete images.

    Complete: the image has every structure of the reference. With no iterations
    asked for, or fewer than ``min_images`` complete images, the reference itself.

    Args:
        reference: the reference the template starts from.
        shards: where the images are.
        read: (outlines, edge flags) of a shard's images, {filestem: {structure: ...}} each.
        views: {filestem: the image's view}.
        registration: how the reference is registered onto the images.
        params: the template's parameters.
        seed: the sample's.
    """
    if params.iterations <= 0:
        return GroupwiseTemplate(reference, None)
    structures = list(reference.landmarks)

    def complete_images(shard):
        outlines, borders = read(shard)
        return [
            (stem, (outlines[stem], borders[stem], views[stem]))
            for stem in sorted(outlines)
            if all(s in outlines[stem] for s in structures)
        ]

    images = sample_images(shards, complete_images, params.images, seed)
    if len(images) < params.min_images:
        info = {"method": f"none: fewer than {params.min_images} complete images", "images": len(images)}
        return GroupwiseTemplate(reference, info)
    built = groupwise_template(reference, [image for _, image in images], registration, params)
    return GroupwiseTemplate(built.template, built.info, built.averaged, [stem for stem, _ in images])


def groupwise_template(
    reference: Reference,
    images: Sequence[TemplateImage],
    registration: RegistrationParams,
    params: TemplateParams,
) -> GroupwiseTemplate:
    """A group-wise template: the reference's landmarks averaged over the registered images.

    Each iteration registers the current template onto every image (``images``:
    (outlines, edge flags, view) per image), maps the landmarks back to the
    template's frame by a whole-image generalised Procrustes analysis (similarity on
    all landmarks that carry evidence), and takes the per-landmark mean over the
    images where it carries evidence (at least ``min_images``; otherwise the landmark
    keeps its position). The mean is then put back into the reference's frame (a
    similarity fitted to the previous template). Landmarks on the reference's edge
    cut are never averaged and keep their edge flag. The template's outline is the
    closed polygon of its landmarks, resampled to the reference's outline density.

    The result's ``averaged`` holds the last iteration's registrations: what the
    template's landmarks are the mean of (on the phantom, their atlas points define
    the template landmarks' own, see ``denseseg.evaluation.correspondence.template_identity``).
    """
    min_images = params.min_images
    structures = list(reference.landmarks)
    ref_flags = landmark_edge_flags(reference)
    current = reference
    averaged: list[AveragedImage] = []
    used_last = 0
    for _ in range(max(int(params.iterations), 0)):
        sets: list[tuple[dict[str, np.ndarray], dict[str, np.ndarray]]] = []
        which: list[int] = []
        for index, (outlines, borders, shape) in enumerate(images):
            results, _problems = register_image(current, outlines, registration, borders, shape)
            if not results:
                continue
            lms, valid = {}, {}
            for s, res in results.items():
                v = ~ref_flags[s] & evidence_mask(
                    res.landmarks,
                    np.asarray(outlines[s], dtype=np.float64),
                    None if borders is None else borders.get(s),
                    shape,
                    registration.edge_margin_px,
                )
                lms[s], valid[s] = res.landmarks, v
            sets.append((lms, valid))
            which.append(index)
        used_last = len(sets)
        if len(sets) < min_images:
            break
        mean = {s: np.asarray(current.landmarks[s], dtype=np.float64).copy() for s in structures}
        for _gpa in range(params.procrustes_iterations):
            acc = {s: np.zeros_like(mean[s]) for s in structures}
            cnt = {s: np.zeros(len(mean[s])) for s in structures}
            for lms, valid in sets:
                src = np.vstack([lms[s][valid[s]] for s in lms])
                dst = np.vstack([mean[s][valid[s]] for s in lms])
                if len(src) < 3:
                    continue
                try:
                    sim = umeyama(src, dst)
                except DegenerateShapeError:
                    continue
                for s in lms:
                    acc[s][valid[s]] += sim.apply(lms[s])[valid[s]]
                    cnt[s][valid[s]] += 1
            new = {}
            for s in structures:
                ok = cnt[s] >= min_images
                m = mean[s].copy()
                m[ok] = acc[s][ok] / cnt[s][ok][:, None]
                new[s] = m
            mean = new
        # back to the reference's frame (gauge), on the averaged landmarks
        prev = {s: np.asarray(current.landmarks[s], dtype=np.float64) for s in structures}
        keep = {s: ~ref_flags[s] for s in structures}
        try:
            gauge = umeyama(
                np.vstack([mean[s][keep[s]] for s in structures]), np.vstack([prev[s][keep[s]] for s in structures])
            )
            mean = {s: np.where(keep[s][:, None], gauge.apply(mean[s]), prev[s]) for s in structures}
        except DegenerateShapeError:
            break
        outlines_t, borders_t = {}, {}
        for s in structures:
            n_out = max(len(reference.outlines[s]), len(mean[s]))
            dense = resample_closed(mean[s], n_out)
            outlines_t[s] = dense
            borders_t[s] = ref_flags[s][nearest_vertex(dense, mean[s])]
        current = Reference(reference.filestem, outlines_t, mean, borders_t, reference.shape)
        averaged = [AveragedImage(i, lms, valid) for i, (lms, valid) in zip(which, sets)]
    info = {
        "method": "group-wise template: reference landmarks averaged over registered images (Procrustes mean)",
        "iterations": int(params.iterations),
        "images": int(used_last),
        "min_images": int(min_images),
    }
    return GroupwiseTemplate(current, info, averaged)
