"""Anatomy tables: the structures, their landmark counts and reporting groups.

One source of truth for every stage: the order of ``WRIST_BONES`` is the channel
order of masks and uv maps and the order of landmarks in every table.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal


@dataclass(frozen=True)
class Anatomy:
    """A set of structures with landmark counts and reporting groups."""

    name: str
    landmark_counts: MappingProxyType  # structure -> number of landmarks
    groups: MappingProxyType  # group -> tuple of structures

    @property
    def structures(self) -> tuple[str, ...]:
        return tuple(self.landmark_counts)

    @property
    def n_landmarks(self) -> int:
        return sum(self.landmark_counts.values())

    def index(self, structure: str) -> int:
        """Channel index of a structure; a clear error for an unknown name."""
        try:
            return self.structures.index(structure)
        except ValueError:
            raise KeyError(
                f"unknown {self.name} structure {structure!r}; known: {', '.join(self.structures)}"
            ) from None

    def landmark_offsets(self) -> dict[str, int]:
        """Start of each structure's landmarks in the flat landmark order."""
        offsets, start = {}, 0
        for structure, count in self.landmark_counts.items():
            offsets[structure] = start
            start += count
        return offsets

    def group_of(self, structure: str) -> str:
        for group, members in self.groups.items():
            if structure in members:
                return group
        raise KeyError(f"structure {structure!r} is in no reporting group of {self.name}")


WRIST = Anatomy(
    name="wrist",
    landmark_counts=MappingProxyType(
        {
            "radius": 80,
            "ulna": 75,
            "radius_epiphysis": 40,
            "ulna_epiphysis": 20,
            "scaphoid": 30,
            "lunate": 30,
            "triquetrum": 30,
            "pisiform": 30,
            "trapezium": 30,
            "trapezoid": 25,
            "capitate": 35,
            "hamate": 25,
            "metacarpal_1": 50,
            "metacarpal_2": 50,
            "metacarpal_3": 50,
            "metacarpal_4": 50,
            "metacarpal_5": 60,
        }
    ),
    groups=MappingProxyType(
        {
            "carpals": (
                "scaphoid",
                "lunate",
                "triquetrum",
                "pisiform",
                "trapezium",
                "trapezoid",
                "capitate",
                "hamate",
            ),
            "metacarpals": tuple(f"metacarpal_{i}" for i in range(1, 6)),
            "ulna_radius": ("radius", "ulna", "radius_epiphysis", "ulna_epiphysis"),
        }
    ),
)

# JSRT chest (Gaggion et al. landmarks): patient's right is on the image's left.
JSRT = Anatomy(
    name="jsrt",
    landmark_counts=MappingProxyType(
        {
            "right_lung": 44,
            "left_lung": 50,
            "heart": 26,
            "right_clavicle": 23,
            "left_clavicle": 23,
        }
    ),
    groups=MappingProxyType(
        {
            "lungs": ("right_lung", "left_lung"),
            "heart": ("heart",),
            "clavicles": ("right_clavicle", "left_clavicle"),
        }
    ),
)

WRIST_BONES = WRIST.structures

ANATOMIES = {"wrist": WRIST, "jsrt": JSRT}
# The one anatomy choice of every params section (``anatomy: AnatomyName``): an unknown name is a
# validation error naming the allowed ones, and ``ANATOMIES[name]`` then always succeeds.
AnatomyName = Literal["wrist", "jsrt"]
assert set(AnatomyName.__args__) == set(ANATOMIES)
