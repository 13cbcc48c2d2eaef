import numpy as np
import pytest

from denseseg.anatomy import JSRT
from denseseg.shape.landmark_table import split_structures
from denseseg.uv import cache
from denseseg.uv.maps import dense_uv, item_crops


def _write(root, template, cases, dtype="float32", per_shard=2):
    index, chunk = [], []
    for i, (masks, flat) in enumerate(cases):
        crops, _ = item_crops(masks, flat, template, extrapolate=True)
        chunk.append(
            (
                f"case{i}",
                cache.item_rows(f"case{i}", 256, 256, crops, split_structures(flat, JSRT), JSRT.structures, dtype),
            )
        )
    for n in range(0, len(chunk), per_shard):
        part = chunk[n : n + per_shard]
        groups = cache.write_shard(root / f"shard-{n // per_shard:04d}.parquet", [rows for _, rows in part])
        index += [
            {
                "item": it,
                "shard": f"shard-{n // per_shard:04d}.parquet",
                "row_group": g,
                "height": 256,
                "width": 256,
                "n_structures": len(rows),
            }
            for (it, rows), g in zip(part, groups)
        ]
    cache.write_meta(root, "jsrt", "cartesian", dtype, index)


def test_round_trip_and_random_access(tmp_path, jsrt_shapes):
    template, cases = jsrt_shapes
    _write(tmp_path, template, cases[:5])
    reader = cache.UVCache(tmp_path)
    assert len(reader) == 5 and len(list(tmp_path.glob("shard-*"))) == 3
    masks, flat = cases[3]
    crops, _ = item_crops(masks, flat, template, extrapolate=True)
    uv, m = dense_uv(crops, JSRT.structures, 256, 256)
    got = reader.read("case3")
    assert np.array_equal(got["masks"], m) and np.array_equal(got["uv"], uv, equal_nan=True)
    assert np.allclose(got["landmarks"], flat, atol=1e-4) and got["present"].all()
    assert reader.read(0)["item"] == "case0"
    with pytest.raises(KeyError):
        reader.read("nope")


def test_float16_is_smaller_and_close(tmp_path, jsrt_shapes):
    template, cases = jsrt_shapes
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write(tmp_path / "a", template, cases[:2])
    _write(tmp_path / "b", template, cases[:2], "float16")
    a, b = cache.UVCache(tmp_path / "a"), cache.UVCache(tmp_path / "b")
    assert b.bytes_on_disk() < a.bytes_on_disk()
    assert np.nanmax(np.abs(a.read(1)["uv"] - b.read(1)["uv"])) < 1e-3


def test_dataloader_with_workers(tmp_path, jsrt_shapes):
    import torch

    template, cases = jsrt_shapes
    _write(tmp_path, template, cases[:4])
    ds = cache.UVCacheDataset(tmp_path)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert batches[0]["uv"].shape == (2, 5, 2, 256, 256) and batches[1]["item"] == ["case2", "case3"]
