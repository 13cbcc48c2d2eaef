"""Random affine augmentation whose draws are data.

Why: an image, its masks, its uv maps and its landmarks must move together, or the
network learns from labels that no longer lie on the anatomy. Sampling
(``AffineAugment.draw``) is therefore split from applying (``AffineDraw.apply``),
as in torchio's ``make_params``/``apply_transform``: one recorded draw moves every
part of an item, and the draw can be logged, stored and replayed with
``AffineDraw.from_dict``.

Coordinates follow the item format: points are (x, y) = (column, row) pixels with
pixel centres at integers; maps are resampled with ``grid_sample(align_corners=True)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from denseseg.training.config import AugmentParams


@dataclass(frozen=True)
class AffineDraw:
    """One sampled affine map of an image of ``height`` x ``width`` pixels.

    The map rotates by ``angle_deg`` (x towards y, i.e. clockwise on screen where
    rows grow downwards) and scales by ``scale`` about the image centre, then shifts
    by (``tx_px``, ``ty_px``) pixels; the moved image's intensities are multiplied by
    ``gain``.
    """

    angle_deg: float
    tx_px: float
    ty_px: float
    scale: float
    height: int
    width: int
    gain: float = 1.0

    def __post_init__(self):
        if self.height < 2 or self.width < 2:
            raise ValueError(f"an affine draw needs an image of at least 2x2 pixels, got {self.height}x{self.width}")

    @classmethod
    def identity(cls, height: int, width: int) -> AffineDraw:
        return cls(0.0, 0.0, 0.0, 1.0, int(height), int(width))

    @classmethod
    def from_dict(cls, record: dict) -> AffineDraw:
        """Rebuild a draw from ``to_dict`` (a logged draw replays exactly; ``gain`` may be absent: 1)."""
        expected = {"angle_deg", "tx_px", "ty_px", "scale", "height", "width"}
        if not expected <= set(record) <= expected | {"gain"}:
            raise ValueError(
                f"an affine draw needs the keys {sorted(expected)} (and optionally 'gain'), got {sorted(record)}"
            )
        return cls(
            float(record["angle_deg"]),
            float(record["tx_px"]),
            float(record["ty_px"]),
            float(record["scale"]),
            int(record["height"]),
            int(record["width"]),
            float(record.get("gain", 1.0)),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def is_identity(self) -> bool:
        return (
            self.angle_deg == 0.0 and self.tx_px == 0.0 and self.ty_px == 0.0 and self.scale == 1.0 and self.gain == 1.0
        )

    def matrix(self) -> torch.Tensor:
        """The forward map in pixel space as a (2, 3) float64 tensor: p' = M[:, :2] p + M[:, 2]."""
        theta = math.radians(self.angle_deg)
        cos, sin = math.cos(theta) * self.scale, math.sin(theta) * self.scale
        cx, cy = (self.width - 1) / 2.0, (self.height - 1) / 2.0
        linear = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
        centre = torch.tensor([cx, cy], dtype=torch.float64)
        offset = centre + torch.tensor([self.tx_px, self.ty_px], dtype=torch.float64) - linear @ centre
        return torch.cat([linear, offset[:, None]], dim=1)

    def apply_points(self, points: torch.Tensor) -> torch.Tensor:
        """Map (N, 2) (x, y) points forward; NaN points stay NaN, points leaving the image are kept."""
        m = self.matrix()
        moved = points.to(torch.float64) @ m[:, :2].T + m[:, 2]
        return moved.to(points.dtype)

    def _grid(self, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """For every output pixel, where it comes from, as a grid_sample grid (1, H, W, 2)."""
        m = self.matrix()
        inverse = torch.linalg.inv(m[:, :2])
        ys, xs = torch.meshgrid(
            torch.arange(self.height, dtype=torch.float64), torch.arange(self.width, dtype=torch.float64), indexing="ij"
        )
        qx, qy = xs - m[0, 2], ys - m[1, 2]
        src_x = inverse[0, 0] * qx + inverse[0, 1] * qy
        src_y = inverse[1, 0] * qx + inverse[1, 1] * qy
        grid = torch.stack([2.0 * src_x / (self.width - 1) - 1.0, 2.0 * src_y / (self.height - 1) - 1.0], dim=-1)
        return grid[None].to(dtype=dtype, device=device)

    def _warp(self, maps: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """Bilinear resampling of (C, H, W) maps, zero outside the source image."""
        out = F.grid_sample(maps[None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return out[0]

    def apply(self, item: dict) -> dict:
        """A new item with image, masks, uv maps and landmarks moved by this one draw.

        - image: bilinear, 0 where the source lies outside the image, then times ``gain``;
        - masks: bilinear, then >= 0.5 (keeps the input dtype);
        - uv: the valid (finite) values resampled with normalised bilinear weights, so
          values near a mask edge are not pulled towards NaN or 0, then NaN outside the
          moved mask (or, without masks, where less than half the weight was valid);
        - landmarks: mapped forward (points may leave the image; NaN stays NaN).
        Other keys ("item", "present", ...) are passed through unchanged.
        """
        if self.is_identity:
            return dict(item)
        out = dict(item)
        grid = None
        for key in ("image", "masks", "uv"):
            if key in item:
                shape = tuple(item[key].shape[-2:])
                if shape != (self.height, self.width):
                    raise ValueError(
                        f"item {item.get('item', '?')!r}: {key} is {shape[0]}x{shape[1]} pixels, "
                        f"the affine draw was made for {self.height}x{self.width}"
                    )
                if grid is None:
                    grid = self._grid(torch.float32, item[key].device)
        if "image" in item:
            image = item["image"]
            moved = self._warp(image.to(torch.float32), grid)
            out["image"] = (moved * self.gain if self.gain != 1.0 else moved).to(image.dtype)
        moved_masks = None
        if "masks" in item:
            masks = item["masks"]
            moved_masks = self._warp(masks.to(torch.float32), grid) >= 0.5
            out["masks"] = moved_masks.to(masks.dtype)
        if "uv" in item:
            out["uv"] = self._apply_uv(item["uv"], grid, moved_masks)
        if "landmarks" in item:
            out["landmarks"] = self.apply_points(item["landmarks"])
        return out

    def _apply_uv(self, uv: torch.Tensor, grid: torch.Tensor, moved_masks: torch.Tensor | None) -> torch.Tensor:
        n_structures = uv.shape[0]
        valid = torch.isfinite(uv).all(dim=1)  # (S, H, W)
        filled = torch.where(valid[:, None], uv, torch.zeros((), dtype=uv.dtype, device=uv.device))
        values = self._warp(filled.reshape(n_structures * 2, self.height, self.width).to(torch.float32), grid)
        weight = self._warp(valid.to(torch.float32), grid)  # (S, H, W)
        moved = values.reshape(n_structures, 2, self.height, self.width) / weight.clamp_min(1e-6)[:, None]
        keep = weight > 1e-6
        keep = keep & moved_masks if moved_masks is not None else keep & (weight >= 0.5)
        nan = torch.full((), float("nan"), dtype=moved.dtype, device=moved.device)
        return torch.where(keep[:, None], moved, nan).to(uv.dtype)


class AffineAugment:
    """Samples one ``AffineDraw`` per item from a seeded generator and applies it."""

    def __init__(self, params: AugmentParams):
        self.params = params

    def draw(self, generator: torch.Generator, height: int, width: int) -> AffineDraw:
        """Sample a draw; disabled augmentation returns the identity draw.

        A draw consumes four numbers (five with an intensity gain), enabled or not, so
        switching augmentation on or off shifts no other random choice.
        """
        p = self.params
        u = torch.rand(5 if p.intensity_gain > 0 else 4, generator=generator, dtype=torch.float64).tolist()
        if not p.enabled:
            return AffineDraw.identity(height, width)
        return AffineDraw(
            angle_deg=(2.0 * u[0] - 1.0) * p.rotation_deg,
            tx_px=(2.0 * u[1] - 1.0) * p.translation * width,
            ty_px=(2.0 * u[2] - 1.0) * p.translation * height,
            scale=p.scale_min + u[3] * (p.scale_max - p.scale_min),
            height=int(height),
            width=int(width),
            gain=1.0 + (2.0 * u[4] - 1.0) * p.intensity_gain if p.intensity_gain > 0 else 1.0,
        )

    def __call__(self, item: dict, generator: torch.Generator) -> dict:
        """The item moved by a fresh draw (unchanged when augmentation is disabled)."""
        if not self.params.enabled:
            return dict(item)
        key = next((k for k in ("image", "masks", "uv") if k in item), None)
        if key is None:
            raise ValueError(f"item {item.get('item', '?')!r} has no image, masks or uv to augment")
        height, width = item[key].shape[-2:]
        return self.draw(generator, height, width).apply(item)
