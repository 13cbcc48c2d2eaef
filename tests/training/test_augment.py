"""The affine augmentation moves image, masks, uv maps and landmarks with one recorded draw."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from denseseg.training.augment import AffineAugment, AffineDraw
from denseseg.training.config import AugmentParams

H, W = 33, 41


def sample(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Sample (C, H, W) maps at (N, 2) (x, y) pixel points as the item format says (align_corners=True)."""
    height, width = maps.shape[-2:]
    grid = torch.stack([2 * points[:, 0] / (width - 1) - 1, 2 * points[:, 1] / (height - 1) - 1], dim=-1)
    out = F.grid_sample(maps[None].double(), grid[None, None].double(), mode="bilinear", align_corners=True)
    return out[0, :, 0].T  # (N, C)


def linear_uv(x, y):
    """An analytic, smooth uv field: u, v linear in x and y."""
    return 0.02 * x + 0.01 * y + 0.1, -0.015 * x + 0.03 * y + 0.4


def disc_item(points: torch.Tensor) -> dict:
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    disc = ((xs - 20) ** 2 + (ys - 16) ** 2 <= 13**2).float()
    u, v = linear_uv(xs, ys)
    uv = torch.stack([u, v])[None]  # (1, 2, H, W)
    uv = torch.where(disc.bool()[None, None], uv, torch.tensor(float("nan")))
    image = (0.2 + 0.5 * disc + 0.01 * xs / W).clamp(0, 1)[None]
    return {
        "item": "disc",
        "image": image,
        "masks": disc[None],
        "uv": uv,
        "landmarks": points,
        "present": torch.tensor([True]),
    }


PARAMS = AugmentParams(
    enabled=True, rotation_deg=10.0, translation=0.1, scale_min=0.85, scale_max=1.15, intensity_gain=0.0
)


@pytest.mark.parametrize(
    "draw",
    [
        AffineDraw(angle_deg=7.0, tx_px=1.5, ty_px=-2.25, scale=1.1, height=H, width=W),
        AffineDraw(angle_deg=-9.5, tx_px=-3.0, ty_px=2.0, scale=0.87, height=H, width=W),
    ],
)
def test_a_moved_landmark_samples_the_same_uv_from_the_moved_uv_map(draw):
    points = torch.tensor([[21.3, 14.7], [16.0, 19.5], [25.5, 12.25]])
    moved = draw.apply(disc_item(points))
    got = sample(moved["uv"][0], moved["landmarks"])
    u, v = linear_uv(points[:, 0].double(), points[:, 1].double())
    truth = torch.stack([u, v], dim=-1)
    assert torch.isfinite(got).all()
    assert torch.allclose(got, truth, atol=1e-3)


def test_random_draws_keep_landmark_uv_consistent():
    points = torch.tensor([[20.0, 16.0], [22.5, 18.5]])
    generator = torch.Generator().manual_seed(3)
    augment = AffineAugment(PARAMS)
    for _ in range(5):
        moved = augment(disc_item(points), generator)
        u, v = linear_uv(points[:, 0].double(), points[:, 1].double())
        assert torch.allclose(sample(moved["uv"][0], moved["landmarks"]), torch.stack([u, v], -1), atol=1e-3)


def test_uv_is_nan_exactly_outside_the_moved_mask():
    draw = AffineDraw(angle_deg=8.0, tx_px=2.0, ty_px=1.0, scale=0.9, height=H, width=W)
    moved = draw.apply(disc_item(torch.zeros(0, 2)))
    outside = moved["masks"][0] == 0
    assert torch.isnan(moved["uv"][0]).all(dim=0)[outside].all()
    assert torch.isfinite(moved["uv"][0]).all(dim=0)[~outside].all()
    assert set(moved["masks"].unique().tolist()) == {0.0, 1.0} and moved["masks"].dtype == torch.float32


def test_image_mask_and_point_move_together():
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    cx, cy = 12.0, 20.0
    blob = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 1.5**2))
    mask = ((xs - cx) ** 2 + (ys - cy) ** 2 <= 9).float()
    item = {"image": blob[None], "masks": mask[None], "landmarks": torch.tensor([[cx, cy]])}
    draw = AffineDraw(angle_deg=9.0, tx_px=3.0, ty_px=-2.0, scale=1.12, height=H, width=W)
    moved = draw.apply(item)
    point = moved["landmarks"][0]

    def centroid(weights):
        total = weights.sum()
        return torch.stack([(weights * xs).sum() / total, (weights * ys).sum() / total])

    assert torch.allclose(centroid(moved["image"][0]), point, atol=0.05)
    assert torch.allclose(centroid(moved["masks"][0]), point, atol=0.3)
    assert moved["image"][0, int(round(point[1].item())), int(round(point[0].item()))] > 0.8


def test_a_whole_pixel_shift_moves_each_pixel_by_that_shift():
    image = torch.rand(1, H, W, generator=torch.Generator().manual_seed(0))
    moved = AffineDraw(0.0, 3.0, -2.0, 1.0, H, W).apply({"image": image, "landmarks": torch.tensor([[10.0, 20.0]])})
    assert torch.allclose(moved["image"][0, 2 - 2 : H - 2, 3:], image[0, 2:, : W - 3], atol=1e-5)
    assert moved["image"][0, H - 2 :, :].abs().max() == 0  # came from outside the image
    assert moved["landmarks"].tolist() == [[13.0, 18.0]]


def test_matrix_rotates_about_the_image_centre():
    # 90 degrees on a 5x5 image: (4, 2) is 2 px right of the centre (2, 2) and goes 2 px down, to (2, 4)
    draw = AffineDraw(angle_deg=90.0, tx_px=0.0, ty_px=0.0, scale=1.0, height=5, width=5)
    assert torch.allclose(draw.apply_points(torch.tensor([[4.0, 2.0]])), torch.tensor([[2.0, 4.0]]), atol=1e-6)
    scaled = AffineDraw(angle_deg=0.0, tx_px=1.0, ty_px=0.0, scale=2.0, height=5, width=5)
    assert torch.allclose(scaled.matrix(), torch.tensor([[2.0, 0.0, -1.0], [0.0, 2.0, -2.0]], dtype=torch.float64))


def test_points_leaving_the_image_stay_and_nan_points_stay_nan():
    draw = AffineDraw(0.0, 10.0, 0.0, 1.0, H, W)
    moved = draw.apply_points(torch.tensor([[35.0, 5.0], [float("nan"), float("nan")]]))
    assert moved[0].tolist() == [45.0, 5.0] and torch.isnan(moved[1]).all()


def test_disabled_augmentation_is_the_identity():
    item = disc_item(torch.tensor([[20.0, 16.0]]))
    params = PARAMS.model_copy(update={"enabled": False})
    augment = AffineAugment(params)
    out = augment(item, torch.Generator().manual_seed(0))
    for key in ("image", "masks", "landmarks"):
        assert torch.equal(out[key], item[key])
    assert torch.equal(torch.isnan(out["uv"]), torch.isnan(item["uv"]))
    assert augment.draw(torch.Generator().manual_seed(0), H, W) == AffineDraw.identity(H, W)


def test_a_draw_replays_from_its_dict():
    generator = torch.Generator().manual_seed(11)
    draw = AffineAugment(PARAMS).draw(generator, H, W)
    replayed = AffineDraw.from_dict(json.loads(json.dumps(draw.to_dict())))
    assert replayed == draw
    item = disc_item(torch.tensor([[20.0, 16.0]]))
    first, second = draw.apply(item), replayed.apply(item)
    assert torch.equal(first["image"], second["image"]) and torch.equal(first["landmarks"], second["landmarks"])
    again = AffineAugment(PARAMS).draw(torch.Generator().manual_seed(11), H, W)
    assert again == draw
    with pytest.raises(ValueError, match="keys"):
        AffineDraw.from_dict({"angle_deg": 1.0})


def test_draws_stay_inside_the_configured_ranges():
    generator = torch.Generator().manual_seed(5)
    draws = [AffineAugment(PARAMS).draw(generator, H, W) for _ in range(300)]
    assert all(abs(d.angle_deg) <= 10 and abs(d.tx_px) <= 0.1 * W and abs(d.ty_px) <= 0.1 * H for d in draws)
    assert all(0.85 <= d.scale <= 1.15 for d in draws)
    assert min(d.angle_deg for d in draws) < -8 and max(d.angle_deg for d in draws) > 8
    assert math.isclose(sum(d.scale for d in draws) / len(draws), 1.0, abs_tol=0.02)


def test_an_item_of_another_size_is_refused_with_its_name():
    item = disc_item(torch.zeros(0, 2))
    with pytest.raises(ValueError, match="'disc'.*33x41.*made for 20x20"):
        AffineDraw(1.0, 0.0, 0.0, 1.0, 20, 20).apply(item)


def test_an_intensity_gain_scales_the_moved_image_only_and_leaves_the_geometry_of_the_draw():
    gained = PARAMS.model_copy(update={"intensity_gain": 0.2})
    plain = AffineAugment(PARAMS).draw(torch.Generator().manual_seed(3), H, W)
    draw = AffineAugment(gained).draw(torch.Generator().manual_seed(3), H, W)
    # the same four geometric numbers come first; the gain is a fifth, in 1 +- 0.2
    assert (draw.angle_deg, draw.tx_px, draw.ty_px, draw.scale) == (
        plain.angle_deg,
        plain.tx_px,
        plain.ty_px,
        plain.scale,
    )
    assert plain.gain == 1.0 and 0.8 <= draw.gain <= 1.2 and draw.gain != 1.0
    item = disc_item(torch.tensor([[20.0, 16.0]]))
    with_gain, without = draw.apply(item), plain.apply(item)
    assert torch.allclose(with_gain["image"], without["image"] * draw.gain, atol=1e-6)
    for key in ("masks", "landmarks"):
        assert torch.equal(with_gain[key], without[key])
    assert torch.equal(torch.isnan(with_gain["uv"]), torch.isnan(without["uv"]))
    assert AffineDraw.from_dict(draw.to_dict()) == draw  # the gain is recorded and replayed
    # a pure gain is not the identity: it still changes the image
    only_gain = AffineDraw(0.0, 0.0, 0.0, 1.0, item["image"].shape[-2], item["image"].shape[-1], gain=0.5)
    assert not only_gain.is_identity
    assert torch.allclose(only_gain.apply(item)["image"], item["image"] * 0.5, atol=1e-6)
