"""The reference image: the one outline set whose landmarks every image receives.

Why a single reference: a landmark is defined once, on the reference's outline
(uniform by arc length from the canonical start, to the design's count per bone),
and every image receives it by registration, so landmark k of a bone means the same
anatomical point everywhere.

Choice (unbiased): the medoid of the candidate images under a shape distance, i.e.
the most typical image, not the first or a hand-picked one. The shape distance
between two images is the mean over bones of the symmetric mean closest-point
(chamfer) distance between their outlines, after each image is normalised by its
global centroid and RMS radius (position and size of the hand removed, the bones'
layout kept; no rotation since ingest normalises orientation). Candidates are the
images with every bone and the fewest bones cut by the image edge; with many
images, the medoid is taken among a seeded random sample of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from denseseg.shape.contours import resample_closed
from denseseg.shape.polyline import chamfer, nearest_vertex

T = TypeVar("T")


class ReferenceParams(BaseModel):
    """How the reference is chosen (``register.reference`` in ``params.yaml``).

    Args:
        filestem: force this image as the reference; None: the medoid.
        candidates: the medoid is taken among at most this many seeded images.
        points_per_bone: outline points per bone in the shape distance.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    filestem: str | None
    candidates: int = Field(gt=0)
    points_per_bone: int = Field(ge=3)


@dataclass(frozen=True)
class Reference:
    """The reference image (or a template in its place): its outlines and its landmarks per structure."""

    filestem: str
    outlines: Mapping[str, np.ndarray]
    landmarks: Mapping[str, np.ndarray]
    borders: Mapping[str, np.ndarray] | None = None  # edge flags of the outlines
    shape: Sequence[float] | None = None  # the reference image's view: (height, width) or view box


def make_reference(
    filestem: str,
    outlines: Mapping[str, np.ndarray],
    counts: Mapping[str, int],
    borders: Mapping[str, np.ndarray] | None = None,
    shape: Sequence[float] | None = None,
) -> Reference:
    """Landmarks: each outline resampled uniformly by arc length to its design count."""
    missing = [s for s in counts if s not in outlines]
    if missing:
        raise ValueError(f"reference {filestem} lacks outline(s) for {', '.join(missing)}")
    landmarks = {s: resample_closed(np.asarray(outlines[s], dtype=np.float64), int(n)) for s, n in counts.items()}
    kept = {s: np.asarray(outlines[s], dtype=np.float64) for s in counts}
    return Reference(filestem, kept, landmarks, None if borders is None else {s: borders[s] for s in counts}, shape)


def is_cut(borders: Mapping[str, np.ndarray] | None, structure: str) -> bool:
    """Whether the image edge cut ``structure`` (any of its outline points flagged)."""
    return borders is not None and structure in borders and bool(np.any(borders[structure]))


def _normalised(outlines: Mapping[str, np.ndarray], structures: Sequence[str], n: int) -> dict[str, np.ndarray]:
    allpts = np.vstack([outlines[s] for s in structures])
    centre = allpts.mean(0)
    radius = float(np.sqrt(((allpts - centre) ** 2).sum(1).mean())) or 1.0
    return {s: (resample_closed(np.asarray(outlines[s], float), n) - centre) / radius for s in structures}


def shape_distance_matrix(
    shapes: Sequence[Mapping[str, np.ndarray]], structures: Sequence[str], points_per_bone: int
) -> np.ndarray:
    """Pairwise shape distances (see the module docstring); symmetric, zero diagonal."""
    norm = [_normalised(s, structures, points_per_bone) for s in shapes]
    k = len(norm)
    dist = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1, k):
            dist[i, j] = dist[j, i] = float(np.mean([chamfer(norm[i][s], norm[j][s]) for s in structures]))
    return dist


def candidate_pool(stems: Sequence[str], params: ReferenceParams, seed: int) -> set[str]:
    """The images whose outlines compete for the reference: the forced one, or a seeded sample."""
    if params.filestem is not None:
        return {params.filestem}
    if len(stems) > params.candidates:
        rng = np.random.default_rng(seed)
        return set(rng.choice(stems, size=params.candidates, replace=False).tolist())
    return set(stems)


def choose_reference(
    candidates: Mapping[str, Mapping[str, np.ndarray]],
    structures: Sequence[str],
    params: ReferenceParams,
    seed: int,
    borders: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> tuple[str, dict]:
    """The medoid filestem among candidates that have every structure; returns (filestem, info).

    With ``borders`` (edge flags), only the candidates with the fewest bones cut by
    the image edge compete: landmarks on a cut are not anatomy, for any image.
    """
    complete = sorted(k for k, v in candidates.items() if all(s in v for s in structures))
    if not complete:
        raise ValueError("no image has an outline for every structure; cannot choose a reference")
    cuts = {k: sum(is_cut(borders.get(k), s) for s in structures) if borders else 0 for k in complete}
    fewest = min(cuts.values())
    complete = [k for k in complete if cuts[k] == fewest]
    pool = complete
    if len(pool) > params.candidates:
        rng = np.random.default_rng(seed)
        pool = sorted(rng.choice(pool, size=params.candidates, replace=False).tolist())
    dist = shape_distance_matrix([candidates[k] for k in pool], structures, params.points_per_bone)
    total = dist.sum(1)
    best = int(np.argmin(total))  # ties: first in sorted order
    info = {
        "method": "medoid of the mean per-bone chamfer distance after global centroid/RMS normalisation",
        "candidates": len(pool),
        "complete_images": len(complete),
        "bones_cut_by_edge": int(fewest),
        "mean_distance": float(total[best] / max(len(pool) - 1, 1)),
    }
    return pool[best], info


def reference_from_shards(
    shards: Mapping[T, Sequence[str]],
    read: Callable[[T], tuple[Mapping, Mapping]],
    counts: Mapping[str, int],
    views: Mapping[str, Sequence[float]],
    params: ReferenceParams,
    seed: int,
) -> tuple[Reference, dict]:
    """The reference chosen among sharded images, reading only the shards that hold a candidate.

    Args:
        shards: {shard: its filestems}.
        read: (outlines, edge flags) of a shard's images, {filestem: {structure: ...}} each.
        counts: landmarks per structure (the structures every candidate must have).
        views: {filestem: the image's view}.
        params: how the reference is chosen.
        seed: the candidates' sample (``candidate_pool``, ``choose_reference``).
    """
    pool = candidate_pool(sorted(s for stems in shards.values() for s in stems), params, seed)
    outlines, borders = {}, {}
    for shard, stems in shards.items():
        if pool.intersection(stems):
            shard_outlines, shard_borders = read(shard)
            outlines.update({k: v for k, v in shard_outlines.items() if k in pool})
            borders.update({k: v for k, v in shard_borders.items() if k in pool})
    stem, info = choose_reference(outlines, list(counts), params, seed, borders)
    return make_reference(stem, outlines[stem], counts, borders[stem], views[stem]), info


def landmark_edge_flags(reference: Reference) -> dict[str, np.ndarray]:
    """Per structure, True for the reference landmarks that sit on its image-edge cut (not anatomy).

    A landmark takes the edge flag of the nearest point of the reference's outline.
    """
    out = {}
    for s, lms in reference.landmarks.items():
        flags = None if reference.borders is None else reference.borders.get(s)
        if flags is None or not np.any(flags):
            out[s] = np.zeros(len(lms), dtype=bool)
            continue
        outline = np.asarray(reference.outlines[s], dtype=np.float64)
        out[s] = np.asarray(flags, dtype=bool)[nearest_vertex(lms, outline)]
    return out
