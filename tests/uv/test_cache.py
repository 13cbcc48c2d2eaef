import json

import numpy as np
import pytest

from denseseg.anatomy import JSRT, WRIST
from denseseg.shape.landmark_table import split_structures
from denseseg.shape.synthetic import wrist_cases
from denseseg.shape.template import build_template
from denseseg.uv import cache
from denseseg.uv.cache_writer import write_numbered_shard
from denseseg.uv.maps import dense_uv, item_crops

SPLITS = ("train", "val", "test")


def _image(i: int, height: int, width: int, image_max: int) -> np.ndarray:
    """A seeded integer image spanning 0..image_max (both ends present)."""
    image = np.random.default_rng(i).integers(0, image_max + 1, size=(height, width)).astype(np.uint16)
    image.flat[0], image.flat[1] = 0, image_max
    return image


def _write(root, template, cases, dtype="float32", per_shard=2, image_max=4095, size=(256, 256)):
    """A v2 cache through the writer API: split i % 3, mm_per_px 0.5 + i / 10, all landmarks used."""
    anatomy = {"jsrt": JSRT, "wrist": WRIST}[template.anatomy]
    height, width = size
    index, chunk = [], []
    for i, (masks, flat) in enumerate(cases):
        crops, _ = item_crops(masks, flat, template, extrapolate=True)
        rows = cache.item_rows(
            f"case{i}", height, width, crops, split_structures(flat, anatomy), anatomy.structures, dtype
        )
        chunk.append((f"case{i}", rows, _image(i, height, width, image_max), i))
    for n in range(0, len(chunk), per_shard):
        part = chunk[n : n + per_shard]
        rows_of_part = [
            {
                "item": it,
                "split": SPLITS[i % 3],
                "mm_per_px": 0.5 + i / 10,
                "height": height,
                "width": width,
                "n_structures": len(rows),
            }
            for it, rows, _, i in part
        ]
        # the stage's writer: it names the shard's files and fills shard / row group columns in place
        write_numbered_shard(
            root, n // per_shard, [rows for _, rows, _, _ in part], [(it, im) for it, _, im, _ in part], rows_of_part
        )
        index += rows_of_part
    used = np.ones(anatomy.n_landmarks, bool)
    cache.write_meta(
        root,
        anatomy=template.anatomy,
        mode="cartesian",
        uv_dtype=dtype,
        index_rows=index,
        landmark_uv=cache.landmark_uv_frame(anatomy, template.flat_uv(), used),
        landmarks="all",
        image_max=image_max,
    )


def test_a_numbered_shard_names_its_files_and_an_empty_one_removes_them(tmp_path, jsrt_shapes):
    template, cases = jsrt_shapes
    _write(tmp_path, template, cases[:3], per_shard=2)
    reader = cache.UVCache(tmp_path)
    assert [reader.read(f"case{i}")["image"].shape for i in range(3)] == [(1, 256, 256)] * 3
    assert sorted(p.name for p in tmp_path.glob("*-000*.parquet")) == [
        "images-0000.parquet",
        "images-0001.parquet",
        "shard-0000.parquet",
        "shard-0001.parquet",
    ]
    write_numbered_shard(tmp_path, 1, [], [], [])  # a re-run whose last shard lost its items
    assert sorted(p.name for p in tmp_path.glob("*-000*.parquet")) == ["images-0000.parquet", "shard-0000.parquet"]


def test_round_trip_gives_maps_image_split_and_spacing_by_random_access(tmp_path, jsrt_shapes):
    template, cases = jsrt_shapes
    _write(tmp_path, template, cases[:5])
    reader = cache.UVCache(tmp_path)
    assert len(reader) == 5 and len(list(tmp_path.glob("shard-*"))) == 3 and len(list(tmp_path.glob("images-*"))) == 3
    masks, flat = cases[3]
    crops, _ = item_crops(masks, flat, template, extrapolate=True)
    uv, m = dense_uv(crops, JSRT.structures, 256, 256)
    got = reader.read("case3")
    assert np.array_equal(got["masks"], m) and np.array_equal(got["uv"], uv, equal_nan=True)
    assert np.allclose(got["landmarks"], flat, atol=1e-4) and got["present"].all()
    # the image comes back as stored value / image_max: 0 -> 0.0, 4095 -> 1.0
    assert got["image"].shape == (1, 256, 256) and got["image"].dtype == np.float32
    assert np.array_equal(got["image"][0], _image(3, 256, 256, 4095).astype(np.float32) / np.float32(4095))
    assert got["image"].min() == 0.0 and got["image"].max() == 1.0
    assert got["split"] == "train" and reader.split_of("case3") == "train"
    assert reader.mm_per_px("case3") == pytest.approx(0.8) and got["mm_per_px"] == pytest.approx(0.8)
    assert reader.items_of("train") == ["case0", "case3"] and reader.items_of("val") == ["case1", "case4"]
    assert reader.items_of("test") == ["case2"]
    assert reader.read(0)["item"] == "case0"
    with pytest.raises(KeyError):
        reader.read("nope")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        reader.items_of("valid")


def test_float16_is_smaller_and_close(tmp_path, jsrt_shapes):
    template, cases = jsrt_shapes
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _write(tmp_path / "a", template, cases[:2])
    _write(tmp_path / "b", template, cases[:2], "float16")
    a, b = cache.UVCache(tmp_path / "a"), cache.UVCache(tmp_path / "b")
    shards = [sum(p.stat().st_size for p in r.root.glob("shard-*")) for r in (a, b)]
    assert shards[1] < shards[0]
    assert np.nanmax(np.abs(a.read(1)["uv"] - b.read(1)["uv"])) < 1e-3


def test_dataloader_with_workers_serves_the_item_format(tmp_path, jsrt_shapes):
    import torch

    template, cases = jsrt_shapes
    _write(tmp_path, template, cases[:4])
    ds = cache.UVCacheDataset(tmp_path)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batches = list(loader)
    assert batches[0]["uv"].shape == (2, 5, 2, 256, 256) and batches[1]["item"] == ["case2", "case3"]
    assert batches[0]["image"].shape == (2, 1, 256, 256) and batches[0]["image"].dtype == torch.float32
    assert batches[0]["masks"].dtype == torch.float32 and set(batches[0]["masks"].unique().tolist()) == {0.0, 1.0}
    assert batches[0]["landmarks"].shape == (2, 166, 2) and batches[0]["present"].dtype == torch.bool
    subset = cache.UVCacheDataset(tmp_path, ["case3"])
    assert len(subset) == 1 and torch.equal(subset[0]["image"], torch.from_numpy(ds.cache.read("case3")["image"]))
    with pytest.raises(KeyError, match="not in the cache"):
        cache.UVCacheDataset(tmp_path, ["case9"])


def test_an_old_format_cache_is_refused_with_the_command_that_rebuilds_it(tmp_path, jsrt_shapes):
    template, cases = jsrt_shapes
    root = tmp_path / "jsrt"
    root.mkdir()
    _write(root, template, cases[:1])
    meta = json.loads((root / "cache.json").read_text())
    (root / "cache.json").write_text(json.dumps({**meta, "format": "denseseg-uvcache/1"}))
    with pytest.raises(cache.CacheError, match=r"older than denseseg-uvcache/2.*re-run `dvc repro uvmaps@jsrt`"):
        cache.UVCache(root)
    (root / "cache.json").write_text(json.dumps({**meta, "format": "something/9"}))
    with pytest.raises(cache.CacheError, match="expected denseseg-uvcache/2"):
        cache.UVCache(root)


def test_stored_maps_equal_landmark_uv_at_every_landmark(tmp_path):
    """Landmarks on pixel centres and masks covering the image: the stored value at a landmark's pixel
    is the map at the landmark, which eq. 2 makes the template uv; landmark_uv.parquet must hold it."""
    cases = list(wrist_cases(3, seed=5, height=192, width=112))
    template = build_template(np.stack([c[2] for c in cases[:2]]), WRIST)
    flat = np.rint(cases[2][2])
    masks = np.ones((len(WRIST.structures), 192, 112), bool)
    _write(tmp_path, template, [(masks, flat)], image_max=65535, size=(192, 112))
    reader = cache.UVCache(tmp_path)
    table = reader.landmark_uv()
    assert list(table.columns) == ["structure", "index", "u", "v", "used"] and len(table) == 710
    assert table["used"].all() and reader.meta["landmark_indices"] == list(range(710))
    record = reader.read("case0")
    # rounding merges some landmarks of the smallest bones: those bones are degenerate and not cached
    distinct = np.array([len(np.unique(p, axis=0)) == len(p) for p in split_structures(flat, WRIST).values()])
    assert np.array_equal(record["present"], distinct) and distinct.sum() >= 10
    x, y = flat[:, 0].astype(int), flat[:, 1].astype(int)
    s = np.array([WRIST.index(name) for name in table["structure"]])
    checked = distinct[s]
    stored = record["uv"][s, :, y, x][checked]
    assert np.abs(stored - table[["u", "v"]].to_numpy()[checked]).max() < 1e-4
    uv, structure = reader.landmark_targets()
    assert np.array_equal(structure, s) and np.allclose(uv, template.flat_uv(), atol=1e-6)


def test_a_subset_cache_reads_only_its_landmarks_but_lists_the_full_set(tmp_path):
    cases = list(wrist_cases(1, seed=5, height=192, width=112))
    template = build_template(np.stack([cases[0][2]]), WRIST)
    masks, flat = cases[0][1], cases[0][2]
    used = np.zeros(710, bool)
    used[::4] = True
    per, keep = split_structures(flat, WRIST), split_structures(used, WRIST)
    crops, _ = item_crops(masks, flat, template, extrapolate=True)  # the maps themselves do not matter here
    rows = cache.item_rows("a", 192, 112, crops, {s: per[s][keep[s]] for s in crops}, WRIST.structures)
    cache.write_shard(tmp_path / "shard-0000.parquet", [rows])
    cache.write_images(tmp_path / "images-0000.parquet", [("a", _image(0, 192, 112, 65535))])
    entry = dict(item="a", split="test", mm_per_px=float("nan"), shard="shard-0000.parquet", row_group=0)
    entry.update(image_file="images-0000.parquet", image_row_group=0, height=192, width=112, n_structures=len(rows))
    frame = cache.landmark_uv_frame(WRIST, template.flat_uv(), used)
    cache.write_meta(
        tmp_path,
        anatomy="wrist",
        mode="cartesian",
        uv_dtype="float32",
        index_rows=[entry],
        landmark_uv=frame,
        landmarks="fps",
        image_max=65535,
    )
    reader = cache.UVCache(tmp_path)
    assert reader.meta["landmark_indices"] == list(range(0, 710, 4))
    assert np.array_equal(reader.read("a")["landmarks"], flat[used].astype(np.float32))
    assert len(reader.landmark_uv()) == 710 and reader.landmark_uv()["used"].sum() == 178
    assert np.isnan(reader.mm_per_px("a")) and reader.items_of("train") == []
    uv, _ = reader.landmark_targets()
    assert np.allclose(uv, template.flat_uv()[used], atol=1e-6)


def test_images_above_image_max_are_refused_naming_the_file():
    with pytest.raises(cache.CacheError, match=r"x\.png: pixel values 0\.\.4096 exceed image_max 4095"):
        cache.image_pixels(np.array([[0, 4096]], np.uint16), 4095, "x.png")
    assert cache.image_pixels(np.array([[0, 255]], np.uint8), 255, "y.png").dtype == np.uint16
