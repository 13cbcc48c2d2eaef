"""The propagation loop on a toy problem: rounds, pseudo-labels, records, reproducibility, streaming to shards."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from denseseg.evaluation.segmentation import dice
from denseseg.propagation.refiners import ClassicalRefiner
from denseseg.propagation.rounds import PropagationParams, propagate
from denseseg.propagation.store import LazyImages
from denseseg.propagation.toy import toy_case
from denseseg.propagation.trainer import normalise_image
from tests.builders import project_params

NAMES = ("a", "b")


@pytest.fixture(scope="module")
def case():
    images, masks = toy_case(12, 32, 48, n_structures=2, seed=4)
    items = [f"img{i:02d}" for i in range(12)]
    images = {k: normalise_image(i) for k, i in zip(items, images)}
    truth = dict(zip(items, masks))
    seeds = {k: truth[k] for k in items[:6]}
    return images, seeds, truth


def _config(batch_size: int = 2, **kw) -> PropagationParams:
    """The pipeline's propagation params at toy scale (small network, short rounds), changed where asked."""
    section = project_params("propagate")
    base = {key: section[key] for key in PropagationParams.model_fields}
    base.update(
        rounds=2,
        epochs=20,
        finetune_epochs=4,
        confidence_threshold=0.5,
        network={"channels": (4, 8, 16), "num_res_units": 0, "dropout": 0.0},
        training={**section["training"], "batch_size": batch_size, "lr": 3e-2},
    )
    return PropagationParams(**{**base, **kw})


def _propagate(images, seeds, config, refiner, workdir, chunk_size=64, cache_items=64, evaluator=None):
    return propagate(
        images,
        seeds,
        NAMES,
        config,
        refiner,
        workdir,
        seed=11,
        device="cpu",
        chunk_size=chunk_size,
        cache_items=cache_items,
        evaluator=evaluator,
    )


def test_rounds_accept_confident_pseudo_labels_and_record_each_round(case, tmp_path):
    images, seeds, truth = case
    calls = []

    class Evaluator:
        def __init__(self):
            self.scores = {}

        def append(self, r, item, masks, accepted):
            self.scores.setdefault(r, []).append(dice(masks, truth[item]))

        def aggregate(self, r):
            calls.append(r)
            return {"dice": float(np.mean(self.scores[r])), "n": len(self.scores[r])}

    result = _propagate(images, seeds, _config(), ClassicalRefiner(), tmp_path, evaluator=Evaluator())
    assert calls == [1, 2] and [r.round for r in result.records] == [1, 2]
    assert result.records[0].scores["n"] == 6
    assert set(result.masks) == set(images) - set(seeds)  # seeds keep their manual masks
    first, second = result.records
    assert first.n_pseudo_train == 0 and second.n_pseudo_train == first.n_accepted
    assert second.n_accepted + second.n_rejected == 6
    assert set(result.accepted) | set(result.rejected) == set(result.masks)
    assert second.scores["dice"] > 0.75
    assert all(isinstance(v, str) and v for v in result.rejected.values())
    # only the last round's shards stay on disk; the result reads its masks from them
    assert sorted(p.name for p in tmp_path.iterdir()) == ["round-2"]


def test_seeded_propagation_reproduces_the_same_bytes_for_any_chunk_size(case, tmp_path):
    images, seeds, _ = case
    cfg = _config(rounds=2, epochs=2, finetune_epochs=1, confidence_threshold=0.0)
    refiner = ClassicalRefiner(use_random_walker=False)
    a = _propagate(images, seeds, cfg, refiner, tmp_path / "a")
    b = _propagate(images, seeds, cfg, refiner, tmp_path / "b")
    c = _propagate(images, seeds, cfg, refiner, tmp_path / "c", chunk_size=1)
    assert len(list((tmp_path / "c/round-2").glob("*.parquet"))) == 3  # chunks hold whole batches of 2
    assert a.records[1].n_pseudo_train == a.records[0].n_accepted > 0
    for other in (b, c):
        assert sorted(a.masks) == sorted(other.masks) and a.rejected == other.rejected
        assert all(a.masks[k].tobytes() == other.masks[k].tobytes() for k in a.masks)
        assert all(np.array_equal(a.confidence[k], other.confidence[k], equal_nan=True) for k in a.masks)
    assert sorted(a.masks) == sorted(b.masks)
    assert all(a.masks[k].tobytes() == b.masks[k].tobytes() for k in a.masks)
    assert all(np.array_equal(a.confidence[k], b.confidence[k], equal_nan=True) for k in a.masks)


def test_images_are_read_lazily_one_batch_at_a_time(case, tmp_path):
    images, seeds, _ = case
    live = {"now": 0, "peak": 0}

    def release():
        live["now"] -= 1

    def load(k):  # a fresh array per read, counted until it (and every view of it) is freed
        array = np.array(images[k])
        live["now"] += 1
        live["peak"] = max(live["peak"], live["now"])
        weakref.finalize(array, release)
        return array

    lazy = LazyImages(sorted(images), load)
    cfg = _config(rounds=1, epochs=1, batch_size=2)
    _propagate(lazy, seeds, cfg, ClassicalRefiner(use_random_walker=False), tmp_path, cache_items=0)
    assert 1 <= live["peak"] <= 4 and live["now"] == 0, live  # a batch at most, never the whole set of 12


def test_bad_inputs_are_clear_errors(case, tmp_path):
    images, seeds, _ = case
    with pytest.raises(ValueError, match="at least one seed"):
        _propagate(images, {}, _config(), ClassicalRefiner(), tmp_path)
    with pytest.raises(ValueError, match="without an image"):
        _propagate({}, seeds, _config(), ClassicalRefiner(), tmp_path)
