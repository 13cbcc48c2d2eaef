"""Prediction with nnU-Net's ``nnUNetPredictor`` from a trained output folder, masks from region probabilities.

The network is built by nnU-Net's ``nnUNetTrainer.build_network_architecture``
from the plans and loaded from ``checkpoint_final.pth``, and handed to the
predictor with ``manual_initialization`` (its ``initialize_from_trained_model_folder``
looks the trainer class up by name, which imports every trainer module and
knows only nnU-Net's own trainers). Each image goes through
``predict_single_npy_array`` (nnU-Net's preprocessing, sliding window,
Gaussian weighting, resampling back; no mirroring) with its
probabilities returned; a structure's mask is its region channel above the
threshold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from denseseg.nnunet.config import NnUNetParams
from denseseg.nnunet.regions import RegionEncoding, masks_from_region_probabilities
from denseseg.nnunet.training import resolve_device

SPACING = {"spacing": (999.0, 1.0, 1.0)}  # what NaturalImage2DIO reports for a 2-D image


class NnUNetPredictError(RuntimeError):
    """A trained model folder that cannot be used: missing or corrupt checkpoint, plans or dataset.json."""


@dataclass(frozen=True)
class Prediction:
    probabilities: np.ndarray  # (S, H, W) float32, region probabilities in structure order
    masks: np.ndarray  # (S, H, W) bool


class NnUNetModel:
    """A trained nnU-Net (output folder ``.../fold_all``) ready to predict 2-D images."""

    def __init__(self, fold_folder: Path, encoding: RegionEncoding, params: NnUNetParams):
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
        from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        fold_folder = Path(fold_folder)
        model_folder = fold_folder.parent
        checkpoint_file = fold_folder / "checkpoint_final.pth"
        for path in (model_folder / "plans.json", model_folder / "dataset.json", checkpoint_file):
            if not path.exists():
                raise NnUNetPredictError(f"{path}: missing; train the model first")
        self.encoding, self.threshold = encoding, params.threshold
        device = resolve_device(params.device)
        # the CPU's sums depend on the thread count: a model reused without training (no train() call set
        # it) predicts with the same threads as one trained in this process, so the same params give the
        # same bytes
        torch.set_num_threads(params.threads)
        try:
            checkpoint = torch.load(checkpoint_file, map_location="cpu", weights_only=False)
            weights = checkpoint["network_weights"]
            trainer_name = checkpoint["trainer_name"]
            mirroring = checkpoint.get("inference_allowed_mirroring_axes")
        except Exception as err:  # noqa: BLE001 - torch.load raises many types on a corrupt file
            raise NnUNetPredictError(f"{checkpoint_file}: not an nnU-Net checkpoint ({err})") from None
        dataset_json = json.loads((model_folder / "dataset.json").read_text())
        plans_manager = PlansManager(json.loads((model_folder / "plans.json").read_text()))
        configuration = plans_manager.get_configuration(params.configuration)
        label_manager = plans_manager.get_label_manager(dataset_json)
        if label_manager.num_segmentation_heads != len(encoding.structures):
            raise NnUNetPredictError(
                f"{model_folder}: {label_manager.num_segmentation_heads} regions, the encoding has "
                f"{len(encoding.structures)} structures"
            )
        network = nnUNetTrainer.build_network_architecture(
            plans_manager,
            configuration,
            determine_num_input_channels(plans_manager, configuration, dataset_json),
            label_manager.num_segmentation_heads,
            enable_deep_supervision=False,
        )
        try:
            network.load_state_dict(weights)
        except RuntimeError as err:
            raise NnUNetPredictError(f"{checkpoint_file}: weights do not fit the planned network ({err})") from None
        self.predictor = nnUNetPredictor(
            tile_step_size=params.tile_step_size,
            use_gaussian=True,
            use_mirroring=False,  # lateral structures: the trainer allows no mirroring axes (training.py)
            perform_everything_on_device=device.type == "cuda",
            device=device,
            verbose=False,
            verbose_preprocessing=False,
            allow_tqdm=False,
        )
        self.predictor.manual_initialization(
            network.to(device), plans_manager, configuration, [weights], dataset_json, trainer_name, mirroring
        )

    def predict(self, pixels: np.ndarray) -> Prediction:
        """One image as the raw dataset holds it ((H, W) integers) -> region probabilities and masks."""
        pixels = np.asarray(pixels)
        if pixels.ndim != 2:
            raise ValueError(f"an image is (H, W), got shape {pixels.shape}")
        image = pixels.astype(np.float32)[None, None]  # (C=1, Z=1, H, W), as NaturalImage2DIO reads a PNG
        _, probabilities = self.predictor.predict_single_npy_array(image, dict(SPACING), None, None, True)
        probabilities = np.asarray(probabilities, np.float32)
        if probabilities.ndim == 4:
            probabilities = probabilities[:, 0]
        masks = masks_from_region_probabilities(probabilities, len(self.encoding.structures), self.threshold)
        return Prediction(probabilities, masks)
