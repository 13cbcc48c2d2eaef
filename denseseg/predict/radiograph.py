"""A new radiograph: read and check the PNG, find its laterality, and make the network's input.

The input is made exactly as a training image was: ingest's resampling
(``denseseg.preprocessing.ingest.working_pixels``: right hands mirrored to a
left hand, isotropic scale, letterbox padding, rounded to uint16) and the uv
cache's intensity scaling (stored value / ``image_max``). An 8-bit PNG is
first scaled to the 16-bit range (x 257, so 255 -> 65535). Masks come back to
the original pixels through the inverse of the same frame.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from denseseg.io.grazpedwri import FILESTEM
from denseseg.io.png import ImageError, read_png
from denseseg.predict.params import Preprocessing
from denseseg.preprocessing.ingest import working_pixels
from denseseg.preprocessing.working_frame import WorkingFrame
from denseseg.uv.cache import CacheError, image_pixels

GREY_MODES = {"I;16": 16, "I;16B": 16, "I;16L": 16, "I": 16, "L": 8, "1": 1}
OTHER_MODES = {
    "RGB": "a colour PNG (mode RGB)",
    "RGBA": "a colour PNG with alpha (mode RGBA)",
    "P": "a palette PNG (mode P)",
    "PA": "a palette PNG with alpha (mode PA)",
    "LA": "a greyscale PNG with an alpha channel (mode LA)",
}
SIDES = ("L", "R")


class RadiographError(ValueError):
    """A radiograph or points file that cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class Radiograph:
    """A decoded radiograph: ``pixels`` uint16 (H, W) in the 16-bit range; ``bit_depth`` of the file (16, 8 or 1)."""

    path: Path
    pixels: np.ndarray
    bit_depth: int


def read_radiograph(path: str | os.PathLike, min_side: int, max_side: int) -> Radiograph:
    """Decode a 16- or 8-bit greyscale PNG; RadiographError for anything else.

    The size is checked from the header before the pixels are decoded, so an
    absurdly large file is refused without allocating it.
    """
    path = Path(path)
    if not path.exists():
        raise RadiographError(f"{path}: no such file")
    if not path.is_file():
        raise RadiographError(f"{path}: not a file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size limit below is ours
            with Image.open(path) as im:
                fmt, mode, (width, height) = im.format, im.mode, im.size
    except Image.DecompressionBombError as err:
        raise RadiographError(f"{path}: image too large to decode ({err})".replace("\n", " ")) from None
    except UnidentifiedImageError:
        raise RadiographError(f"{path}: not an image file (no PNG signature)") from None
    except OSError as err:
        raise RadiographError(f"{path}: cannot read ({type(err).__name__}: {err})".replace("\n", " ")) from None
    if fmt != "PNG":
        raise RadiographError(f"{path}: not a PNG file (format {fmt})")
    if mode not in GREY_MODES:
        what = OTHER_MODES.get(mode, f"a PNG of mode {mode}")
        raise RadiographError(f"{path}: {what}; a 16- or 8-bit greyscale radiograph is expected")
    if min(height, width) < min_side:
        raise RadiographError(f"{path}: image of {height}x{width} px is too small (each side at least {min_side} px)")
    if max(height, width) > max_side:
        raise RadiographError(f"{path}: image of {height}x{width} px is too large (each side at most {max_side} px)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            pixels = read_png(path)
    except ImageError as err:
        raise RadiographError(str(err).replace("\n", " ")) from None
    if pixels.shape != (height, width):
        raise RadiographError(f"{path}: decoded {pixels.shape} pixels, the header says {height}x{width}")
    if pixels.dtype == np.uint8:
        pixels = pixels.astype(np.uint16) * np.uint16(257)
    low, high = int(pixels.min()), int(pixels.max())
    if low == high:
        raise RadiographError(f"{path}: every pixel is {low}; a blank image has nothing to predict")
    return Radiograph(path, pixels, GREY_MODES[mode])


@dataclass(frozen=True)
class Laterality:
    """Which hand: ``side`` L or R, from ``source`` (``--left``, ``--right`` or ``filestem``).

    ``projection`` (1 PA, 2 lateral, 3 other) and ``stem_side`` are read from a
    GRAZPEDWRI-DX filestem; None for other file names.
    """

    side: str
    source: str
    projection: int | None
    stem_side: str | None


def laterality(path: str | os.PathLike, override: str | None = None) -> Laterality:
    """The hand of ``path``: ``override`` (L or R) when given, else its GRAZPEDWRI-DX filestem."""
    path = Path(path)
    match = FILESTEM.match(path.stem)
    stem_side = match["laterality"] if match else None
    projection = int(match["projection"]) if match else None
    if override is not None:
        if override not in SIDES:
            raise ValueError(f"laterality must be L or R, got {override!r}")
        return Laterality(override, "--left" if override == "L" else "--right", projection, stem_side)
    if stem_side is None:
        raise RadiographError(
            f"{path}: laterality unknown (the file name does not follow the GRAZPEDWRI-DX pattern "
            "PPPP_TTTTTTTTTT_SS_WRI-<L|R><1|2|3>_<M|F|O>AAA); give --left or --right"
        )
    return Laterality(stem_side, "filestem", projection, stem_side)


@dataclass(frozen=True)
class NetworkInput:
    """The working-resolution image as training saw it.

    Attributes:
        frame: original <-> working pixels (mirroring, scale, padding).
        pixels: uint16 (H, W), what ingest writes for this radiograph.
        image: float32 (H, W) in [0, 1], what the uv cache serves to the network.
    """

    frame: WorkingFrame
    pixels: np.ndarray
    image: np.ndarray


def network_input(
    pixels: np.ndarray, flipped: bool, preprocessing: Preprocessing, source: str = "image"
) -> NetworkInput:
    """uint16 original (H0, W0) -> the network's input; ``flipped`` mirrors a right hand to a left one."""
    if pixels.ndim != 2 or pixels.dtype != np.uint16:
        raise ValueError(f"{source}: a 2-D uint16 image expected, got {pixels.dtype} of shape {pixels.shape}")
    frame, working = working_pixels(pixels, preprocessing.height, preprocessing.width, flipped)
    try:
        stored = image_pixels(working, preprocessing.image_max, source)
    except CacheError as err:
        raise RadiographError(str(err)) from None
    return NetworkInput(frame, stored, stored.astype(np.float32) / np.float32(preprocessing.image_max))


def _linear_taps(positions: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(low index, high index, weight of high) of linear interpolation at fractional positions, clamped at the edges."""
    t = np.clip(positions, 0.0, size - 1.0)
    low = np.floor(t).astype(np.int64)
    return low, np.minimum(low + 1, size - 1), (t - low).astype(np.float32)


def masks_to_original(masks: np.ndarray, frame: WorkingFrame) -> np.ndarray:
    """Working masks (S, H, W) bool -> (S, H0, W0) bool at the original pixels (mirroring undone).

    Each original pixel centre is mapped into the working frame and the mask is
    read there by bilinear interpolation (> 0.5), so outlines come back smooth
    rather than as enlarged working pixels. Separable (rows, then columns) and
    by gathers, not matrix products: no BLAS threads, one structure at a time.
    """
    masks = np.asarray(masks, bool)
    if masks.ndim != 3 or masks.shape[1:] != (frame.height, frame.width):
        raise ValueError(f"masks of shape (S, {frame.height}, {frame.width}) expected, got {masks.shape}")
    cols = frame.to_working(np.stack([np.arange(frame.orig_width), np.zeros(frame.orig_width)], 1))[:, 0]
    rows = frame.to_working(np.stack([np.zeros(frame.orig_height), np.arange(frame.orig_height)], 1))[:, 1]
    y0, y1, fy = _linear_taps(rows, frame.height)
    x0, x1, fx = _linear_taps(cols, frame.width)
    out = np.empty((len(masks), frame.orig_height, frame.orig_width), bool)
    for s, mask in enumerate(masks):
        if not mask.any():
            out[s] = False
            continue
        m = mask.astype(np.float32)
        along = m[y0] * (1 - fy)[:, None] + m[y1] * fy[:, None]  # (H0, W)
        out[s] = along[:, x0] * (1 - fx) + along[:, x1] * fx > 0.5
    return out
