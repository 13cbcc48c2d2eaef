"""The real nnunetv2 on a toy dataset of four 32x32 images: export -> plan -> preprocess -> train -> predict.

One pipeline run (about 40 s on one core, most of it nnU-Net's spawn worker pools) shared by the tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from denseseg.nnunet.config import NnUNetParams
from denseseg.nnunet.environment import Folders
from denseseg.nnunet.export import ExportError, export_raw_dataset

pytestmark = pytest.mark.slow

STRUCTURES = ("disc", "bar")


def _toy(index: int, n: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A disc and a bar that overlap it; the image is brighter where they are."""
    rng = np.random.default_rng(index)
    yy, xx = np.mgrid[:n, :n]
    cy, cx = rng.integers(10, 22, 2)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 64
    bar = (abs(yy - cy - 3) < 3) & (abs(xx - cx) < 10)
    image = (disc * 1000 + bar * 1500 + rng.integers(0, 200, (n, n))).astype(np.uint16)
    return image, np.stack([disc, bar])


def _params() -> NnUNetParams:
    return NnUNetParams(
        configuration="2d",
        fold="all",
        plan={"base_features": 4, "max_features": 16, "max_stages": 3, "batch_size": 2},
        schedule={"epochs": 1, "iterations_per_epoch": 2, "val_iterations_per_epoch": 1, "save_every": 1},
        processes=1,
        augmentation_processes=0,
        device="cpu",
        threads=1,
        optimizer={"name": "sgd", "initial_lr": None},
        rotation_deg=15.0,
        tile_step_size=0.5,
        threshold=0.5,
    )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    from denseseg.nnunet.plan import plan_and_preprocess
    from denseseg.nnunet.training import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("nnunet")
    folders = Folders(root / "raw", root / "preprocessed", root / "results")
    items = [f"case{i}" for i in range(4)]
    exported = export_raw_dataset(lambda item: _toy(int(item[4:])), items, STRUCTURES, folders.raw, 7, "toy", "toy")
    plans_file = plan_and_preprocess(folders, 7, _params())
    trained = train(folders, exported.name, _params(), seed=3, fingerprint="run-a")
    return {"folders": folders, "exported": exported, "plans": plans_file, "trained": trained}


def test_raw_dataset_is_laid_out_as_nnunet_reads_it(pipeline):
    from nnunetv2.utilities.label_handling.label_handling import LabelManager
    from nnunetv2.utilities.utils import get_filenames_of_train_images_and_targets

    folder = pipeline["exported"].folder
    dataset_json = json.loads((folder / "dataset.json").read_text())
    cases = get_filenames_of_train_images_and_targets(str(folder), dataset_json)
    assert sorted(cases) == [f"case{i}" for i in range(4)]
    assert cases["case0"]["images"] == [str(folder / "imagesTr" / "case0_0000.png")]
    labels = LabelManager(dataset_json["labels"], dataset_json["regions_class_order"])
    assert labels.has_regions and labels.num_segmentation_heads == 2
    # disc alone 1, bar alone 2, both 3: each structure is the region of the labels that contain it
    assert [list(r) for r in labels.foreground_regions] == [[1, 3], [2, 3]]
    from nnunetv2.imageio.natural_image_reader_writer import NaturalImage2DIO

    image, _ = NaturalImage2DIO().read_images([cases["case1"]["images"][0]])
    seg, _ = NaturalImage2DIO().read_seg(cases["case1"]["label"])
    pixels, masks = _toy(1)
    assert np.array_equal(image[0, 0], pixels.astype(np.float32))  # lossless 16-bit PNG
    assert np.array_equal(pipeline["exported"].encoding.decode(seg[0, 0].astype(np.int64)), masks)


def test_plan_is_edited_before_preprocessing(pipeline):
    config = json.loads(pipeline["plans"].read_text())["configurations"]["2d"]
    kwargs = config["architecture"]["arch_kwargs"]
    assert config["batch_size"] == 2
    assert kwargs["n_stages"] == 3 and kwargs["features_per_stage"] == [4, 8, 16]
    assert len(kwargs["strides"]) == 3 and len(kwargs["n_conv_per_stage_decoder"]) == 2


def test_trainer_runs_the_schedule_from_params(pipeline):
    trained = pipeline["trained"]
    checkpoint = torch.load(trained.checkpoint, map_location="cpu", weights_only=False)
    assert checkpoint["trainer_name"] == "nnUNetTrainer_DenseSeg"
    assert checkpoint["current_epoch"] == 1  # one epoch of the schedule, not nnU-Net's 1000
    assert len(checkpoint["logging"]["train_losses"]) == 1
    assert checkpoint["init_args"]["fold"] == "all"
    # lateral structures (right/left lung): no mirroring, neither in training nor at test time
    assert checkpoint["inference_allowed_mirroring_axes"] is None


def _trainer(pipeline):
    """A trainer on the toy's preprocessed dataset, built as ``train()`` builds it (not initialised)."""
    from denseseg.nnunet.training import nnUNetTrainer_DenseSeg

    plans = pipeline["plans"]
    return nnUNetTrainer_DenseSeg(
        plans={**json.loads(plans.read_text()), "continue_training": False},
        configuration="2d",
        fold="all",
        dataset_json=json.loads((plans.parent / "dataset.json").read_text()),
        device=torch.device("cpu"),
    )


@pytest.mark.parametrize("degrees", [15.0, None])
def test_the_rotation_range_comes_from_params(pipeline, degrees):
    """None keeps nnU-Net's rule: +-180 degrees for the toy's square patch; a value bounds it, mirroring stays off."""
    from denseseg.nnunet.environment import nnunet_environment

    with nnunet_environment(pipeline["folders"], 0):
        trainer = _trainer(pipeline)
        trainer.apply_params(_params().model_copy(update={"rotation_deg": degrees}))
        rotation, _, patch_size, mirror_axes = trainer.configure_rotation_dummyDA_mirroring_and_inital_patch_size()
    bound = np.pi / 12 if degrees else np.pi
    assert rotation == pytest.approx((-bound, bound)) and mirror_axes is None
    assert len(patch_size) == 2 and min(patch_size) >= 32  # room for the rotated patch


def test_the_optimiser_comes_from_params(pipeline):
    from denseseg.nnunet.config import Optimizer
    from denseseg.nnunet.environment import nnunet_environment

    with nnunet_environment(pipeline["folders"], 0):
        trainer = _trainer(pipeline)
        trainer.network = torch.nn.Conv2d(1, 1, 1)  # configure_optimizers only reads the parameters
        trainer.apply_params(_params().model_copy(update={"optimizer": Optimizer(name="adamw", initial_lr=3e-3)}))
        adamw, poly = trainer.configure_optimizers()
        default = _trainer(pipeline)
        default.network = trainer.network
        default.apply_params(_params())  # sgd, initial_lr null: nnU-Net's own
        sgd, _ = default.configure_optimizers()
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["lr"] == 3e-3
    assert adamw.param_groups[0]["amsgrad"] and poly.max_steps == _params().schedule.epochs
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["lr"] == 1e-2  # nnU-Net's own
    assert sgd.param_groups[0]["momentum"] == 0.99 and sgd.param_groups[0]["nesterov"]


def test_a_finished_run_with_the_same_fingerprint_is_not_trained_again(pipeline):
    from denseseg.nnunet.training import train

    again = train(pipeline["folders"], pipeline["exported"].name, _params(), seed=3, fingerprint="run-a")
    assert not again.trained_now and again.checkpoint == pipeline["trained"].checkpoint


def test_predictor_gives_per_structure_probabilities_and_masks(pipeline):
    from denseseg.nnunet.predict import NnUNetModel

    model = NnUNetModel(pipeline["trained"].output_folder, pipeline["exported"].encoding, _params())
    pixels, _ = _toy(9)
    pred = model.predict(pixels)
    assert pred.probabilities.shape == (2, 32, 32) and pred.masks.shape == (2, 32, 32)
    assert ((pred.probabilities >= 0) & (pred.probabilities <= 1)).all()
    assert np.array_equal(pred.masks, pred.probabilities > 0.5)


def test_predictor_uses_the_params_threads_trained_now_or_not(pipeline):
    """A forced ``dvc repro`` reuses the model without training; it must predict with params.threads (the
    trainer sets them), not the process default: one ulp apart in one pixel broke same-params-same-bytes."""
    from denseseg.nnunet.predict import NnUNetModel

    torch.set_num_threads(2)
    try:
        NnUNetModel(pipeline["trained"].output_folder, pipeline["exported"].encoding, _params())
        assert torch.get_num_threads() == _params().threads == 1
    finally:
        torch.set_num_threads(1)


def test_missing_or_corrupt_checkpoint_is_a_clear_error(pipeline, tmp_path):
    import shutil

    from denseseg.nnunet.predict import NnUNetModel, NnUNetPredictError

    copy = tmp_path / "model"
    shutil.copytree(pipeline["trained"].output_folder.parent, copy)
    fold = copy / "fold_all"
    (fold / "checkpoint_final.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(NnUNetPredictError, match="not an nnU-Net checkpoint"):
        NnUNetModel(fold, pipeline["exported"].encoding, _params())
    (fold / "checkpoint_final.pth").unlink()
    with pytest.raises(NnUNetPredictError, match="checkpoint_final.pth: missing"):
        NnUNetModel(fold, pipeline["exported"].encoding, _params())


def test_empty_split_is_rejected(tmp_path):
    with pytest.raises(ExportError, match="empty split"):
        export_raw_dataset(_toy, [], STRUCTURES, tmp_path, 7, "toy", "toy")
