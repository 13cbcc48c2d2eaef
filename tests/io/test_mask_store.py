import numpy as np
import pandas as pd
import pytest

from denseseg.io.mask_store import mask_rows, read_confidences, read_mask_shard, write_mask_shard

NAMES = ["a", "b", "c"]


def _masks(seed):
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, 30, 20), bool)
    masks[0, 3:9, 4:15] = rng.random((6, 11)) > 0.3
    masks[1, 5:25, 10:19] = True  # overlaps a
    return masks  # c is empty


def test_round_trip_of_overlapping_masks_with_random_access(tmp_path):
    rows = mask_rows("x", _masks(0), NAMES, confidence=[0.9, 0.5, 0.0]) + mask_rows("y", _masks(1), NAMES)
    assert [r["structure"] for r in rows] == ["a", "b", "a", "b"]  # the empty mask takes no row
    write_mask_shard(tmp_path / "shard-0000.parquet", rows)
    one = read_mask_shard(tmp_path / "shard-0000.parquet", NAMES, items=["y"])
    assert list(one) == ["y"] and np.array_equal(one["y"], _masks(1))
    both = read_mask_shard(tmp_path / "shard-0000.parquet", NAMES)
    assert np.array_equal(both["x"], _masks(0))
    conf = read_confidences(tmp_path / "shard-0000.parquet").to_pandas()
    assert conf.loc[conf.item.eq("x"), "confidence"].tolist() == pytest.approx([0.9, 0.5])


def test_wrong_stack_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="x: masks of shape"):
        mask_rows("x", np.zeros((2, 4, 4), bool), NAMES)


def test_a_subset_of_items_is_copied_sorted_by_item_and_structure(tmp_path):
    from denseseg.io.mask_store import write_item_subset

    rows = mask_rows("y", _masks(1), NAMES) + mask_rows("x", _masks(0), NAMES) + mask_rows("z", _masks(2), NAMES)
    write_mask_shard(tmp_path / "in.parquet", rows)
    assert write_item_subset(tmp_path / "in.parquet", tmp_path / "out.parquet", {"y", "x"}, ["b", "a", "c"])
    table = pd.read_parquet(tmp_path / "out.parquet")
    assert list(zip(table["item"], table["structure"])) == [("x", "b"), ("x", "a"), ("y", "b"), ("y", "a")]
    copied = read_mask_shard(tmp_path / "out.parquet", NAMES)
    assert sorted(copied) == ["x", "y"] and np.array_equal(copied["x"], _masks(0))
    assert not write_item_subset(tmp_path / "in.parquet", tmp_path / "none.parquet", {"w"}, NAMES)
    assert not (tmp_path / "none.parquet").exists()
