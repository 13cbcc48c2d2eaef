"""The uv cache's format: its version, dtypes, split and landmark-set names, Parquet schemas and error.

The layout and its rules are described in ``denseseg.uv.cache``.
"""

from __future__ import annotations

import pyarrow as pa

FORMAT = "denseseg-uvcache/2"
OLD_FORMATS = ("denseseg-uvcache/1",)
UV_DTYPES = ("float32", "float16")
IMAGE_DTYPE = "uint16"
SPLIT_NAMES = ("train", "val", "test")
LANDMARK_SETS = ("all", "fps")

UV_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("structure", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("top", pa.int32()),
        ("left", pa.int32()),
        ("crop_height", pa.int32()),
        ("crop_width", pa.int32()),
        ("uv", pa.binary()),  # (2, h, w) little-endian float32 or float16, row-major
        ("mask", pa.binary()),  # np.packbits of the (h, w) mask crop
        ("landmarks", pa.binary()),  # (n cached of the structure, 2) little-endian float32
    ]
)

IMAGE_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("pixels", pa.binary()),  # (H, W) little-endian uint16, row-major
    ]
)

INDEX_SCHEMA = pa.schema(
    [
        ("item", pa.string()),
        ("split", pa.string()),  # train | val | test
        ("mm_per_px", pa.float64()),  # mm per working pixel (NaN when the source has no spacing)
        ("shard", pa.string()),
        ("row_group", pa.int32()),
        ("image_file", pa.string()),
        ("image_row_group", pa.int32()),
        ("height", pa.int32()),
        ("width", pa.int32()),
        ("n_structures", pa.int32()),
    ]
)

LANDMARK_UV_SCHEMA = pa.schema(
    [
        ("structure", pa.string()),
        ("index", pa.int32()),  # in the anatomy's full flat landmark order
        ("u", pa.float64()),
        ("v", pa.float64()),
        ("used", pa.bool_()),  # built the maps and is stored per item
    ]
)


class CacheError(ValueError):
    """A uv cache folder that is missing, incomplete or of another format."""
