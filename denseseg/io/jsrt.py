"""Readers of the real JSRT formats and the 256 x 256 working frame of Table 1.

- ``.IMG``: 2048 x 2048 raw, 12-bit values in big-endian 16-bit words, no
  header (exactly 8,388,608 bytes); stored so that bone is dark, hence
  ``4095 - value`` for display.
- Landmarks (Gaggion et al.): per-organ ``(N, 2)`` ``.npy``, the flat
  ``(332,)`` ``.npy`` (x0, y0, x1, y1, ... over the 166 points in anatomy
  order) and the shared CSV (``image,structure,index,x,y``); all in 1024 x 1024
  pixels (0.35 mm).
- Working frame: 256 x 256, 1.4 mm per pixel; pixel centres map as
  ``x_256 = (x_src + 0.5) * 256 / size_src - 0.5``.
- Masks: the closed landmark polygons rasterised at pixel centres.
- Split: sorted names, the first 160 train, the rest test (``split_names`` carves a
  seeded validation draw out of the training names).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.draw import polygon2mask

from denseseg.anatomy import JSRT

IMG_SIZE = 2048
IMG_BYTES = IMG_SIZE * IMG_SIZE * 2
LANDMARK_SIZE = 1024  # landmark pixel space
WORK_SIZE = 256
MM_PER_PX_WORK = 1.4
N_TRAIN = 160
# folder names of the per-organ .npy layout
ORGAN_DIRS = {"right_lung": "RL", "left_lung": "LL", "heart": "H", "right_clavicle": "RCLA", "left_clavicle": "LCLA"}


class JSRTFormatError(ValueError):
    """A JSRT file that does not have the expected size, shape or content."""


def read_img(path: str | os.PathLike, display: bool = True) -> np.ndarray:
    """A JSRT ``.IMG`` as (2048, 2048) uint16 in 0..4095; inverted (bone bright) when ``display``."""
    path = Path(path)
    if not path.exists():
        raise JSRTFormatError(f"{path}: file is missing")
    size = path.stat().st_size
    if size != IMG_BYTES:
        raise JSRTFormatError(f"{path}: {size} bytes, a JSRT .IMG has {IMG_BYTES} (2048x2048 16-bit, no header)")
    raw = np.fromfile(path, dtype=">u2").reshape(IMG_SIZE, IMG_SIZE).astype(np.uint16)
    if raw.max() > 4095:
        raise JSRTFormatError(f"{path}: value {int(raw.max())} exceeds 12 bits; not a big-endian JSRT .IMG?")
    return (4095 - raw).astype(np.uint16) if display else raw


def downsample(image: np.ndarray, size: int = WORK_SIZE) -> np.ndarray:
    """Block-mean downsampling of a square image by an integer factor (float32)."""
    n = image.shape[0]
    if image.shape != (n, n) or n % size:
        raise JSRTFormatError(f"image of shape {image.shape} cannot be block-averaged to {size}x{size}")
    f = n // size
    return image.reshape(size, f, size, f).astype(np.float32).mean(axis=(1, 3))


def to_working(points: np.ndarray, source_size: int = LANDMARK_SIZE, size: int = WORK_SIZE) -> np.ndarray:
    """Pixel-centre-aware rescaling of (x, y) points from a source grid to the working grid."""
    return (np.asarray(points, np.float64) + 0.5) * (size / source_size) - 0.5


def mm_per_px(width: int) -> float:
    """mm per pixel of a square working image ``width`` px wide (1.4 mm at 256 px)."""
    return MM_PER_PX_WORK * WORK_SIZE / width


def split_flat(flat: np.ndarray) -> dict[str, np.ndarray]:
    """(166, 2) in anatomy order -> {structure: (N_s, 2)}."""
    out, start = {}, 0
    for s, n in JSRT.landmark_counts.items():
        out[s] = flat[start : start + n]
        start += n
    return out


def read_landmarks_npy(path: str | os.PathLike, structure: str | None = None) -> dict[str, np.ndarray]:
    """A flat ``(332,)`` / ``(166, 2)`` file (all structures) or a per-organ ``(N, 2)`` file (``structure``)."""
    path = Path(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise JSRTFormatError(f"{path}: cannot read .npy ({err})") from None
    arr = np.asarray(arr, np.float64)
    if structure is None:
        if arr.shape == (2 * JSRT.n_landmarks,):
            arr = arr.reshape(-1, 2)
        if arr.shape != (JSRT.n_landmarks, 2):
            raise JSRTFormatError(f"{path}: shape {arr.shape}, expected (332,) or (166, 2) for all structures")
        result = split_flat(arr)
    else:
        n = JSRT.landmark_counts[structure] if structure in JSRT.landmark_counts else None
        if n is None:
            raise JSRTFormatError(f"{path}: unknown structure {structure!r}")
        if arr.shape != (n, 2):
            raise JSRTFormatError(f"{path}: shape {arr.shape}, {structure} has ({n}, 2)")
        result = {structure: arr}
    for s, pts in result.items():
        if not np.isfinite(pts).all():
            raise JSRTFormatError(f"{path}: {s} contains NaN")
    return result


def read_landmarks_dir(root: str | os.PathLike, name: str) -> dict[str, np.ndarray]:
    """The per-organ layout: ``root/<RL|LL|H|RCLA|LCLA>/<name>.npy``."""
    root = Path(root)
    out = {}
    for s, folder in ORGAN_DIRS.items():
        out.update(read_landmarks_npy(root / folder / f"{name}.npy", s))
    return out


def read_landmarks_csv(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The shared CSV -> {image name: (166, 2) float64 in anatomy order}; every point must be present."""
    path = Path(path)
    if not path.exists():
        raise JSRTFormatError(f"{path}: landmarks CSV not found")
    df = pd.read_csv(path)
    missing = {"image", "structure", "index", "x", "y"} - set(df.columns)
    if missing:
        raise JSRTFormatError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    offsets = JSRT.landmark_offsets()
    unknown = sorted(set(df["structure"]) - set(offsets))
    if unknown:
        raise JSRTFormatError(f"{path}: unknown structure(s) {', '.join(unknown)}")
    out = {}
    for name, group in df.groupby("image", sort=True):
        flat = np.full((JSRT.n_landmarks, 2), np.nan)
        pos = group["structure"].map(offsets).to_numpy() + group["index"].to_numpy()
        flat[pos] = group[["x", "y"]].to_numpy(np.float64)
        if len(group) != JSRT.n_landmarks or not np.isfinite(flat).all():
            raise JSRTFormatError(f"{path}: image {name} has {len(group)} rows, not the 166 landmarks")
        out[str(name)] = flat
    return out


def polygon_masks(flat: np.ndarray, size: int = WORK_SIZE) -> np.ndarray:
    """(5, size, size) masks of the closed landmark polygons ((166, 2) working-pixel points)."""
    masks = np.zeros((len(JSRT.structures), size, size), bool)
    for i, pts in enumerate(split_flat(np.asarray(flat)).values()):
        masks[i] = polygon2mask((size, size), pts[:, ::-1])
    return masks


def jsrt_split(names) -> dict[str, str]:
    """{name: 'train' | 'test'}: the first 160 sorted names train, the rest test."""
    ordered = sorted(names)
    return {n: ("train" if i < N_TRAIN else "test") for i, n in enumerate(ordered)}


def read_all_landmarks(source: Path) -> dict[str, np.ndarray]:
    """{name: (166, 2) in 1024 px} from any of the three landmark formats."""
    if source.is_file():
        return read_landmarks_csv(source)
    if not source.is_dir():
        raise JSRTFormatError(f"{source}: landmarks not found (a CSV or a folder of .npy files)")
    if (source / "RL").is_dir():
        names = sorted(p.stem for p in (source / "RL").glob("*.npy"))
        return {n: np.concatenate([v for v in read_landmarks_dir(source, n).values()]) for n in names}
    return {p.stem: np.concatenate(list(read_landmarks_npy(p).values())) for p in sorted(source.glob("*.npy"))}


def split_names(n: int, n_train: int, n_val: int, seed: int) -> list[str]:
    """Split of n sorted names: the first ``n_train`` are train except a seeded draw of ``n_val`` (val); rest test.

    A draw rather than the last names of the block: sorted JSRT names put the
    nodule cases (JPCLN) before the others (JPCNN), so a contiguous block would
    not look like the training set.
    """
    head = min(n_train, n)
    if n_val >= head:
        raise ValueError(f"n_val ({n_val}) leaves no training case: only {head} case(s) in the first n_train")
    split = ["train" if i < head else "test" for i in range(n)]
    for i in np.random.default_rng(seed).choice(head, size=n_val, replace=False):
        split[int(i)] = "val"
    return split
