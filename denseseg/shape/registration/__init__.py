"""Corresponding landmarks: one reference's outlines registered onto every image, bone by bone.

Modules: ``params`` (the per-bone fit's parameters), ``reference`` (the reference
image and its choice: the medoid under a shape distance), ``bone`` (pre-alignment,
non-rigid CPD, snapping, inverse consistency, per bone and per image), ``repairs``
(landmarks without evidence, coincident landmarks) and ``template`` (the
group-wise template that replaces the reference). The measured figures and the
variants tried and dropped are in ``docs/registration.md``.

Limits: on a bone cut by the image edge (radius and ulna always, metacarpals
often) the position along the shaft is observed only at the visible end; the
bone's own length scale is not observed at all, so landmarks along a straight
shaft keep the reference's (template's) spacing relative to the image pose.
"""

from denseseg.shape.registration.bone import BoneResult, global_pose, prealign, register_bone, register_image
from denseseg.shape.registration.params import RegistrationParams
from denseseg.shape.registration.reference import (
    Reference,
    ReferenceParams,
    candidate_pool,
    choose_reference,
    is_cut,
    landmark_edge_flags,
    make_reference,
    reference_from_shards,
    shape_distance_matrix,
)
from denseseg.shape.registration.repairs import evidence_mask, separate_coincident, spread_off_view
from denseseg.shape.registration.template import (
    AveragedImage,
    GroupwiseTemplate,
    TemplateParams,
    groupwise_template,
    sample_images,
    template_from_shards,
)

__all__ = [
    "AveragedImage",
    "BoneResult",
    "GroupwiseTemplate",
    "Reference",
    "ReferenceParams",
    "RegistrationParams",
    "TemplateParams",
    "candidate_pool",
    "choose_reference",
    "evidence_mask",
    "global_pose",
    "groupwise_template",
    "is_cut",
    "landmark_edge_flags",
    "make_reference",
    "prealign",
    "reference_from_shards",
    "register_bone",
    "register_image",
    "sample_images",
    "separate_coincident",
    "shape_distance_matrix",
    "spread_off_view",
    "template_from_shards",
]
