"""Training through nnU-Net's own trainer class, with the schedule from params and resumable checkpoints.

``nnUNetTrainer_DenseSeg`` is nnU-Net's ``nnUNetTrainer`` with the number of
epochs, iterations per epoch, validation iterations and checkpoint interval
set from ``Schedule`` (nnU-Net's defaults are 1000 x 250, 50, every 50 epochs).
It is instantiated directly: nnU-Net's lookup of a trainer by name imports
every trainer module (and through them timm and torchvision). Training runs
nnU-Net's ``run_training`` loop; nnU-Net's final validation
(``perform_actual_validation``, which exports through a spawn process pool)
is not run: the fold is ``all`` (validation cases = training cases), and the
test split is scored by the project's evaluation instead.

Resume: nnU-Net writes ``checkpoint_latest.pth`` every ``save_every`` epochs
and ``checkpoint_final.pth`` at the end. A run whose fingerprint (params,
data, seed) matches the one recorded in the output folder continues from
``checkpoint_latest.pth`` (nnU-Net's ``load_checkpoint``) or, when final, does
not train again; any other output folder is cleared first.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from nnunetv2.training.data_augmentation.compute_initial_patch_size import get_patch_size
from nnunetv2.training.lr_scheduler.polylr import PolyLRScheduler
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

from denseseg.nnunet.config import NnUNetParams
from denseseg.nnunet.environment import Folders, nnunet_environment
from denseseg.nnunet.plan import PLANS

FINGERPRINT_FILE = "denseseg_fingerprint.json"
FINAL, LATEST = "checkpoint_final.pth", "checkpoint_latest.pth"
NNUNET_SCALE_RANGE = (0.85, 1.25)  # what nnU-Net's trainer passes to get_patch_size for the initial patch


class NnUNetTrainingError(RuntimeError):
    """Training cannot start: no preprocessed dataset, or an unreadable checkpoint."""


class nnUNetTrainer_DenseSeg(nnUNetTrainer):  # noqa: N801 (nnU-Net's naming of trainer variants)
    """nnU-Net's trainer with its schedule, optimiser and rotation range from params (``apply_params``
    before ``initialize``)."""

    rotation_deg: float | None = None  # None: nnU-Net's rule
    optimizer_name: str = "sgd"  # nnU-Net's own

    def apply_params(self, params: NnUNetParams) -> None:
        if self.was_initialized:
            raise NnUNetTrainingError("the params must be applied before the trainer is initialized")
        schedule = params.schedule
        self.num_epochs = schedule.epochs
        self.num_iterations_per_epoch = schedule.iterations_per_epoch
        self.num_val_iterations_per_epoch = schedule.val_iterations_per_epoch
        self.save_every = schedule.save_every
        self.rotation_deg = params.rotation_deg
        self.optimizer_name = params.optimizer.name
        if params.optimizer.initial_lr is not None:
            self.initial_lr = params.optimizer.initial_lr

    def configure_optimizers(self):
        """nnU-Net's SGD, or the AdamW of its ``nnUNetTrainerAdam`` variants; both with nnU-Net's poly decay."""
        if self.optimizer_name == "sgd":
            return super().configure_optimizers()
        optimizer = torch.optim.AdamW(
            self.network.parameters(), lr=self.initial_lr, weight_decay=self.weight_decay, amsgrad=True
        )
        return optimizer, PolyLRScheduler(optimizer, self.initial_lr, self.num_epochs)

    def configure_rotation_dummyDA_mirroring_and_inital_patch_size(self):  # noqa: N802 (nnU-Net's name)
        """nnU-Net's augmentation without mirroring (in training and at test time), its rotation range from
        params.

        Mirroring: the structures are lateral. JSRT has right and left lungs and clavicles as separate
        channels, and every wrist is normalised to one laterality (radius on one side, ulna on the other). A
        mirrored training image teaches that "right lung" may lie on either side: with nnU-Net's default
        mirroring the demo's paired JSRT structures reached only about 62 % DSC while the heart reached 97 %.

        Rotation: nnU-Net rotates a 2-D patch by up to +-180 degrees unless its sides differ by more than 1.5x
        (then +-15). Radiographs are taken upright, so ``rotation_deg`` can bound it (docs/nnunet.md).
        """
        rotation, dummy_2d, patch_size, _ = super().configure_rotation_dummyDA_mirroring_and_inital_patch_size()
        if self.rotation_deg is not None:
            bound = np.deg2rad(self.rotation_deg)
            rotation = (-bound, bound)
            patch = self.configuration_manager.patch_size
            patch_size = get_patch_size(patch, rotation, rotation, rotation, NNUNET_SCALE_RANGE)
            self.print_to_log_file(f"rotation_for_DA: +-{self.rotation_deg} degrees (params); patch {patch_size}")
        self.inference_allowed_mirroring_axes = None
        return rotation, dummy_2d, patch_size, None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """nnU-Net draws from Python's, numpy's and torch's global generators: seed all three."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class TrainedModel:
    """Where a trained nnU-Net model lives and how it got there."""

    output_folder: Path  # .../<trainer>__nnUNetPlans__2d/fold_all
    checkpoint: Path  # checkpoint_final.pth
    epochs: int
    resumed_from_epoch: int | None  # None: trained from scratch (or already finished)
    trained_now: bool


def output_folder(folders: Folders, dataset: str, params: NnUNetParams) -> Path:
    """nnU-Net's results folder of one trainer, plan, configuration and fold."""
    return (
        Path(folders.results)
        / dataset
        / f"{nnUNetTrainer_DenseSeg.__name__}__{PLANS}__{params.configuration}"
        / f"fold_{params.fold}"
    )


def _recorded(folder: Path) -> str | None:
    path = folder / FINGERPRINT_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())["fingerprint"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


def train(folders: Folders, dataset: str, params: NnUNetParams, seed: int, fingerprint: str) -> TrainedModel:
    """Train (or resume, or reuse) nnU-Net on the preprocessed ``dataset`` (``Dataset<id>_<name>``).

    Args:
        folders: nnU-Net's raw, preprocessed and results folders.
        dataset: the dataset's folder name.
        params: configuration, fold, schedule, device, threads.
        seed: seeds Python's, numpy's and torch's generators before the trainer is built.
        fingerprint: identifies the run (params + data); a folder of another run is cleared, not resumed.
    """
    preprocessed = Path(folders.preprocessed) / dataset
    plans_file, dataset_json_file = preprocessed / f"{PLANS}.json", preprocessed / "dataset.json"
    for path in (plans_file, dataset_json_file):
        if not path.exists():
            raise NnUNetTrainingError(f"{path}: missing; plan and preprocess the dataset first")
    out = output_folder(folders, dataset, params)
    same_run = _recorded(out) == fingerprint
    if same_run and (out / FINAL).exists():
        return TrainedModel(out, out / FINAL, params.schedule.epochs, None, trained_now=False)
    resume = same_run and (out / LATEST).exists()
    if not resume and out.parent.exists():
        shutil.rmtree(out.parent)
    torch.set_num_threads(params.threads)
    with nnunet_environment(folders, params.augmentation_processes):
        seed_everything(seed)
        plans = json.loads(plans_file.read_text())
        plans["continue_training"] = resume
        trainer = nnUNetTrainer_DenseSeg(
            plans=plans,
            configuration=params.configuration,
            fold=params.fold,
            dataset_json=json.loads(dataset_json_file.read_text()),
            device=resolve_device(params.device),
        )
        trainer.apply_params(params)
        resumed_from = None
        if resume:
            try:
                trainer.load_checkpoint(str(out / LATEST))
            except Exception as err:  # noqa: BLE001 - torch.load raises many types on a corrupt file
                message = f"{out / LATEST}: unreadable checkpoint ({err}); delete it to restart"
                raise NnUNetTrainingError(message) from None
            resumed_from = trainer.current_epoch
        (out / FINGERPRINT_FILE).write_text(json.dumps({"fingerprint": fingerprint}) + "\n")
        trainer.run_training()
    return TrainedModel(out, out / FINAL, params.schedule.epochs, resumed_from, trained_now=True)
