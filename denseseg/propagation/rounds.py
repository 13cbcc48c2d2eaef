"""The propagation loop: seeds -> network -> refined predictions -> confident pseudo-labels -> again.

Round r trains on the seeds plus the pseudo-labels accepted in round r-1
(warm-starting from the previous weights by default, which is cheaper than
training from scratch and forgets nothing), predicts every unlabelled image,
refines it, scores its confidence and keeps the confident ones. The seeds keep
their manual masks throughout. Each round leaves a record (counts, loss, time,
and whatever the ``evaluate`` hook measures, e.g. Dice against a phantom's truth).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from denseseg.propagation.confidence import decide, image_confidence
from denseseg.propagation.refiners import Refiner
from denseseg.propagation.trainer import SegmentationTrainer, TrainConfig

# progress(round, phase, done, total): phase is "train" (epochs) or "predict" (images)
Progress = Callable[[int, str, int, int], None]
# evaluate(round, masks of unlabelled items, accepted items) -> scores for the round's record
Evaluate = Callable[[int, Mapping[str, np.ndarray], set], dict]


@dataclass(frozen=True)
class PropagationConfig:
    rounds: int = 2
    epochs: int = 100  # first round (and every round without warm start)
    finetune_epochs: int = 40  # rounds 2.. when warm-starting
    warm_start: bool = True
    channels: tuple[int, ...] = (8, 16, 32, 64, 128)
    num_res_units: int = 0
    batch_size: int = 4
    lr: float = 2e-2
    augment: bool = True
    confidence_threshold: float = 0.6
    prob_threshold: float = 0.5
    expected_fraction: float = 1.0  # a bone present in at least this fraction of seeds must be predicted
    predict_batch: int = 16
    seed: int = 0
    device: str = "auto"


@dataclass
class RoundRecord:
    round: int
    n_seeds: int
    n_pseudo_train: int
    n_predicted: int
    n_accepted: int
    n_rejected: int
    train_loss: float
    seconds: float
    scores: dict = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PropagationResult:
    masks: dict[str, np.ndarray]  # final refined masks of the unlabelled items (S, H, W) bool
    confidence: dict[str, np.ndarray]  # (S,) per-bone score, NaN for an absent bone
    rejected: dict[str, str]  # unlabelled item -> reason it is not a pseudo-label in the last round
    records: list[RoundRecord]
    refiner: str

    @property
    def accepted(self) -> list[str]:
        return sorted(k for k in self.masks if k not in self.rejected)


def expected_bones(seeds: Mapping[str, np.ndarray], fraction: float) -> np.ndarray:
    """Bones present in at least ``fraction`` of the seed masks."""
    present = np.stack([m.reshape(m.shape[0], -1).any(1) for m in seeds.values()])
    return present.mean(0) >= fraction - 1e-9


def propagate(
    images: Mapping[str, np.ndarray],
    seeds: Mapping[str, np.ndarray],
    structures: Sequence[str],
    config: PropagationConfig,
    refiner: Refiner,
    evaluate: Evaluate | None = None,
    progress: Progress | None = None,
    log: logging.Logger | None = None,
) -> PropagationResult:
    """Run ``config.rounds`` rounds; ``images`` are normalised (H, W) float32 arrays of one size."""
    log = log or logging.getLogger(__name__)
    if not seeds:
        raise ValueError("label propagation needs at least one seed annotation")
    missing = sorted(set(seeds) - set(images))
    if missing:
        raise ValueError(f"seed(s) without an image: {', '.join(missing[:5])}")
    if config.rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {config.rounds}")
    n_struct = len(structures)
    expected = expected_bones(seeds, config.expected_fraction)
    seed_items = sorted(seeds)
    unlabelled = sorted(k for k in images if k not in seeds)
    pseudo: dict[str, np.ndarray] = {}
    previous: dict[str, np.ndarray] = {}
    confidence: dict[str, np.ndarray] = {}
    rejected: dict[str, str] = {}
    records: list[RoundRecord] = []
    trainer: SegmentationTrainer | None = None
    for r in range(1, config.rounds + 1):
        started = time.perf_counter()
        fresh = trainer is None or not config.warm_start
        if fresh:
            train_cfg = TrainConfig(
                epochs=config.epochs,
                batch_size=config.batch_size,
                lr=config.lr,
                augment=config.augment,
                seed=config.seed + 7919 * (r - 1),
                device=config.device,
            )
            trainer = SegmentationTrainer(n_struct, config.channels, config.num_res_units, train_cfg)
        epochs = config.epochs if fresh else config.finetune_epochs
        train_items = seed_items + sorted(pseudo)
        log.info(
            "round %d/%d: training on %d seeds + %d pseudo-labels for %d epochs (%s)",
            r, config.rounds, len(seed_items), len(pseudo), epochs, trainer.device,
        )
        callback = (lambda e, n, loss, r=r: progress(r, "train", e, n)) if progress else None
        losses = trainer.fit(
            [images[k] for k in train_items],
            [seeds[k] if k in seeds else pseudo[k] for k in train_items],
            epochs=epochs,
            callback=callback,
        )
        masks: dict[str, np.ndarray] = {}
        new_pseudo: dict[str, np.ndarray] = {}
        rejected = {}
        for start in range(0, len(unlabelled), config.predict_batch):
            chunk = unlabelled[start : start + config.predict_batch]
            probs = trainer.predict([images[k] for k in chunk])
            for k, p in zip(chunk, probs):
                refined = refiner.refine(images[k], p)
                conf = image_confidence(p, refined, previous.get(k), config.prob_threshold)
                reason = decide(conf, config.confidence_threshold, structures, expected)
                masks[k] = refined
                confidence[k] = conf.scores
                if reason is None:
                    new_pseudo[k] = refined
                else:
                    rejected[k] = reason
            if progress:
                progress(r, "predict", min(start + config.predict_batch, len(unlabelled)), len(unlabelled))
        pseudo, previous = new_pseudo, masks
        record = RoundRecord(
            round=r,
            n_seeds=len(seed_items),
            n_pseudo_train=len(train_items) - len(seed_items),
            n_predicted=len(unlabelled),
            n_accepted=len(new_pseudo),
            n_rejected=len(rejected),
            train_loss=float(losses[-1]) if losses else float("nan"),
            seconds=0.0,
        )
        if evaluate is not None:
            record.scores = evaluate(r, masks, set(new_pseudo))
        record.seconds = round(time.perf_counter() - started, 3)
        records.append(record)
        log.info("round %d: %d of %d unlabelled images accepted (%.1f s)", r, len(new_pseudo), len(unlabelled), record.seconds)
    return PropagationResult(
        masks=previous, confidence=confidence, rejected=rejected, records=records, refiner=getattr(refiner, "name", "?")
    )
