"""Bone-age regression from landmarks (paper sections 3.2 and 4.2.1).

Modules: ``config`` (the parameter model), ``features`` (per-bone centred,
padded and masked landmark inputs), ``buckets`` (4-month age classes and their
centre decoding), ``network`` (the per-bone MLP shared across bones and the
head over the concatenated bones), ``model`` (the equal-weight ensemble, saved
as one ``model.pt`` and read by ``BoneAgeModel.from_folder``), ``training``
(members trained through the shared ``denseseg.training.Trainer``),
``metrics`` (MAE in months, R²) and ``plots`` (the scatter figure).
"""

from denseseg.bone_age.buckets import AgeBuckets
from denseseg.bone_age.config import BoneAgeParams
from denseseg.bone_age.features import BoneInputs, bone_inputs
from denseseg.bone_age.metrics import age_metrics, mae_months, r2_score
from denseseg.bone_age.model import BoneAgeModel, BoneAgeModelError, ensemble_logits
from denseseg.bone_age.network import BoneAgeNet
from denseseg.bone_age.training import AgeSamples, train_ensemble

__all__ = [
    "AgeBuckets",
    "AgeSamples",
    "BoneAgeModel",
    "BoneAgeModelError",
    "BoneAgeNet",
    "BoneAgeParams",
    "BoneInputs",
    "age_metrics",
    "bone_inputs",
    "ensemble_logits",
    "mae_months",
    "r2_score",
    "train_ensemble",
]
