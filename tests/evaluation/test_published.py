"""The paper's Tables 1 and 2 as printed: spot checks and the paper's own average convention."""

from __future__ import annotations

import pytest

from denseseg.anatomy import ANATOMIES
from denseseg.evaluation.published import PUBLISHED, TABLE_1_JSRT, TABLE_2_WRIST


def test_spot_cells_read_as_printed():
    assert TABLE_1_JSRT.cell("denseseg", "average", "TRE") == (5.8, 4.0)
    assert TABLE_1_JSRT.cell("nnunet", "lungs", "DSC") == (98.1, 0.8)
    assert TABLE_1_JSRT.cell("nnunet", "heart", "TRE") is None
    assert TABLE_1_JSRT.cell("shapeformer", "clavicles", "ASD") == (3.0, 1.3)
    assert TABLE_2_WRIST.cell("denseseg", "average", "TRE") == (2.5, 1.4)
    assert TABLE_2_WRIST.cell("heatreg178", "ulna_radius", "DSC") == (81.8, 9.7)
    assert TABLE_2_WRIST.cell("heatreg", "carpals", "ASD") == (1.8, 0.4)


def test_groups_are_the_anatomy_groups_plus_average():
    for key, table in PUBLISHED.items():
        assert table.anatomy == key
        assert table.groups == (*ANATOMIES[key].groups, "average")


@pytest.mark.parametrize("table", [TABLE_1_JSRT, TABLE_2_WRIST], ids=lambda t: t.name)
def test_the_printed_average_is_the_mean_of_the_group_means_and_of_the_group_stds(table):
    # The convention aggregate() follows, checked on the paper's own numbers (to print rounding).
    for method in sorted(set(table.methods) - table.pooled_average):
        for metric in table.metrics:
            cells = [table.cell(method, g, metric) for g in table.groups[:-1]]
            average = table.cell(method, "average", metric)
            if average is None:
                assert all(c is None for c in cells)
                continue
            assert sum(c[0] for c in cells) / len(cells) == pytest.approx(average[0], abs=0.1), (method, metric)
            assert sum(c[1] for c in cells) / len(cells) == pytest.approx(average[1], abs=0.1), (method, metric)


def test_unknown_keys_are_named():
    with pytest.raises(KeyError, match="no method 'unet'"):
        TABLE_2_WRIST.cell("unet", "carpals", "DSC")
    with pytest.raises(KeyError, match="no row 'lungs'"):
        TABLE_2_WRIST.cell("heatreg", "lungs", "DSC")


def test_the_nnunet_average_of_table_1_is_a_mean_over_structures():
    jsrt = ANATOMIES["jsrt"]
    assert TABLE_1_JSRT.pooled_average == frozenset({"nnunet"})
    for metric in ("DSC", "ASD"):
        weights = {g: len(members) for g, members in jsrt.groups.items()}
        mean = sum(weights[g] * TABLE_1_JSRT.cell("nnunet", g, metric)[0] for g in weights) / sum(weights.values())
        assert mean == pytest.approx(TABLE_1_JSRT.cell("nnunet", "average", metric)[0], abs=0.05)
        group_mean = sum(TABLE_1_JSRT.cell("nnunet", g, metric)[0] for g in weights) / 3
        if metric == "ASD":
            assert group_mean != pytest.approx(TABLE_1_JSRT.cell("nnunet", "average", metric)[0], abs=0.1)
