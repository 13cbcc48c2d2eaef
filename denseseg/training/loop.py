"""The one training loop: hooks, seeded epochs, checkpoints and exact resume.

Why one loop: every method (DenseSeg, the heatmap baseline, ablations) differs in its
network and loss only, so a method supplies a ``StepFn`` (and optionally a
``ValidateFn``) and everything else -- batching, augmentation, optimiser, schedule,
device, checkpoints, resume, curves -- is shared and tested once. Variants override a
hook of ``Trainer`` (``on_train_start``, ``train_step``, ``validation_step``,
``on_epoch_end``, ``save_checkpoint``, ``on_train_end``) or pass a ``Callback``.

Reproducibility: the batches and augmentation draws of epoch ``e`` come from a fresh
generator seeded by (seed, e); the global RNGs (dropout and the like) are seeded at a
fresh start and saved in every checkpoint. A run stopped after any epoch and started
again on the same workdir therefore ends with the same weights as an uninterrupted
one (byte for byte on the CPU).

Epochs are counted from 1 in records, messages and checkpoints.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from denseseg.training.augment import AffineAugment, AffineDraw
from denseseg.training.batching import EpochItems, batch_size, collate_items, frame_of
from denseseg.training.checkpoint import (
    BEST,
    LAST,
    LAST_KEYS,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from denseseg.training.config import TrainingConfig
from denseseg.training.device import autocast, resolve_device, to_device
from denseseg.training.hooks import Callback, TrainingError, TrainingResult, lr_factor
from denseseg.training.rng import epoch_seed, rng_state, seed_globals, set_rng_state

logger = logging.getLogger(__name__)

StepFn = Callable[[nn.Module, dict], dict[str, Tensor]]
ValidateFn = Callable[[nn.Module, dict], dict[str, float]]


class Trainer:
    """Trains ``network`` with ``step`` under ``config``; see the module docstring.

    Args:
        network: the module to train (moved to the configured device).
        step: (network, batch) -> {"loss": tensor, other named scalar terms}.
        config: the training parameters.
        seed: seeds the shuffling, augmentation and global RNGs.
        train_set: items (dicts in the item format); ``len`` and ``[]`` are used.
        val_set: validation items, read in order, never augmented.
        validate: (network, batch) -> metrics averaged over the batch, recorded as
            "val_<name>"; without it the step's terms on val batches are ("val_loss", ...).
        augment: the random affine map of training items (None: none).
        workdir: where last.pt and best.pt live (None: no checkpoints, no resume).
        monitor: the record key that picks best.pt.
        monitor_mode: "min" or "max".
        callbacks: extra concerns, called after the trainer's own hooks.
        fingerprint: identifies what is trained (params, data); a last.pt of another
            fingerprint is removed and training starts fresh.
        collate: list of items -> batch (default ``collate_items``).
    """

    def __init__(
        self,
        network: nn.Module,
        step: StepFn,
        config: TrainingConfig,
        *,
        seed: int,
        train_set: Sequence[dict],
        val_set: Sequence[dict] | None = None,
        validate: ValidateFn | None = None,
        augment: AffineAugment | None = None,
        workdir: Path | None = None,
        monitor: str = "val_loss",
        monitor_mode: str = "min",
        callbacks: Sequence[Callback] = (),
        fingerprint: str = "",
        collate: Callable[[list[dict]], dict] | None = None,
    ):
        if len(train_set) == 0:
            raise ValueError("train_set is empty: nothing to train on")
        if monitor_mode not in ("min", "max"):
            raise ValueError(f"monitor_mode {monitor_mode!r}: expected 'min' or 'max'")
        if validate is not None and val_set is None:
            raise ValueError("a validate function was given without a val_set")
        if monitor.startswith("val_") and (val_set is None or len(val_set) == 0):
            raise ValueError(f"monitor {monitor!r} needs a non-empty val_set (or monitor a train_ key)")
        self.network = network
        self.step = step
        self.config = config
        self.seed = int(seed)
        epoch_seed(self.seed, 0)  # refuses a negative seed now rather than after the first epoch
        self.train_set = train_set
        self.val_set = val_set
        self.validate = validate
        self.augment = augment
        self.workdir = Path(workdir) if workdir is not None else None
        self.monitor = monitor
        self.monitor_mode = monitor_mode
        self.callbacks = list(callbacks)
        self.fingerprint = fingerprint
        self.collate = collate or collate_items

        self.device = resolve_device(config.device)
        self.channels_last = self.device.type == "cuda"
        self.network.to(self.device)
        if self.channels_last:
            self.network.to(memory_format=torch.channels_last)
        self.optimizer = self.build_optimizer()
        epochs, schedule, decay = config.epochs, config.lr_schedule, config.lr_decay
        # a plain function (not a bound method) so the scheduler's state_dict holds no callable
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda=lambda index: lr_factor(index, epochs, schedule, decay)
        )

        self.history: list[dict] = []
        self.best_epoch: int | None = None
        self.best_metric: float | None = None
        self.current_epoch = 0
        self.epoch_order: list[int] = []
        self.epoch_draws: list[AffineDraw] | None = None
        self._step_index = 0
        self._batch_items: list | None = None
        self._frame: tuple[int, int] | None = None

    # ---- construction hooks -------------------------------------------------------------
    def build_optimizer(self) -> torch.optim.Optimizer:
        """Adam or AdamW with the paper's default betas."""
        cls = torch.optim.Adam if self.config.optimizer == "adam" else torch.optim.AdamW
        return cls(self.network.parameters(), lr=self.config.lr, weight_decay=self.config.weight_decay)

    # ---- the loop -----------------------------------------------------------------------
    def fit(self) -> TrainingResult:
        """Train (or continue training) to ``config.epochs``; the network then holds the LAST weights."""
        torch.set_num_threads(self.config.threads)
        done = self._resume_or_start()
        resumed_from = done if done > 0 else None
        self.on_train_start()
        for epoch in range(done + 1, self.config.epochs + 1):
            self.current_epoch = epoch
            started = time.perf_counter()
            record: dict = {"epoch": epoch, "lr": float(self.optimizer.param_groups[0]["lr"])}
            record.update(self._train_epoch(epoch))
            if self.val_set is not None and (epoch % self.config.validate_every == 0 or epoch == self.config.epochs):
                record.update(self._validate_epoch())
            self.scheduler.step()
            record["seconds"] = time.perf_counter() - started
            self.history.append(record)
            self._update_best(record, epoch)
            self.save_checkpoint(epoch)
            self.on_epoch_end(record)
        result = TrainingResult(
            epochs_run=len(self.history),
            best_epoch=self.best_epoch,
            best_metric=self.best_metric,
            history=[dict(r) for r in self.history],
            resumed_from=resumed_from,
        )
        self.on_train_end(result)
        return result

    def on_train_start(self) -> None:
        for callback in self.callbacks:
            callback.on_train_start(self)

    def on_epoch_end(self, record: dict) -> None:
        """Called after the epoch's checkpoint is written: logs the record, then the callbacks."""
        shown = " ".join(
            f"{k} {v:.4g}" for k, v in record.items() if k not in ("epoch", "seconds") and isinstance(v, float)
        )
        logger.info("epoch %d/%d %s (%.1f s)", record["epoch"], self.config.epochs, shown, record["seconds"])
        for callback in self.callbacks:
            callback.on_epoch_end(self, record)

    def on_train_end(self, result: TrainingResult) -> None:
        for callback in self.callbacks:
            callback.on_train_end(self, result)

    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimiser step on one batch; returns the step's terms as floats.

        Raises:
            TrainingError: the step returned no "loss", or a non-finite one (naming the
                epoch, the step, the batch's items and every term).
        """
        batch = to_device(batch, self.device, self.channels_last)
        self.optimizer.zero_grad(set_to_none=True)
        with autocast(self.device):
            terms = self.step(self.network, batch)
        if "loss" not in terms:
            raise TrainingError(f"the step function returned {sorted(terms)}, without a 'loss'")
        values = {
            key: float(value.detach()) if isinstance(value, Tensor) else float(value) for key, value in terms.items()
        }
        if not math.isfinite(values["loss"]):
            shown = ", ".join(f"{k}={v}" for k, v in values.items())
            raise TrainingError(
                f"non-finite loss at epoch {self.current_epoch}, step {self._step_index} "
                f"(items {self._batch_items}): {shown}"
            )
        terms["loss"].backward()
        if self.config.grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.network.parameters(), self.config.grad_clip_norm)
        self.optimizer.step()
        return values

    def validation_step(self, batch: dict) -> dict[str, float]:
        """Metrics of one validation batch (no gradients), named "val_<name>"."""
        batch = to_device(batch, self.device, self.channels_last)
        with torch.no_grad(), autocast(self.device):
            if self.validate is not None:
                metrics = self.validate(self.network, batch)
            else:
                metrics = self.step(self.network, batch)
        return {f"val_{key}": float(value) for key, value in metrics.items()}

    def save_checkpoint(self, epoch: int) -> Path | None:
        """Write best.pt (when this epoch improved the monitor), then last.pt; returns last.pt.

        best.pt goes first: a run killed between the two resumes from the previous
        last.pt, re-runs this epoch and writes the same best.pt again.
        """
        if self.workdir is None:
            return None
        self.workdir.mkdir(parents=True, exist_ok=True)
        network_state = self.network.state_dict()
        if self.best_epoch == epoch:
            best = save_checkpoint(
                self.workdir / BEST,
                {
                    "epoch": epoch,
                    "fingerprint": self.fingerprint,
                    "network": network_state,
                    "monitor": self.monitor,
                    "metric": self.best_metric,
                },
            )
            for callback in self.callbacks:
                callback.on_checkpoint(self, best)
        last = save_checkpoint(self.workdir / LAST, self.checkpoint_state(epoch, network_state))
        for callback in self.callbacks:
            callback.on_checkpoint(self, last)
        return last

    def checkpoint_state(self, epoch: int, network_state: dict | None = None) -> dict:
        """Everything an exact resume needs, as tensors and plain values (weights_only loadable)."""
        return {
            "format": 1,
            "epoch": epoch,
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "config": self.config.model_dump(),
            "network": network_state if network_state is not None else self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "history": [dict(r) for r in self.history],
            "best_epoch": self.best_epoch,
            "best_metric": self.best_metric,
            "monitor": self.monitor,
        }

    # ---- internals ----------------------------------------------------------------------
    def _resume_or_start(self) -> int:
        """Load last.pt when it belongs to this run; returns the last completed epoch (0: fresh)."""
        if self.workdir is not None and (self.workdir / LAST).exists():
            path = self.workdir / LAST
            state = load_checkpoint(path, required=LAST_KEYS)
            if state["fingerprint"] == self.fingerprint:
                self._restore(state, path)
                logger.info("resuming %s after epoch %d", path, state["epoch"])
                return int(state["epoch"])
            logger.warning(
                "%s was written for fingerprint %r, this run is %r: removing it and best.pt, starting fresh",
                path,
                state["fingerprint"],
                self.fingerprint,
            )
        self._clear_workdir()
        self.history, self.best_epoch, self.best_metric = [], None, None
        seed_globals(epoch_seed(self.seed, 0))
        return 0

    def _clear_workdir(self) -> None:
        if self.workdir is None or not self.workdir.exists():
            return
        for name in (LAST, BEST):
            if (self.workdir / name).exists():
                (self.workdir / name).unlink()
                logger.info("removed %s of an earlier run", self.workdir / name)
        for leftover in self.workdir.glob(".*.pt.tmp-*"):
            leftover.unlink()

    def _restore(self, state: dict, path: Path) -> None:
        try:
            self.network.load_state_dict(state["network"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"checkpoint {path}: does not fit this network/optimiser ({exc})") from exc
        self.history = [dict(r) for r in state["history"]]
        self.best_epoch = state["best_epoch"]
        self.best_metric = state["best_metric"]
        set_rng_state(state["rng"])

    def _plan_epoch(self, epoch: int) -> None:
        """Draw this epoch's item order and augmentation from the (seed, epoch) generator."""
        generator = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        n = len(self.train_set)
        if self.config.shuffle:
            self.epoch_order = torch.randperm(n, generator=generator).tolist()
        else:
            self.epoch_order = list(range(n))
        if self.augment is None or not self.augment.params.enabled:
            self.epoch_draws = None
            return
        if self._frame is None:  # the working frame is one size for all items; apply refuses others by name
            self._frame = frame_of(self.train_set[0])
        self.epoch_draws = [self.augment.draw(generator, *self._frame) for _ in range(n)]

    def _batches(self, items: EpochItems, epoch: int):
        size = self.config.batch_size
        if self.config.num_workers == 0:
            for start in range(0, len(items), size):
                yield self.collate([items[k] for k in range(start, min(start + size, len(items)))])
            return
        loader = torch.utils.data.DataLoader(
            items,
            batch_size=size,
            shuffle=False,
            num_workers=self.config.num_workers,
            collate_fn=self.collate,
            generator=torch.Generator().manual_seed(epoch_seed(self.seed, epoch)),
            pin_memory=self.device.type == "cuda",
        )
        yield from loader

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self._plan_epoch(epoch)
        self.network.train()
        items = EpochItems(self.train_set, self.epoch_order, self.epoch_draws)
        totals: dict[str, float] = {}
        count = 0
        for step, batch in enumerate(self._batches(items, epoch)):
            self._step_index = step
            self._batch_items = batch.get("item")
            size = batch_size(batch)
            for key, value in self.train_step(batch).items():
                totals[key] = totals.get(key, 0.0) + value * size
            count += size
        return {f"train_{key}": value / count for key, value in totals.items()}

    def _validate_epoch(self) -> dict[str, float]:
        self.network.eval()
        items = EpochItems(self.val_set, list(range(len(self.val_set))), None)
        totals: dict[str, float] = {}
        count = 0
        for batch in self._batches(items, 0):
            size = batch_size(batch)
            for key, value in self.validation_step(batch).items():
                totals[key] = totals.get(key, 0.0) + value * size
            count += size
        self.network.train()
        return {key: value / count for key, value in totals.items()}

    def _update_best(self, record: dict, epoch: int) -> None:
        value = record.get(self.monitor)
        if value is None or not math.isfinite(value):
            return
        if self.best_metric is None:
            better = True
        elif self.monitor_mode == "min":
            better = value < self.best_metric
        else:
            better = value > self.best_metric
        if better:
            self.best_epoch, self.best_metric = epoch, float(value)
