"""Streaming building blocks: the LRU cache, mask shards written and read item by item, the lazy dataset."""

from __future__ import annotations

import numpy as np
import pytest

from denseseg.io.mask_store import mask_rows, read_mask_shard, write_mask_shard
from denseseg.propagation.data import PairDataset
from denseseg.propagation.store import LazyImages, LRUCache, ShardMasks, ShardWriter, write_row_shard
from denseseg.propagation.toy import toy_case
from denseseg.propagation.trainer import SegmentationTrainer, TrainConfig, normalise_image

NAMES = ("a", "b", "c")


@pytest.fixture(scope="module")
def toy():
    images, masks = toy_case(7, 24, 32, n_structures=3, seed=2)
    masks[3, 1] = False  # one image without bone b, one without any bone
    masks[5] = False
    items = [f"img{i}" for i in range(7)]
    return items, {k: normalise_image(i) for k, i in zip(items, images)}, dict(zip(items, masks))


def test_lru_cache_keeps_the_most_recent_values():
    cache, loads = LRUCache(2), []
    get = lambda k: cache.get(k, lambda: loads.append(k) or k * 10)  # noqa: E731
    assert [get(1), get(2), get(1), get(3), get(1), get(2)] == [10, 20, 10, 30, 10, 20]
    assert loads == [1, 2, 3, 2] and len(cache) == 2
    assert LRUCache(0).get("x", lambda: 5) == 5


def test_shard_writer_and_reader_round_trip(toy, tmp_path):
    items, _, masks = toy
    writer = ShardWriter(tmp_path, NAMES, size=3)
    for k in items:
        writer.add(k, masks[k], np.arange(3.0))
    index = writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "chunk-0000.parquet",
        "chunk-0001.parquet",
        "chunk-0002.parquet",
    ]
    assert index["img6"].name == "chunk-0002.parquet"
    store = ShardMasks(index, NAMES, (24, 32), cache_shards=1)
    assert set(store) == set(items) and "img9" not in store
    for k in reversed(items):
        assert store[k].tobytes() == masks[k].tobytes()
    assert not store["img5"].any() and store["img5"].shape == (3, 24, 32)  # no rows: all empty
    with pytest.raises(KeyError):
        store["img9"]


def test_copied_rows_give_the_same_bytes_as_encoded_masks(toy, tmp_path):
    items, _, masks = toy
    writer = ShardWriter(tmp_path / "w", NAMES, size=2)
    for k in items:
        writer.add(k, masks[k], np.array([0.5, 0.25, 1.0]))
    store = ShardMasks(writer.close(), NAMES, (24, 32))
    order = ["img4", "img0", "img5", "img3"]
    write_row_shard(tmp_path / "copied.parquet", [store.rows(k) for k in order])
    write_mask_shard(
        tmp_path / "direct.parquet", [r for k in order for r in mask_rows(k, masks[k], NAMES, [0.5, 0.25, 1.0])]
    )
    assert (tmp_path / "copied.parquet").read_bytes() == (tmp_path / "direct.parquet").read_bytes()
    write_row_shard(tmp_path / "empty.parquet", [])
    write_mask_shard(tmp_path / "empty-direct.parquet", [])
    assert (tmp_path / "empty.parquet").read_bytes() == (tmp_path / "empty-direct.parquet").read_bytes()
    assert read_mask_shard(tmp_path / "copied.parquet", NAMES).keys() == {"img4", "img0", "img3"}


def test_pair_dataset_reads_lazily_and_caches_a_bounded_number(toy):
    items, images, masks = toy
    reads = []
    lazy = LazyImages(items, lambda k: reads.append(k) or images[k])
    data = PairDataset(items, lazy, masks, 3, (24, 32), cache_items=2)
    assert not reads
    for i in [0, 1, 0, 2, 0, 1]:
        image, mask = data[i]
        assert image is images[items[i]] and mask.dtype == bool and mask.tobytes() == masks[items[i]].tobytes()
    assert reads == ["img0", "img1", "img2", "img1"]
    bad = PairDataset(["img0"], {"img0": np.zeros((5, 5), np.float32)}, masks, 3, (24, 32))
    with pytest.raises(ValueError, match="do not match the training size"):
        bad[0]


def test_training_from_a_lazy_dataset_matches_training_from_arrays(toy):
    items, images, masks = toy

    def trained(lazy: bool):
        t = SegmentationTrainer(3, (4, 8), 0, TrainConfig(epochs=2, batch_size=3, seed=4))
        if lazy:
            t.fit(PairDataset(items, LazyImages(items, images.__getitem__), masks, 3, (24, 32), cache_items=1))
        else:
            t.fit([images[k] for k in items], [masks[k] for k in items])
        return t.predict([images[k] for k in items[:2]])

    assert trained(True).tobytes() == trained(False).tobytes()
