"""The knobs of ``python -m pipelines predict`` (params.yaml ``predict``) and the model's input format."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PredictParams(BaseModel):
    """params.yaml ``predict``: which radiographs are accepted and how the outputs look."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_side: int = Field(ge=16)  # px; smaller radiographs are rejected
    max_side: int = Field(ge=16)  # px; larger ones are rejected before they are decoded
    device: str  # auto | cpu | cuda
    threads: int = Field(ge=1)  # torch CPU threads
    overlay_max_side: int = Field(ge=64)  # overlay.png's longer side in px (never upscaled)

    @model_validator(mode="after")
    def _ordered(self) -> PredictParams:
        if self.min_side > self.max_side:
            raise ValueError(f"min_side {self.min_side} is above max_side {self.max_side}")
        return self


@dataclass(frozen=True)
class Preprocessing:
    """How a training image was made, so a new one is made the same way.

    Attributes:
        height: working height in px (params.yaml ``ingest.height``).
        width: working width in px (``ingest.width``).
        image_max: the stored 16-bit value that reads as 1.0 (``uvmaps.<dataset>.image_max``).
    """

    height: int
    width: int
    image_max: int

    def __post_init__(self):
        if self.height < 16 or self.width < 16:
            raise ValueError(f"working size {self.height}x{self.width} px is too small")
        if not 0 < self.image_max <= 65535:
            raise ValueError(f"image_max {self.image_max} must lie in 1..65535")
