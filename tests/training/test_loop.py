"""The training loop: exact resume, best checkpoint, schedule, failures named, hooks called."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from denseseg.training.augment import AffineAugment
from denseseg.training.checkpoint import CheckpointError, load_best, load_checkpoint
from denseseg.training.config import AugmentParams, TrainingConfig
from denseseg.training.loop import Callback, Trainer, TrainingError, collate_items

torch.set_num_threads(1)

BASE = dict(
    epochs=4,
    batch_size=3,
    lr=1e-2,
    lr_schedule="cosine",
    lr_decay=10.0,
    optimizer="adam",
    weight_decay=0.0,
    grad_clip_norm=1.0,
    shuffle=True,
    validate_every=1,
    device="cpu",
    threads=1,
    num_workers=0,
)
AUGMENT = AffineAugment(
    AugmentParams(enabled=True, rotation_deg=10.0, translation=0.1, scale_min=0.9, scale_max=1.1, intensity_gain=0.0)
)


def config(**changes) -> TrainingConfig:
    return TrainingConfig(**{**BASE, **changes})


def items(n: int, seed: int) -> list[dict]:
    """Tiny items: an image and the mask of its bright pixels (numpy, as a cache gives them)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        image = rng.random((1, 8, 8), dtype=np.float32)
        out.append({"item": f"case{seed}-{i}", "image": image, "masks": (image > 0.5).astype(np.float32)})
    return out


def network(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.3), nn.Conv2d(4, 1, 1))


def bce_step(net: nn.Module, batch: dict) -> dict:
    logits = net(batch["image"])
    loss = nn.functional.binary_cross_entropy_with_logits(logits, batch["masks"])
    return {"loss": loss, "mean_logit": logits.mean().detach()}


def trainer(net, workdir, cfg=None, **kwargs) -> Trainer:
    kwargs = {"train_set": items(7, 1), "val_set": items(3, 2), "augment": AUGMENT, "fingerprint": "fp", **kwargs}
    return Trainer(net, bce_step, cfg or config(), seed=5, workdir=workdir, **kwargs)


class StopAfter(Callback):
    """Simulates a run killed after an epoch's checkpoint was written."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, trainer, record):
        if record["epoch"] == self.epoch:
            raise KeyboardInterrupt(f"stopped after epoch {self.epoch}")


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def killed_in_epoch_3_step_1():
    """A step function that dies half way through epoch 3 (after its first optimiser step)."""
    calls = {"n": 0}

    def step(net, batch):
        calls["n"] += net.training  # validation calls the step too, in eval mode
        if calls["n"] == 2 * 3 + 2:  # 3 training batches per epoch
            raise KeyboardInterrupt("killed in epoch 3")
        return bce_step(net, batch)

    return step


@pytest.mark.parametrize("interruption", ["after epoch 2", "during epoch 3"])
def test_a_stopped_run_restarted_ends_byte_identical_to_an_uninterrupted_run(tmp_path, interruption):
    reference = trainer(network(), tmp_path / "ref")
    expected = reference.fit()

    if interruption == "after epoch 2":
        stopped = trainer(network(), tmp_path / "run", callbacks=[StopAfter(2)])
    else:
        stopped = Trainer(
            network(),
            killed_in_epoch_3_step_1(),
            config(),
            seed=5,
            workdir=tmp_path / "run",
            train_set=items(7, 1),
            val_set=items(3, 2),
            augment=AUGMENT,
            fingerprint="fp",
        )
    with pytest.raises(KeyboardInterrupt):
        stopped.fit()
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
    torch.manual_seed(123)  # the global RNG moves on between the two processes' lives
    resumed = trainer(network(seed=99), tmp_path / "run")  # other initial weights: the checkpoint must win
    result = resumed.fit()

    assert result.resumed_from == 2 and result.epochs_run == 4 and expected.resumed_from is None
    assert_same_state(resumed.network.state_dict(), reference.network.state_dict())
    ref_opt, got_opt = reference.optimizer.state_dict(), resumed.optimizer.state_dict()
    for index, values in ref_opt["state"].items():
        for name, value in values.items():
            assert torch.equal(got_opt["state"][index][name], value), (index, name)
    assert without_seconds(result.history) == without_seconds(expected.history)
    assert_same_state(
        load_checkpoint(tmp_path / "run" / "best.pt")["network"],
        load_checkpoint(tmp_path / "ref" / "best.pt")["network"],
    )


def test_training_actually_changes_the_weights_and_lowers_the_loss(tmp_path):
    net = network()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    result = trainer(net, None, config(epochs=6, lr=3e-2), monitor="train_loss").fit()
    assert not torch.equal(before["0.weight"], net.state_dict()["0.weight"])
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_a_run_that_already_finished_resumes_without_training_again(tmp_path):
    first = trainer(network(), tmp_path / "run", config(epochs=2))
    first.fit()
    again = trainer(network(seed=7), tmp_path / "run", config(epochs=2))
    result = again.fit()
    assert result.resumed_from == 2 and result.epochs_run == 2
    assert_same_state(again.network.state_dict(), first.network.state_dict())


def test_another_fingerprint_starts_fresh_and_matches_a_run_in_a_clean_folder(tmp_path, caplog):
    trainer(network(), tmp_path / "run", config(epochs=2), fingerprint="old").fit()
    fresh = trainer(network(), tmp_path / "run", config(epochs=2), fingerprint="new")
    with caplog.at_level("WARNING", logger="denseseg.training.loop"):
        result = fresh.fit()
    assert "fingerprint 'old', this run is 'new'" in caplog.text
    clean = trainer(network(), tmp_path / "clean", config(epochs=2), fingerprint="new")
    clean.fit()
    assert result.resumed_from is None and [r["epoch"] for r in result.history] == [1, 2]
    assert_same_state(fresh.network.state_dict(), clean.network.state_dict())
    assert load_checkpoint(tmp_path / "run" / "last.pt")["fingerprint"] == "new"
    assert load_checkpoint(tmp_path / "run" / "best.pt")["fingerprint"] == "new"


def test_a_corrupt_last_checkpoint_stops_the_run_naming_the_file(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"\x80\x02 truncated")
    with pytest.raises(CheckpointError, match=r"last\.pt"):
        trainer(network(), tmp_path / "run").fit()


def test_a_nan_loss_raises_naming_epoch_step_items_and_terms(tmp_path):
    calls = {"n": 0}

    def poisoned(net, batch):
        terms = bce_step(net, batch)
        calls["n"] += 1
        if calls["n"] == 4:  # epoch 2 (3 batches per epoch), its first step (step 0)
            terms["loss"] = terms["loss"] * float("nan")
        return terms

    run = Trainer(network(), poisoned, config(), seed=5, train_set=items(7, 1), monitor="train_loss")
    with pytest.raises(TrainingError, match=r"epoch 2, step 0 \(items \['case1-\d', .*\]\): loss=nan, mean_logit="):
        run.fit()


def test_a_step_without_loss_is_refused():
    run = Trainer(
        network(),
        lambda net, b: {"l": net(b["image"]).mean()},
        config(),
        seed=0,
        train_set=items(2, 1),
        monitor="train_l",
    )
    with pytest.raises(TrainingError, match="without a 'loss'"):
        run.fit()


class Snapshots(Callback):
    def __init__(self):
        self.weights, self.paths = {}, []

    def on_epoch_end(self, trainer, record):
        self.weights[record["epoch"]] = {k: v.clone() for k, v in trainer.network.state_dict().items()}

    def on_checkpoint(self, trainer, path):
        self.paths.append((trainer.current_epoch, path.name))


@pytest.mark.parametrize("mode,best", [("min", 4), ("max", 2)])
def test_best_checkpoint_follows_the_monitor(tmp_path, mode, best):
    scores = {1: 3.0, 2: 5.0, 3: 1.0, 4: 0.5, 5: 0.7}
    holder = {}

    def validate(net, batch):
        return {"score": scores[holder["trainer"].current_epoch], "size": float(len(batch["item"]))}

    snapshots = Snapshots()
    run = trainer(
        network(),
        tmp_path,
        config(epochs=5),
        validate=validate,
        monitor="val_score",
        monitor_mode=mode,
        callbacks=[snapshots],
    )
    holder["trainer"] = run
    result = run.fit()
    assert result.best_epoch == best and result.best_metric == pytest.approx(scores[best])
    assert [r["val_score"] for r in result.history] == pytest.approx([3.0, 5.0, 1.0, 0.5, 0.7])
    best_written = [epoch for epoch, name in snapshots.paths if name == "best.pt"]
    assert best_written == ([1, 3, 4] if mode == "min" else [1, 2])
    assert [epoch for epoch, name in snapshots.paths if name == "last.pt"] == [1, 2, 3, 4, 5]
    fresh = network(seed=3)
    assert load_best(fresh, tmp_path) == {"epoch": best, "monitor": "val_score", "metric": scores[best]}
    assert_same_state(fresh.state_dict(), snapshots.weights[best])
    assert_same_state(run.network.state_dict(), snapshots.weights[5])  # the trainer keeps the LAST weights


def test_val_loss_is_the_step_loss_on_validation_batches_without_augmentation_or_dropout(tmp_path):
    run = trainer(network(), None, config(epochs=1))
    record = run.fit().history[0]
    net = run.network.eval()
    batch = collate_items([{k: torch.from_numpy(v) if k != "item" else v for k, v in it.items()} for it in items(3, 2)])
    with torch.no_grad():
        expected = bce_step(net, batch)["loss"].item()
    assert math.isclose(record["val_loss"], expected, rel_tol=1e-6)
    assert set(record) == {"epoch", "lr", "train_loss", "train_mean_logit", "val_loss", "val_mean_logit", "seconds"}


def test_cosine_lr_at_epoch_boundaries_equals_the_closed_form():
    epochs, lr, decay = 4, 0.1, 100.0
    run = Trainer(
        network(),
        bce_step,
        config(epochs=epochs, lr=lr, lr_decay=decay),
        seed=0,
        train_set=items(2, 1),
        monitor="train_loss",
    )
    result = run.fit()
    closed = [lr / decay + (lr - lr / decay) * (1 + math.cos(math.pi * (e - 1) / epochs)) / 2 for e in range(1, 5)]
    assert [r["lr"] for r in result.history] == pytest.approx(closed, rel=1e-12)
    assert result.history[0]["lr"] == pytest.approx(0.1) and result.history[2]["lr"] == pytest.approx(0.0505)
    assert run.optimizer.param_groups[0]["lr"] == pytest.approx(lr / decay)  # reached after the last epoch


def test_constant_schedule_keeps_the_rate():
    run = Trainer(
        network(),
        bce_step,
        config(epochs=3, lr_schedule="constant"),
        seed=0,
        train_set=items(2, 1),
        monitor="train_loss",
    )
    assert [r["lr"] for r in run.fit().history] == [1e-2, 1e-2, 1e-2]


def test_validation_runs_every_n_epochs_and_after_the_last():
    run = Trainer(
        network(), bce_step, config(epochs=5, validate_every=2), seed=0, train_set=items(2, 1), val_set=items(2, 2)
    )
    history = run.fit().history
    assert ["val_loss" in r for r in history] == [False, True, False, True, True]


def test_epoch_order_and_draws_come_from_seed_and_epoch():
    def plan(seed, epoch):
        run = Trainer(
            network(), bce_step, config(), seed=seed, train_set=items(7, 1), augment=AUGMENT, monitor="train_loss"
        )
        run._plan_epoch(epoch)
        return run.epoch_order, [d.to_dict() for d in run.epoch_draws]

    assert plan(5, 2) == plan(5, 2)
    assert plan(5, 2)[0] != plan(5, 3)[0] or plan(5, 2)[1] != plan(5, 3)[1]
    assert plan(5, 2)[1] != plan(6, 2)[1]
    assert sorted(plan(5, 2)[0]) == list(range(7))


def test_workers_give_the_same_training_as_the_main_process(tmp_path):
    runs = []
    for workers in (0, 1):
        run = trainer(network(), None, config(epochs=1, num_workers=workers), val_set=None, monitor="train_loss")
        runs.append((run.fit().history[0]["train_loss"], run.network.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert_same_state(runs[0][1], runs[1][1])


def test_collate_stacks_tensors_and_lists_names():
    batch = collate_items([{"item": "a", "x": torch.zeros(2), "n": 1}, {"item": "b", "x": torch.ones(2), "n": 2}])
    assert batch["item"] == ["a", "b"] and batch["x"].shape == (2, 2) and batch["n"].tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"'x' of items \['a', 'b'\]: shapes differ"):
        collate_items([{"item": "a", "x": torch.zeros(2)}, {"item": "b", "x": torch.zeros(3)}])


def test_bad_monitor_settings_are_refused():
    with pytest.raises(ValueError, match="val_loss.*val_set"):
        Trainer(network(), bce_step, config(), seed=0, train_set=items(2, 1))
    with pytest.raises(ValueError, match="monitor_mode"):
        Trainer(network(), bce_step, config(), seed=0, train_set=items(2, 1), monitor="train_loss", monitor_mode="best")
    with pytest.raises(ValueError, match="empty"):
        Trainer(network(), bce_step, config(), seed=0, train_set=[], monitor="train_loss")


class CountingTrainer(Trainer):
    """A variant by subclass: five lines, no new loop."""

    def on_train_start(self):
        self.steps = 0
        super().on_train_start()

    def train_step(self, batch):
        self.steps += 1
        return {**super().train_step(batch), "batch": float(len(batch["item"]))}


def test_a_subclass_variant_overrides_a_hook_and_its_terms_reach_the_history():
    run = CountingTrainer(network(), bce_step, config(epochs=2), seed=0, train_set=items(7, 1), monitor="train_loss")
    history = run.fit().history
    assert run.steps == 6  # 7 items in batches of 3: 3 steps per epoch
    assert history[0]["train_batch"] == pytest.approx((3 * 3 + 3 * 3 + 1 * 1) / 7)  # item-weighted mean of sizes


def test_the_channels_last_path_used_on_cuda_trains_the_same_on_the_cpu():
    runs = []
    for channels_last in (False, True):
        net = network()
        net[2].p = 0.0  # dropout draws its mask in memory order, which channels_last changes
        run = Trainer(net, bce_step, config(epochs=2), seed=0, train_set=items(4, 1), monitor="train_loss")
        if channels_last:  # what __init__ does on CUDA, forced here on the CPU
            run.channels_last = True
            run.network.to(memory_format=torch.channels_last)
        runs.append([r["train_loss"] for r in run.fit().history])
    assert runs[1] == pytest.approx(runs[0], rel=1e-5)
