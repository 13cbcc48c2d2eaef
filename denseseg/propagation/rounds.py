"""The propagation loop: seeds -> network -> refined predictions -> confident pseudo-labels -> again.

Round r trains on the seeds plus the pseudo-labels accepted in round r-1
(warm-starting from the previous weights by default, which is cheaper than
training from scratch and forgets nothing), predicts every unlabelled image,
refines it, scores its confidence and keeps the confident ones. The seeds keep
their manual masks throughout. Each round leaves a record (counts, loss, time,
and whatever the ``evaluator`` measures, e.g. Dice against a phantom's truth).

Streamed: memory does not grow with the number of images. ``images`` and
``seeds`` are mappings that may read from disk on access; training reads one
batch at a time (``PairDataset``); prediction runs over the unlabelled images
in chunks of ``chunk_size`` and writes each chunk's refined masks and
confidences to a mask-store shard in ``workdir/round-<r>/`` straight away. Only
per-image summaries (confidence per bone, the reason for an exclusion) stay in
memory; the next round reads its pseudo-labels (and the previous masks for
round agreement) back from those shards. The result's ``masks`` is a mapping
over the last round's shards.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from denseseg.propagation.confidence import decide, image_confidence
from denseseg.propagation.data import PairDataset
from denseseg.propagation.network import NetworkParams
from denseseg.propagation.refiners import Refiner
from denseseg.propagation.store import ShardMasks, ShardWriter
from denseseg.propagation.trainer import SegmentationTrainer, TrainConfig

# progress(round, phase, done, total): phase is "train" (epochs) or "predict" (images)
Progress = Callable[[int, str, int, int], None]


class Evaluator(Protocol):
    """Scores a round one image at a time (e.g. against a phantom's truth), keeping sums, not masks.

    ``denseseg.evaluation.segmentation_scores.PropagationScores`` is one.
    """

    def append(self, round: int, item: str, masks: np.ndarray, accepted: bool) -> None:
        """One unlabelled image's refined masks (S, H, W) and whether it became a pseudo-label."""

    def aggregate(self, round: int) -> dict:
        """The round's scores, for its record."""


class PropagationParams(BaseModel):
    """The rounds of label propagation (the ``propagate`` section of ``params.yaml``, less the run's settings).

    Args:
        rounds: train, predict, refine and accept this many times.
        epochs: epochs of the first round (and of every round without warm start).
        finetune_epochs: epochs of the later rounds when warm-starting.
        warm_start: later rounds continue from the previous round's weights.
        confidence_threshold: an image becomes a pseudo-label when its weakest bone is at least this confident.
        prob_threshold: the probability a pixel needs to be bone (prediction, refinement, confidence).
        expected_fraction: bones present in this share of the seeds must be predicted, else the image is excluded.
        network: the UNet.
        training: how it is trained.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rounds: int = Field(ge=1)
    epochs: int = Field(ge=1)
    finetune_epochs: int = Field(ge=0)
    warm_start: bool
    confidence_threshold: float = Field(ge=0, le=1)
    prob_threshold: float = Field(gt=0, lt=1)
    expected_fraction: float = Field(ge=0, le=1)
    network: NetworkParams
    training: TrainConfig


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
    epoch_losses: list[float] = field(default_factory=list)  # per epoch (the plot); not in rounds.parquet

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PropagationResult:
    items: list[str]  # the unlabelled items, sorted
    masks: ShardMasks  # final refined masks of the unlabelled items (S, H, W) bool, read from the last round's shards
    confidence: dict[str, np.ndarray]  # (S,) per-bone score, NaN for an absent bone
    rejected: dict[str, str]  # unlabelled item -> reason it is not a pseudo-label in the last round
    records: list[RoundRecord]
    refiner: str

    @property
    def accepted(self) -> list[str]:
        return sorted(k for k in self.items if k not in self.rejected)


def expected_bones(seeds: Iterable[np.ndarray], fraction: float) -> np.ndarray:
    """Bones present in at least ``fraction`` of the seed masks (read one at a time)."""
    present = np.stack([np.asarray(m).reshape(m.shape[0], -1).any(1) for m in seeds])
    return present.mean(0) >= fraction - 1e-9


class _Labels(Mapping):
    """Seeds first, then pseudo-labels: the label source of one round's training set."""

    def __init__(self, seeds: Mapping[str, np.ndarray], pseudo: Mapping[str, np.ndarray]):
        self.seeds, self.pseudo = seeds, pseudo

    def __getitem__(self, item):
        return self.seeds[item] if item in self.seeds else self.pseudo[item]

    def __iter__(self):
        yield from self.seeds
        yield from (k for k in self.pseudo if k not in self.seeds)

    def __len__(self):
        return sum(1 for _ in self)


def propagate(
    images: Mapping[str, np.ndarray],
    seeds: Mapping[str, np.ndarray],
    structures: Sequence[str],
    config: PropagationParams,
    refiner: Refiner,
    workdir: str | Path,
    *,
    seed: int,
    device: str,
    chunk_size: int,
    cache_items: int,
    evaluator: Evaluator | None = None,
    progress: Progress | None = None,
    log: logging.Logger | None = None,
) -> PropagationResult:
    """Run ``config.rounds`` rounds; ``images`` are normalised (H, W) arrays of one size.

    The refined masks of every round go to mask-store shards under ``workdir``
    (the last round's stay there: ``result.masks`` reads them).

    Args:
        images: {item: normalised (H, W) image}, seeds included (may read from disk on access).
        seeds: {item: (S, H, W) bool} the manual masks.
        structures: the mask channels.
        config: the rounds' parameters.
        refiner: turns a prediction into masks.
        workdir: where each round's shards go.
        seed: round r's network starts from ``seed + 7919 * (r - 1)`` (with warm start: round 1's).
        device: auto, cpu or cuda.
        chunk_size: images per prediction shard (rounded up to a multiple of the batch size).
        cache_items: training pairs kept in memory (packed masks); the rest is read per batch.
        evaluator: scores each round (e.g. ``PropagationScores``).
        progress: told how far training and prediction are.
        log: where the rounds are logged.
    """
    log = log or logging.getLogger(__name__)
    if not len(seeds):
        raise ValueError("label propagation needs at least one seed annotation")
    seed_items = sorted(seeds)
    missing = [k for k in seed_items if k not in images]
    if missing:
        raise ValueError(f"seed(s) without an image: {', '.join(missing[:5])}")
    if config.rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {config.rounds}")
    workdir = Path(workdir)
    n_struct = len(structures)
    expected = expected_bones((seeds[k] for k in seed_items), config.expected_fraction)
    shape = tuple(images[seed_items[0]].shape)
    seed_set = set(seed_items)
    unlabelled = sorted(k for k in images if k not in seed_set)
    # chunks hold whole prediction batches, so the batches (and the bytes) do not depend on the chunk size
    batch_size = config.training.batch_size
    chunk = math.ceil(max(chunk_size, 1) / batch_size) * batch_size
    pseudo: list[str] = []
    previous: ShardMasks | None = None
    confidence: dict[str, np.ndarray] = {}
    rejected: dict[str, str] = {}
    records: list[RoundRecord] = []
    trainer: SegmentationTrainer | None = None
    for r in range(1, config.rounds + 1):
        started = time.perf_counter()
        fresh = trainer is None or not config.warm_start
        if fresh:
            round_seed = seed + 7919 * (r - 1)
            trainer = SegmentationTrainer(n_struct, config.network, config.training, seed=round_seed, device=device)
        epochs = config.epochs if fresh else config.finetune_epochs
        train_items = seed_items + pseudo
        log.info(
            "round %d/%d: training on %d seeds + %d pseudo-labels for %d epochs (%s)",
            r,
            config.rounds,
            len(seed_items),
            len(pseudo),
            epochs,
            trainer.device,
        )
        callback = (lambda e, n, loss, r=r: progress(r, "train", e, n)) if progress else None
        labels = _Labels(seeds, previous) if previous is not None else seeds
        dataset = PairDataset(train_items, images, labels, n_struct, shape, cache_items)
        losses = trainer.fit(dataset, epochs=epochs, callback=callback)
        del dataset
        writer = ShardWriter(workdir / f"round-{r}", structures, chunk)
        new_pseudo: list[str] = []
        rejected = {}
        for start in range(0, len(unlabelled), batch_size):
            batch = unlabelled[start : start + batch_size]
            batch_images = [images[k] for k in batch]
            probs = trainer.predict(batch_images)
            for k, image, p in zip(batch, batch_images, probs):
                refined = refiner.refine(image, p)
                before = previous[k] if previous is not None else None
                conf = image_confidence(p, refined, before, config.prob_threshold)
                reason = decide(conf, config.confidence_threshold, structures, expected)
                confidence[k] = conf.scores
                writer.add(k, refined, conf.scores)
                if reason is None:
                    new_pseudo.append(k)
                else:
                    rejected[k] = reason
                if evaluator is not None:
                    evaluator.append(r, k, refined, reason is None)
            del probs, batch_images
            done = min(start + batch_size, len(unlabelled))
            if progress and (done % chunk == 0 or done == len(unlabelled)):
                progress(r, "predict", done, len(unlabelled))
        index = writer.close()
        if previous is not None:
            shutil.rmtree(workdir / f"round-{r - 1}", ignore_errors=True)
        previous = ShardMasks(index, structures, shape)
        record = RoundRecord(
            round=r,
            n_seeds=len(seed_items),
            n_pseudo_train=len(train_items) - len(seed_items),
            n_predicted=len(unlabelled),
            n_accepted=len(new_pseudo),
            n_rejected=len(rejected),
            train_loss=float(losses[-1]) if losses else float("nan"),
            seconds=0.0,
            epoch_losses=[float(x) for x in losses],
        )
        pseudo = new_pseudo
        if evaluator is not None:
            record.scores = evaluator.aggregate(r)
        record.seconds = round(time.perf_counter() - started, 3)
        records.append(record)
        log.info(
            "round %d: %d of %d unlabelled images accepted (%.1f s)",
            r,
            len(new_pseudo),
            len(unlabelled),
            record.seconds,
        )
    return PropagationResult(
        items=unlabelled,
        masks=previous,
        confidence=confidence,
        rejected=rejected,
        records=records,
        refiner=getattr(refiner, "name", "?"),
    )
