"""Fingerprint, plan and preprocess a raw dataset through nnunetv2's Python API (the 2-D configuration).

After nnU-Net's ``ExperimentPlanner`` writes ``nnUNetPlans.json``, ``edit_plan``
applies the demo's size edits (``PlanEdits``: all null keeps nnU-Net's plan,
as the paper's configuration does) to the 2-D configuration, before
preprocessing, so training and prediction read the edited plan.
"""

from __future__ import annotations

import json
from pathlib import Path

from denseseg.nnunet.config import NnUNetParams, PlanEdits
from denseseg.nnunet.environment import Folders, nnunet_environment

PLANS = "nnUNetPlans"


class PlanError(ValueError):
    """A plan that cannot be edited as asked."""


def edit_plan(plans: dict, configuration: str, edits: PlanEdits) -> dict:
    """A copy of nnU-Net's plans with the configuration's network and batch size edited.

    Stages beyond ``max_stages`` are dropped from every per-stage list
    (``features_per_stage``, ``kernel_sizes``, ``strides``, ``n_conv_per_stage``,
    ``n_conv_per_stage_decoder``); features are ``min(max_features,
    base_features * 2**stage)``, nnU-Net's own rule with other constants.
    """
    plans = json.loads(json.dumps(plans))
    if configuration not in plans["configurations"]:
        raise PlanError(f"plans have no configuration {configuration!r}: {', '.join(plans['configurations'])}")
    config = plans["configurations"][configuration]
    kwargs = config["architecture"]["arch_kwargs"]
    n = kwargs["n_stages"]
    if edits.max_stages is not None and edits.max_stages < n:
        n = edits.max_stages
        kwargs["n_stages"] = n
        for key in ("features_per_stage", "kernel_sizes", "strides", "n_conv_per_stage"):
            kwargs[key] = kwargs[key][:n]
        kwargs["n_conv_per_stage_decoder"] = kwargs["n_conv_per_stage_decoder"][: n - 1]
    if edits.base_features is not None or edits.max_features is not None:
        base = edits.base_features if edits.base_features is not None else kwargs["features_per_stage"][0]
        cap = edits.max_features if edits.max_features is not None else max(kwargs["features_per_stage"])
        kwargs["features_per_stage"] = [min(cap, base * 2**i) for i in range(n)]
    if edits.batch_size is not None:
        config["batch_size"] = edits.batch_size
    return plans


def plan_and_preprocess(folders: Folders, dataset_id: int, params: NnUNetParams) -> Path:
    """nnU-Net's fingerprint, plan (edited by ``params.plan``) and 2-D preprocessing; returns the plans file.

    The dataset's integrity is checked by nnU-Net first (labels, file names, shapes).
    nnU-Net's planner sets torch's thread count to its augmentation worker
    count (``nnUNet_n_proc_DA``), which must be positive: here it is ``params.processes``.
    """
    with nnunet_environment(folders, params.processes):
        from nnunetv2.experiment_planning.dataset_fingerprint.fingerprint_extractor import (
            DatasetFingerprintExtractor,
        )
        from nnunetv2.experiment_planning.experiment_planners.default_experiment_planner import ExperimentPlanner
        from nnunetv2.experiment_planning.plan_and_preprocess_api import (
            extract_fingerprint_dataset,
            plan_experiment_dataset,
            preprocess_dataset,
        )
        from nnunetv2.utilities.dataset_name_id_conversion import convert_id_to_dataset_name

        extract_fingerprint_dataset(
            dataset_id,
            DatasetFingerprintExtractor,
            num_processes=params.processes,
            check_dataset_integrity=True,
            clean=True,
            verbose=False,
            show_progress_bar=False,
        )
        plan_experiment_dataset(dataset_id, ExperimentPlanner)
        plans_file = Path(folders.preprocessed) / convert_id_to_dataset_name(dataset_id) / f"{PLANS}.json"
        plans = edit_plan(json.loads(plans_file.read_text()), params.configuration, params.plan)
        plans_file.write_text(json.dumps(plans, indent=4, sort_keys=False) + "\n")
        preprocess_dataset(
            dataset_id, PLANS, (params.configuration,), (params.processes,), verbose=False, show_progress_bar=False
        )
    return plans_file
