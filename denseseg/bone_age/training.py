"""Training of the ensemble's members through the shared ``denseseg.training.Trainer``.

Each member is one ``Trainer.fit`` of a fresh ``BoneAgeNet``: cross entropy over
the age buckets, the optimiser, schedule, seeded shuffling and the non-finite
loss check (a ``TrainingError`` naming the epoch and the items) are the shared
loop's. Members differ by their seed only: member m is seeded from
``(seed, m)`` for its initial weights and its batches. Without a checkpoint
folder the best epoch's weights (by the validation monitor; never the test
split) are kept in memory by a callback and loaded at the end.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from denseseg.anatomy import Anatomy
from denseseg.bone_age.buckets import AgeBuckets
from denseseg.bone_age.config import BoneAgeParams
from denseseg.bone_age.features import bone_inputs
from denseseg.bone_age.model import BoneAgeModel, build_network
from denseseg.training.config import TrainingConfig
from denseseg.training.loop import Callback, Trainer, TrainingResult

# progress(members done, members in all, message)
MemberProgress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class AgeSamples:
    """Images with landmarks and a target age.

    Attributes:
        items: one name per image (an image may appear twice, with true and with predicted landmarks).
        landmarks: (n, N, 2) at the working resolution, NaN for a missing bone.
        months: (n,) target ages in months.
    """

    items: list[str]
    landmarks: np.ndarray
    months: np.ndarray

    def __post_init__(self):
        if not (len(self.items) == len(self.landmarks) == len(self.months)):
            raise ValueError(
                f"{len(self.items)} items, {len(self.landmarks)} landmark sets and {len(self.months)} ages differ"
            )
        months = np.asarray(self.months, np.float64)
        bad = [self.items[i] for i in np.flatnonzero(~np.isfinite(months) | (months < 0))]
        if bad:
            raise ValueError(f"age missing or negative for item(s) {', '.join(bad[:5])}")

    def __len__(self) -> int:
        return len(self.items)

    @staticmethod
    def concat(*parts: AgeSamples) -> AgeSamples:
        return AgeSamples(
            [it for p in parts for it in p.items],
            np.concatenate([p.landmarks for p in parts]),
            np.concatenate([np.asarray(p.months, np.float64) for p in parts]),
        )


def member_seed(seed: int, member: int) -> int:
    """A 32-bit seed of member ``member`` of the ensemble of ``seed``."""
    return int(np.random.SeedSequence([seed, member]).generate_state(1, dtype=np.uint32)[0])


def trainer_items(samples: AgeSamples, anatomy: Anatomy, params: BoneAgeParams, height: int) -> list[dict]:
    """The items ``Trainer`` batches: points, mask, bucket target and age per image."""
    inputs = bone_inputs(samples.landmarks, anatomy, params.max_points, float(height))
    buckets = AgeBuckets.covering(params.bucket_months, params.max_months)
    targets = buckets.index(samples.months)
    return [
        {
            "item": samples.items[i],
            "points": inputs.points[i],
            "mask": inputs.mask[i],
            "target": int(targets[i]),
            "months": float(samples.months[i]),
        }
        for i in range(len(samples))
    ]


@contextlib.contextmanager
def _quiet_epochs() -> Iterator[None]:
    """The loop logs every epoch; for dozens of small members the per-member progress says enough."""
    logger = logging.getLogger("denseseg.training.loop")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


class _KeepBest(Callback):
    """Copies the weights of the epoch that improved the monitor (the trainer writes no checkpoint here)."""

    def __init__(self):
        self.state: dict | None = None

    def on_epoch_end(self, trainer, record):
        if trainer.best_epoch == record["epoch"]:
            self.state = {k: v.detach().clone() for k, v in trainer.network.state_dict().items()}


def _step(network, batch) -> dict:
    logits = network(batch["points"], batch["mask"]).float()
    return {"loss": F.cross_entropy(logits, batch["target"])}


def train_ensemble(
    params: BoneAgeParams,
    training: TrainingConfig,
    train: AgeSamples,
    val: AgeSamples | None,
    *,
    anatomy: Anatomy,
    height: int,
    width: int,
    seed: int,
    info: dict | None = None,
    progress: MemberProgress | None = None,
) -> tuple[BoneAgeModel, list[TrainingResult]]:
    """Train ``params.members`` members; returns the ensemble and each member's training result.

    Args:
        params: network, buckets, ensemble size and validation monitor.
        training: epochs, batch size, optimiser, device, threads of each member's run.
        train: training images (true and predicted landmarks may both be there).
        val: validation images picking each member's best epoch (None or empty: the last epoch is kept).
        anatomy: the landmarks' anatomy.
        height: working image height (the landmarks' frame and the coordinate scale).
        width: working image width.
        seed: the ensemble's seed; member m uses ``member_seed(seed, m)``.
        info: facts stored with the model.
        progress: called after each member.

    Raises:
        denseseg.training.TrainingError: a member's loss became NaN or infinite.
    """
    buckets = AgeBuckets.covering(params.bucket_months, params.max_months)
    train_items = trainer_items(train, anatomy, params, height)
    val_items = trainer_items(val, anatomy, params, height) if val is not None and len(val) else None

    def validate(network, batch) -> dict:
        logits = network(batch["points"], batch["mask"]).float()
        months = buckets.decode(logits).to(batch["months"].dtype)
        return {
            "loss": F.cross_entropy(logits, batch["target"]),
            "mae_months": (months - batch["months"]).abs().mean(),
        }

    members, results = [], []
    for m in range(params.members):
        seed_m = member_seed(seed, m)
        torch.manual_seed(seed_m)
        network = build_network(anatomy, params)
        keep = _KeepBest()
        trainer = Trainer(
            network,
            _step,
            training,
            seed=seed_m,
            train_set=train_items,
            val_set=val_items,
            validate=validate if val_items else None,
            monitor=params.monitor if val_items else "train_loss",
            monitor_mode="min",
            callbacks=[keep],
        )
        with _quiet_epochs():
            result = trainer.fit()
        if val_items and keep.state is not None:
            network.load_state_dict(keep.state)
        members.append(network.cpu().eval())
        results.append(result)
        if progress is not None:
            progress(m + 1, params.members, f"member {m + 1}/{params.members}: best epoch {result.best_epoch}")
    facts = {**(info or {}), "best_epochs": [r.best_epoch for r in results]}
    return BoneAgeModel(anatomy, height, width, params, members, facts), results
