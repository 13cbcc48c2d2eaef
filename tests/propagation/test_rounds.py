"""The propagation loop on a toy problem: rounds, pseudo-labels, records, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from denseseg.evaluation.segmentation import dice
from denseseg.propagation.refiners import ClassicalRefiner
from denseseg.propagation.rounds import PropagationConfig, propagate
from denseseg.propagation.toy import toy_case
from denseseg.propagation.trainer import normalise_image

NAMES = ("a", "b")


@pytest.fixture(scope="module")
def case():
    images, masks = toy_case(12, 32, 48, n_structures=2, seed=4)
    items = [f"img{i:02d}" for i in range(12)]
    images = {k: normalise_image(i) for k, i in zip(items, images)}
    truth = dict(zip(items, masks))
    seeds = {k: truth[k] for k in items[:6]}
    return images, seeds, truth


def _config(**kw):
    base = dict(rounds=2, epochs=20, finetune_epochs=4, channels=(4, 8, 16), num_res_units=0, batch_size=2, lr=3e-2,
                confidence_threshold=0.5, seed=11, device="cpu")
    return PropagationConfig(**{**base, **kw})


def test_rounds_accept_confident_pseudo_labels_and_record_each_round(case):
    images, seeds, truth = case
    calls = []

    def evaluate(r, masks, accepted):
        calls.append(r)
        return {"dice": float(np.mean([dice(masks[k], truth[k]) for k in masks]))}

    result = propagate(images, seeds, NAMES, _config(), ClassicalRefiner(), evaluate=evaluate)
    assert calls == [1, 2] and [r.round for r in result.records] == [1, 2]
    assert set(result.masks) == set(images) - set(seeds)  # seeds keep their manual masks
    first, second = result.records
    assert first.n_pseudo_train == 0 and second.n_pseudo_train == first.n_accepted
    assert second.n_accepted + second.n_rejected == 6
    assert set(result.accepted) | set(result.rejected) == set(result.masks)
    assert second.scores["dice"] > 0.75
    assert all(isinstance(v, str) and v for v in result.rejected.values())


def test_seeded_propagation_reproduces_the_same_bytes(case):
    images, seeds, _ = case
    cfg = _config(rounds=1, epochs=2)
    a = propagate(images, seeds, NAMES, cfg, ClassicalRefiner(use_random_walker=False))
    b = propagate(images, seeds, NAMES, cfg, ClassicalRefiner(use_random_walker=False))
    assert sorted(a.masks) == sorted(b.masks)
    assert all(a.masks[k].tobytes() == b.masks[k].tobytes() for k in a.masks)
    assert all(np.array_equal(a.confidence[k], b.confidence[k], equal_nan=True) for k in a.masks)


def test_bad_inputs_are_clear_errors(case):
    images, seeds, _ = case
    with pytest.raises(ValueError, match="at least one seed"):
        propagate(images, {}, NAMES, _config(), ClassicalRefiner())
    with pytest.raises(ValueError, match="without an image"):
        propagate({}, seeds, NAMES, _config(), ClassicalRefiner())
