import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from denseseg.anatomy import WRIST
from denseseg.io.mask_store import mask_rows, write_mask_shard
from denseseg.io.png import read_png
from denseseg.io.tables import LANDMARKS, SPLITS, read_table, write_table
from denseseg.shape.landmark_table import landmark_array, landmark_frame
from denseseg.shape.synthetic import wrist_cases
from denseseg.shape.template import Template, build_template
from denseseg.uv.cache import UVCache
from stages.base import StageError
from stages.config import build_stage
from tests.builders import gradient_image, write_ingest

PROJECT = Path(__file__).resolve().parents[2]
SPACING_MM, SCALE = 0.144, 0.25  # original pixel spacing, working px per original px
AFFINE = np.array([[0.9, 0.06], [-0.04, 0.92]])  # the affine item: x -> AFFINE (x - centre) + centre + shift


def _project(tmp_path, **sections):
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    for key, value in sections.items():
        params[key].update(value)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def _write_inputs(root, names, masks, landmarks, split):
    write_table(landmark_frame(names, np.stack(landmarks), WRIST), root / "data/processed/landmarks.parquet", LANDMARKS)
    rows = [r for name, m in zip(names, masks) for r in mask_rows(name, m, WRIST.structures)]
    (root / "data/interim/masks").mkdir(parents=True, exist_ok=True)
    write_mask_shard(root / "data/interim/masks/shard-0000.parquet", rows)
    frame = pd.DataFrame({"filestem": names, "patient_id": names, "split": split})
    write_table(frame, root / "data/processed/splits.parquet", SPLITS)
    images = {name: gradient_image(*m.shape[1:], seed=i) for i, (name, m) in enumerate(zip(names, masks))}
    write_ingest(root / "data/interim/ingest", images, SPACING_MM, SCALE)


def _wrist_inputs(root, n=6):
    """n synthetic wrists (4 train, 1 val, the rest test) with masks, landmarks, splits and ingest images."""
    cases = list(wrist_cases(n, seed=3, height=192, width=112))
    split = ["train"] * 4 + ["val"] + ["test"] * (n - 5)
    _write_inputs(root, [c[0] for c in cases], [c[1] for c in cases], [c[2] for c in cases], split)
    return cases


def _with_affine_item(root):
    """The 6 wrists plus "affine", whose landmarks are an affine image of the train template, masks full."""
    cases = _wrist_inputs(root)
    table = read_table(root / "data/processed/landmarks.parquet", LANDMARKS)
    _, train = landmark_array(table, WRIST, [c[0] for c in cases[:4]])
    template = build_template(train, WRIST).flat_points()
    centre = np.array([55.5, 95.5])
    flat = (template - centre) @ AFFINE.T + centre + np.array([0.7, -1.3])
    assert flat.min() > 1 and flat[:, 0].max() < 110 and flat[:, 1].max() < 190
    full = np.ones((len(WRIST.structures), 192, 112), bool)
    names = [c[0] for c in cases] + ["affine"]
    split = ["train"] * 4 + ["val", "test", "test"]
    _write_inputs(root, names, [c[1] for c in cases] + [full], [c[2] for c in cases] + [flat], split)
    return cases, flat


def _sample(uv_maps: np.ndarray, structure: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples (N, 2) of (S, 2, H, W) maps at (x, y), the training convention (align_corners=True)."""
    import torch
    import torch.nn.functional as F

    _, _, h, w = uv_maps.shape
    grid = torch.from_numpy(np.stack([2 * xy[:, 0] / (w - 1) - 1, 2 * xy[:, 1] / (h - 1) - 1], 1)).float()
    maps = torch.from_numpy(uv_maps[structure])  # (N, 2, H, W): each point's own structure
    out = F.grid_sample(maps, grid[:, None, None, :], mode="bilinear", align_corners=True)
    return out[:, :, 0, 0].numpy()


def test_uvmaps_wrist_caches_images_splits_spacing_and_the_landmark_uv(tmp_path):
    root = _project(tmp_path)
    cases = _wrist_inputs(root)
    report = build_stage("uvmaps@wrist", root, ["uvmaps.wrist.shard_size=4"]).run_serial()
    m = report.metrics
    assert m["items"] == 6 and m["exactness_ok"] and m["floor_median_px"] < 0.5
    assert (m["train_items"], m["val_items"], m["test_items"]) == (4, 1, 1) and m["landmarks_cached"] == 710
    out = root / "data/processed/uvmaps/wrist"
    assert (out / "template.json").exists() and len(list(out.glob("shard-*.parquet"))) == 2
    assert len(list(out.glob("images-*.parquet"))) == 2 and (out / "landmark_uv.parquet").exists()
    reader = UVCache(out)
    name = cases[5][0]
    record = reader.read(name)
    assert np.array_equal(record["masks"], cases[5][1])
    png = read_png(root / f"data/interim/ingest/images/{name}.png")
    assert np.array_equal(record["image"][0], png.astype(np.float32) / np.float32(65535))
    assert record["split"] == "test" and reader.items_of("val") == [cases[4][0]]
    assert reader.items_of("train") == sorted(c[0] for c in cases[:4])
    assert reader.mm_per_px(name) == pytest.approx(SPACING_MM / SCALE, rel=1e-6)
    table = reader.landmark_uv()
    assert table["used"].all() and reader.meta["landmark_indices"] == list(range(710))
    template = Template.load(out / "template.json")
    assert np.allclose(table[["u", "v"]].to_numpy(), template.flat_uv(), atol=0)
    assert json.loads((root / "reports/metrics/uvmaps-wrist.json").read_text())["items"] == 6
    first = [(out / f).read_bytes() for f in ("shard-0000.parquet", "images-0000.parquet", "index.parquet")]
    build_stage("uvmaps@wrist", root, ["uvmaps.wrist.shard_size=4"]).run_serial()
    assert [(out / f).read_bytes() for f in ("shard-0000.parquet", "images-0000.parquet", "index.parquet")] == first
    assert not list(out.parent.glob("*.partial"))


def test_wrist178_maps_from_the_subset_locate_every_landmark_by_its_uv(tmp_path):
    """An affine image of the template is mapped exactly by the subset's piecewise-affine map, so the
    stored maps sampled at a NEW landmark's true position give its landmark_uv value."""
    root = _project(tmp_path)
    cases, flat = _with_affine_item(root)
    build_stage("subsample", root).run_serial()
    subsets = json.loads((root / "data/processed/subsets.json").read_text())
    report = build_stage("uvmaps@wrist178", root).run_serial()
    m = report.metrics
    assert m["items"] == 7 and m["landmarks"] == "fps" and m["landmarks_cached"] == 178 and m["exactness_ok"]
    assert m["floor_median_px"] < 0.5 and m["floor_unused_median_px"] < 0.5 and m["floor_unused_missing"] == 0
    reader = UVCache(root / "data/processed/uvmaps/wrist178")
    used = np.zeros(710, bool)
    used[subsets["flat_indices"]] = True
    assert reader.meta["landmark_indices"] == subsets["flat_indices"] and reader.meta["landmarks"] == "fps"
    table = reader.landmark_uv()
    assert len(table) == 710 and np.array_equal(table["used"].to_numpy(), used)
    record = reader.read("affine")
    assert record["landmarks"].shape == (178, 2)
    assert np.allclose(record["landmarks"], flat[used], atol=1e-4)
    structure = np.array([WRIST.index(s) for s in table["structure"]])
    got = _sample(record["uv"], structure, flat)
    want = table[["u", "v"]].to_numpy()
    assert np.abs(got[~used] - want[~used]).max() < 1e-4  # the 532 new landmarks
    assert np.abs(got[used] - want[used]).max() < 1e-4
    # the same uv frame as the full variant: a landmark has one uv value in both caches
    build_stage("uvmaps@wrist", root).run_serial()
    full = UVCache(root / "data/processed/uvmaps/wrist").landmark_uv()
    assert np.array_equal(full[["u", "v"]].to_numpy(), want)
    # the non-affine wrists: new landmarks located by their uv are close, though less so than the used ones
    assert m["floor_unused_p95_px"] > m["floor_p95_px"]


def test_wrist178_without_subsets_is_a_clear_stage_error(tmp_path):
    root = _project(tmp_path)
    _wrist_inputs(root)
    with pytest.raises(StageError, match=r"subsets\.json: landmark subsets not found \(did the subsample stage run"):
        build_stage("uvmaps@wrist178", root).run_serial()
    with pytest.raises(StageError, match="fps needs mode cartesian"):
        build_stage("uvmaps@wrist178", root, ["uvmaps.wrist178.mode=polar"]).run_serial()


def test_jsrt_phantom_then_uvmaps(tmp_path, shared_data):
    csv = str(shared_data / "jsrt-landmarks/landmarks.csv")
    root = _project(
        tmp_path, jsrt={"landmarks": csv, "limit": 8, "n_train": 5, "n_val": 2, "shard_size": 4, "size": 256}
    )
    report = build_stage("jsrt", root).run_serial()
    assert report.metrics["cases"] == 8 and report.metrics["train"] == 3 and report.metrics["val"] == 2
    assert len(list((root / "data/jsrt/images").glob("*.png"))) == 8
    report = build_stage("uvmaps@jsrt", root).run_serial()
    assert report.metrics["items"] == 8 and report.metrics["exactness_ok"]
    assert report.metrics["floor_p95_px"] < 1.0 and report.metrics["cache_bytes_per_image"] > 0
    reader = UVCache(root / "data/processed/uvmaps/jsrt")
    assert (len(reader.items_of("train")), len(reader.items_of("val")), len(reader.items_of("test"))) == (3, 2, 3)
    name = reader.items[0]
    assert reader.mm_per_px(name) == pytest.approx(1.4)  # 0.175 mm at 2048 px -> 1.4 mm at 256
    png = read_png(root / f"data/jsrt/images/{name}.png")
    image = reader.read(name)["image"]
    assert np.array_equal(image[0], png.astype(np.float32) / np.float32(4095)) and image.max() <= 1.0


def test_jsrt_without_landmarks_runs_on_named_stand_ins(tmp_path):
    """A fresh checkout has no JSRT landmarks: the chain still runs, on synthetic chests, and says so."""
    jsrt = {"landmarks": "data/external/none.csv", "limit": 6, "n_train": 4, "n_val": 1, "shard_size": 3}
    root = _project(tmp_path, jsrt={**jsrt, "synthetic_cases": 10})
    report = build_stage("jsrt", root).run_serial()
    assert report.metrics["cases"] == 6 and report.metrics["landmarks"].startswith("synthetic")
    first = (root / "data/jsrt/landmarks.parquet").read_bytes()
    assert build_stage("jsrt", root).run_serial().metrics["cases"] == 6
    assert (root / "data/jsrt/landmarks.parquet").read_bytes() == first  # seeded: the same stand-ins
    report = build_stage("uvmaps@jsrt", root).run_serial()
    assert report.metrics["items"] == 6 and report.metrics["exactness_ok"] and report.metrics["rejected"] == 0
    with pytest.raises(StageError, match="need their landmarks"):
        _project(tmp_path, jsrt={"landmarks": "data/external/none.csv", "images": "somewhere"})
        build_stage("jsrt", root).run_serial()


def test_an_old_uv_cache_is_refused_with_the_rerun_command(tmp_path):
    root = _project(tmp_path)
    _wrist_inputs(root)
    build_stage("uvmaps@wrist", root).run_serial()
    meta_path = root / "data/processed/uvmaps/wrist/cache.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": "denseseg-uvcache/1"}))
    from denseseg.uv.cache import CacheError

    with pytest.raises(CacheError, match=r"re-run `dvc repro uvmaps@wrist`"):
        UVCache(meta_path.parent)


def test_items_without_a_usable_image_or_a_split_are_rejected_with_the_reason(tmp_path):
    root = _project(tmp_path)
    cases = _wrist_inputs(root)
    ingest = root / "data/interim/ingest"
    (ingest / f"images/{cases[5][0]}.png").unlink()
    from denseseg.io.png import write_png

    write_png(ingest / f"images/{cases[4][0]}.png", gradient_image(100, 112))
    splits = read_table(root / "data/processed/splits.parquet", SPLITS)
    write_table(splits[splits["filestem"] != cases[3][0]], root / "data/processed/splits.parquet", SPLITS)
    report = build_stage("uvmaps@wrist", root).run_serial()
    reasons = dict(zip(report.rejects["filestem"], report.rejects["reason"]))
    assert report.metrics["items"] == 3 and len(reasons) == 3
    assert reasons[cases[5][0]].endswith("file is missing")
    assert "image of 100x112 px, masks 192x112" in reasons[cases[4][0]]
    assert reasons[cases[3][0]] == "not in the splits table"


def test_an_image_max_below_the_stored_values_is_a_stage_error(tmp_path):
    root = _project(tmp_path)
    _wrist_inputs(root)
    with pytest.raises(StageError, match=r"uvmaps\.wrist\.image_max: .*png: pixel values 0\.\.60000 exceed"):
        build_stage("uvmaps@wrist", root, ["uvmaps.wrist.image_max=4095"]).run_serial()


def test_a_missing_ingest_manifest_is_a_stage_error(tmp_path):
    root = _project(tmp_path)
    _wrist_inputs(root)
    (root / "data/interim/ingest/manifest.parquet").unlink()
    with pytest.raises(StageError, match=r"manifest\.parquet: table not found"):
        build_stage("uvmaps@wrist", root).run_serial()
