"""The paper's published figures (Tables 1 and 2), exactly as printed, to set beside ours.

Every cell is (mean, std) as printed (one decimal); None where the paper
prints "-" (nnU-Net predicts no landmarks). DSC is in percent. The groups are
the anatomy's group names plus "average" (the mean of the group figures, the
paper's only summary row). Method keys are short names; ``label`` is the
column heading as printed.

The "average" row is the mean of the three group figures (and the mean of
their stds) for every method but one: Table 1's nnU-Net average is the mean
over the five structures (lungs and clavicles count twice: DSC
(2 x 98.1 + 95.2 + 2 x 93.4) / 5 = 95.6, ASD (2 x 1.4 + 3.0 + 2 x 1.1) / 5 = 1.6),
i.e. a pooled figure; ``pooled_average`` names such methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

Cell = tuple[float, float] | None


@dataclass(frozen=True)
class PublishedTable:
    """One published results table: ``values[method][group][metric] -> (mean, std) | None``."""

    name: str
    caption: str
    anatomy: str  # key of denseseg.anatomy.ANATOMIES
    unit: str  # "mm" or "px": the unit of ASD and TRE as printed
    groups: tuple[str, ...]
    group_labels: MappingProxyType  # group -> row label as printed
    metrics: tuple[str, ...]
    methods: tuple[str, ...]
    labels: MappingProxyType  # method -> column heading as printed
    values: MappingProxyType
    pooled_average: frozenset[str] = frozenset()  # methods whose printed "average" is a mean over structures

    def cell(self, method: str, group: str, metric: str) -> Cell:
        """A published cell; KeyError naming what is unknown."""
        if method not in self.values:
            raise KeyError(f"{self.name} has no method {method!r}; it has {', '.join(self.methods)}")
        if group not in self.values[method]:
            raise KeyError(f"{self.name} has no row {group!r}; it has {', '.join(self.groups)}")
        if metric not in self.values[method][group]:
            raise KeyError(f"{self.name} has no metric {metric!r}; it has {', '.join(self.metrics)}")
        return self.values[method][group][metric]


def _table(rows: dict[str, dict[str, list[Cell]]], methods: tuple[str, ...]) -> MappingProxyType:
    """rows[group][metric] lists the cells left to right in ``methods`` order (as the paper prints them)."""
    values: dict = {m: {} for m in methods}
    for group, metrics in rows.items():
        for metric, cells in metrics.items():
            if len(cells) != len(methods):
                raise ValueError(f"{group}/{metric}: {len(cells)} cells for {len(methods)} methods")
            for method, cell in zip(methods, cells, strict=True):
                values[method].setdefault(group, {})[metric] = cell
    return MappingProxyType(
        {m: MappingProxyType({g: MappingProxyType(v) for g, v in groups.items()}) for m, groups in values.items()}
    )


# Table 1: "Quantitative results on JSRT's test split, reported as DSC in percentage and ASD and TRE in
# milimeters." Columns: ShapeFormer [9], HeatReg [4], ours, ours (sparse), nnUNet [6].
_JSRT_METHODS = ("shapeformer", "heatreg", "denseseg", "denseseg_sparse", "nnunet")
TABLE_1_JSRT = PublishedTable(
    name="Table 1 (JSRT)",
    caption="Quantitative results on JSRT's test split, reported as DSC in percentage and ASD and TRE in milimeters.",
    anatomy="jsrt",
    unit="mm",
    groups=("lungs", "heart", "clavicles", "average"),
    group_labels=MappingProxyType({"lungs": "lungs", "heart": "heart", "clavicles": "clavicles", "average": "average"}),
    metrics=("DSC", "ASD", "TRE"),
    methods=_JSRT_METHODS,
    labels=MappingProxyType(
        {
            "shapeformer": "ShapeFormer [9]",
            "heatreg": "HeatReg [4]",
            "denseseg": "ours",
            "denseseg_sparse": "ours (sparse)",
            "nnunet": "nnUNet [6]",
        }
    ),
    values=_table(
        {
            "lungs": {
                "DSC": [(95.6, 2.0), (97.1, 0.9), (96.7, 1.4), (96.6, 1.5), (98.1, 0.8)],
                "ASD": [(2.7, 1.2), (1.9, 0.6), (2.1, 0.6), (3.4, 1.1), (1.4, 0.6)],
                "TRE": [(6.0, 2.4), (5.7, 1.5), (6.2, 1.8), (6.9, 2.8), None],
            },
            "heart": {
                "DSC": [(92.3, 4.7), (94.2, 2.1), (92.7, 2.8), (92.6, 2.7), (95.2, 2.1)],
                "ASD": [(4.7, 2.3), (3.8, 1.3), (3.9, 1.5), (5.4, 1.8), (3.0, 1.2)],
                "TRE": [(9.4, 9.3), (8.5, 8.9), (8.1, 9.0), (9.6, 8.9), None],
            },
            "clavicles": {
                "DSC": [(78.9, 9.5), (82.8, 5.3), (82.9, 4.9), (81.7, 5.4), (93.4, 2.7)],
                "ASD": [(3.0, 1.3), (2.4, 0.7), (1.7, 0.6), (1.9, 0.5), (1.1, 0.3)],
                "TRE": [(5.1, 2.1), (4.2, 1.4), (3.2, 1.3), (3.2, 1.2), None],
            },
            "average": {
                "DSC": [(88.9, 5.4), (91.4, 2.8), (90.8, 3.0), (90.3, 3.2), (95.6, 2.9)],
                "ASD": [(3.5, 1.6), (2.7, 0.9), (2.6, 0.9), (3.5, 1.1), (1.6, 1.0)],
                "TRE": [(6.8, 4.6), (6.1, 3.9), (5.8, 4.0), (6.6, 4.3), None],
            },
        },
        _JSRT_METHODS,
    ),
    pooled_average=frozenset({"nnunet"}),
)

# Table 2: "Quantitative results on GRAZPEDWRI-DX's test split, reported as DSC in percentage and ASD and TRE
# in pixels." Columns: HeatReg 720 lms, HeatReg 178 lms, ours 720 lms.
_WRIST_METHODS = ("heatreg", "heatreg178", "denseseg")
TABLE_2_WRIST = PublishedTable(
    name="Table 2 (GRAZPEDWRI-DX)",
    caption=(
        "Quantitative results on GRAZPEDWRI-DX's test split, reported as DSC in percentage and ASD and TRE in pixels."
    ),
    anatomy="wrist",
    unit="px",
    groups=("carpals", "metacarpals", "ulna_radius", "average"),
    group_labels=MappingProxyType(
        {"carpals": "carpals", "metacarpals": "metacarpals", "ulna_radius": "ulna/radius", "average": "average"}
    ),
    metrics=("DSC", "ASD", "TRE"),
    methods=_WRIST_METHODS,
    labels=MappingProxyType(
        {"heatreg": "HeatReg 720 lms", "heatreg178": "HeatReg 178 lms", "denseseg": "ours 720 lms"}
    ),
    values=_table(
        {
            "carpals": {
                "DSC": [(90.1, 5.0), (87.0, 5.1), (88.8, 6.9)],
                "ASD": [(1.8, 0.4), (1.8, 0.5), (1.0, 0.4)],
                "TRE": [(2.5, 0.7), (2.7, 0.8), (1.7, 0.6)],
            },
            "metacarpals": {
                "DSC": [(87.1, 5.3), (83.8, 5.2), (94.4, 3.4)],
                "ASD": [(2.0, 0.4), (2.0, 0.7), (1.2, 0.9)],
                "TRE": [(4.8, 1.7), (5.6, 1.9), (2.5, 1.5)],
            },
            "ulna_radius": {
                "DSC": [(87.2, 8.8), (81.8, 9.7), (94.4, 4.6)],
                "ASD": [(1.9, 0.6), (1.6, 0.4), (1.0, 0.5)],
                "TRE": [(6.9, 4.6), (5.7, 3.2), (3.2, 2.2)],
            },
            "average": {
                "DSC": [(88.1, 6.4), (84.2, 6.7), (92.6, 5.0)],
                "ASD": [(1.9, 0.5), (1.8, 0.5), (1.1, 0.6)],
                "TRE": [(4.8, 2.3), (4.6, 2.0), (2.5, 1.4)],
            },
        },
        _WRIST_METHODS,
    ),
)

PUBLISHED = MappingProxyType({"jsrt": TABLE_1_JSRT, "wrist": TABLE_2_WRIST})
