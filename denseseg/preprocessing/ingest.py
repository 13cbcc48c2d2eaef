"""Ingest one radiograph: decode, mirror right hands to left, resample to the working frame, find its exposed field."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from denseseg.io.grazpedwri import ImageRecord
from denseseg.io.png import ImageError, encode_png, read_png
from denseseg.preprocessing.field import FieldParams, exposed_field
from denseseg.preprocessing.working_frame import WorkingFrame


@dataclass(frozen=True)
class IngestedImage:
    record: ImageRecord
    frame: WorkingFrame
    png: bytes  # the working-resolution image, uint16 PNG


def working_pixels(pixels: np.ndarray, height: int, width: int, flipped: bool) -> tuple[WorkingFrame, np.ndarray]:
    """A 16-bit original in the working frame: (frame, uint16 (height, width) image).

    The one resampling that ingest and ``denseseg.predict`` share, so that a new
    radiograph reaches the network exactly as the training images did.
    """
    frame = WorkingFrame.fit(pixels.shape[0], pixels.shape[1], height, width, flipped=flipped)
    working = frame.warp_image(pixels)
    return frame, np.clip(np.rint(working), 0, 65535).astype(np.uint16)


def ingest_image(record: ImageRecord, source: Path, height: int, width: int, field: FieldParams) -> IngestedImage:
    """Decode ``source``, bring it to the working frame and find its collimator bands; ImageError on a bad file."""
    pixels = read_png(source)
    if pixels.dtype != np.uint16:
        raise ImageError(f"{source}: 16-bit greyscale PNG expected, found 8-bit")
    if min(pixels.shape) < 16:
        raise ImageError(f"{source}: image of {pixels.shape[0]}x{pixels.shape[1]} px is too small")
    frame, image = working_pixels(pixels, height, width, flipped=record.laterality == "R")
    frame = replace(frame, field=exposed_field(image, frame.footprint_box(), field))
    return IngestedImage(record=record, frame=frame, png=encode_png(image))
