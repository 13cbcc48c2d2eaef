"""A split of a uv cache as an nnU-Net raw dataset (``imagesTr``, ``labelsTr``, ``dataset.json``).

Images are written as 16-bit greyscale PNGs of the integers the cache stores
(``image * image_max``), which nnU-Net's ``NaturalImage2DIO`` reads back
exactly; labels as 8-bit (16-bit beyond 255 combinations) PNGs of the region
encoding (``regions``). ``dataset.json`` is written by nnU-Net's own
``generate_dataset_json`` with each structure as a region and
``regions_class_order``, so nnU-Net trains region-based.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denseseg.io.png import write_png
from denseseg.nnunet.regions import RegionEncoding
from denseseg.uv.cache import UVCache

FILE_ENDING = ".png"
CHANNEL = {"0": "radiograph"}  # any name but "CT": nnU-Net z-scores each image
ENCODING_FILE = "denseseg_regions.json"  # beside dataset.json: how to read the labels back


class ExportError(ValueError):
    """A split that cannot be exported (empty, images of another size, a bad dataset id)."""


def dataset_name(dataset_id: int, name: str) -> str:
    """nnU-Net's folder name of a dataset: ``Dataset<ddd>_<name>``."""
    if not 1 <= dataset_id <= 999:
        raise ExportError(f"nnU-Net dataset ids are 1..999, got {dataset_id}")
    if not name or not name.replace("_", "a").isalnum():
        raise ExportError(f"dataset name {name!r} must be letters, digits and underscores")
    return f"Dataset{dataset_id:03d}_{name}"


def image_integers(image: np.ndarray, image_max: float) -> np.ndarray:
    """The cache's stored integers of a (1, H, W) image in [0, 1], as (H, W) uint16."""
    values = np.rint(np.asarray(image, np.float64)[0] * image_max)
    return values.astype(np.uint16)


@dataclass(frozen=True)
class ExportedDataset:
    folder: Path
    name: str
    encoding: RegionEncoding
    cases: tuple[str, ...]


def cache_reader(cache: UVCache) -> Callable[[str], tuple[np.ndarray, np.ndarray]]:
    """item -> ((H, W) uint16 stored image, (S, H, W) bool masks) of a uv cache."""

    def read(item: str) -> tuple[np.ndarray, np.ndarray]:
        record = cache.read(item)
        return image_integers(record["image"], cache.image_max), record["masks"]

    return read


def export_raw_dataset(
    read: Callable[[str], tuple[np.ndarray, np.ndarray]],
    items: Sequence[str],
    structures: Sequence[str],
    raw_root: Path,
    dataset_id: int,
    name: str,
    description: str,
) -> ExportedDataset:
    """Write ``items`` as the raw dataset ``raw_root/Dataset<id>_<name>`` (replacing the PNGs there).

    Args:
        read: item -> ((H, W) uint16 image, (S, H, W) masks), e.g. ``cache_reader(cache)``;
            called twice per item (encoding, then writing), so memory stays flat.
        items: the cases to export (the training split); an empty list is an error.
        structures: the mask channels' names, in order.
        raw_root: nnU-Net's raw folder (``nnUNet_raw``).
        dataset_id: nnU-Net's dataset id (1..999).
        name: the dataset's name after the id.
        description: dataset.json's description.
    """
    from nnunetv2.dataset_conversion.generate_dataset_json import generate_dataset_json

    if not items:
        raise ExportError(f"{raw_root}: no items to export (empty split)")
    folder = Path(raw_root) / dataset_name(dataset_id, name)
    encoding = RegionEncoding.from_masks(structures, (read(item)[1] for item in items))
    images, labels = folder / "imagesTr", folder / "labelsTr"
    for sub in (images, labels):
        sub.mkdir(parents=True, exist_ok=True)
        for old in sub.glob(f"*{FILE_ENDING}"):
            old.unlink()
    shape = None
    for item in items:
        pixels, masks = read(item)
        if pixels.shape != masks.shape[1:] or (shape is not None and pixels.shape != shape):
            raise ExportError(f"{item}: image {pixels.shape}, masks {masks.shape[1:]}, first image {shape}")
        shape = pixels.shape
        write_png(images / f"{item}_0000{FILE_ENDING}", np.asarray(pixels, np.uint16))
        write_png(labels / f"{item}{FILE_ENDING}", encoding.encode(masks, item))
    generate_dataset_json(
        str(folder),
        channel_names=dict(CHANNEL),
        labels=encoding.dataset_labels(),
        num_training_cases=len(items),
        file_ending=FILE_ENDING,
        regions_class_order=encoding.regions_class_order(),
        dataset_name=name,
        description=description,
        license="as the source data",
        converted_by="denseseg.nnunet.export",
        overwrite_image_reader_writer="NaturalImage2DIO",
    )
    (folder / ENCODING_FILE).write_text(json.dumps(encoding.to_json(), indent=1) + "\n")
    return ExportedDataset(folder, folder.name, encoding, tuple(items))


def read_encoding(raw_dataset: Path) -> RegionEncoding:
    path = Path(raw_dataset) / ENCODING_FILE
    if not path.exists():
        raise ExportError(f"{path}: missing; export the dataset first")
    return RegionEncoding.from_json(json.loads(path.read_text()))
