"""Streaming building blocks: the LRU cache, mask shards written and read item by item, the lazy dataset."""

from __future__ import annotations

import numpy as np
import pytest

from denseseg.io.mask_store import mask_rows, read_mask_shard, write_mask_shard
from denseseg.propagation.data import PairDataset
from denseseg.propagation.store import LazyImages, LRUCache, ShardMasks, ShardWriter, write_row_shard
from denseseg.propagation.toy import toy_case
from denseseg.propagation.trainer import normalise_image
from tests.builders import make_trainer

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
        t = make_trainer(3, (4, 8), 0, seed=4, batch_size=3)
        if lazy:
            t.fit(
                PairDataset(items, LazyImages(items, images.__getitem__), masks, 3, (24, 32), cache_items=1), epochs=2
            )
        else:
            t.fit([images[k] for k in items], [masks[k] for k in items], epochs=2)
        return t.predict([images[k] for k in items[:2]])

    assert trained(True).tobytes() == trained(False).tobytes()


def test_item_shards_copy_rows_from_the_first_source_that_holds_them(tmp_path):
    from denseseg.propagation.store import write_item_shards

    masks = {f"i{k}": (np.arange(12).reshape(1, 3, 4) % (k + 2) == 0) for k in range(5)}
    first = ShardWriter(tmp_path / "a", ["s"], 2)
    for k in ("i0", "i1", "i2"):
        first.add(k, masks[k])
    second = ShardWriter(tmp_path / "b", ["s"], 2)
    for k in ("i2", "i3", "i4"):
        second.add(k, ~masks[k])
    sources = [ShardMasks(first.close(), ["s"], (3, 4)), ShardMasks(second.close(), ["s"], (3, 4))]
    assert write_item_shards(tmp_path / "out", ["i4", "i0", "i2"], sources, 2) == 2
    out = {}
    for shard in sorted((tmp_path / "out").glob("shard-*.parquet")):
        out[shard.name] = read_mask_shard(shard, ["s"])
    assert [sorted(v) for v in out.values()] == [["i0", "i4"], ["i2"]]
    assert np.array_equal(out["shard-0000.parquet"]["i4"], ~masks["i4"])  # only the second holds i4
    assert np.array_equal(out["shard-0001.parquet"]["i2"], masks["i2"])  # the first source wins
