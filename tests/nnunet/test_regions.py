"""Overlapping structures -> one label map + regions -> back, on cases whose overlaps are known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from denseseg.nnunet.regions import EncodingError, RegionEncoding, masks_from_region_probabilities

STRUCTURES = ("lung", "heart", "clavicle")


def _case() -> np.ndarray:
    """3 structures on 6x8: lung alone, heart alone, lung+clavicle, lung+heart+clavicle, and background."""
    masks = np.zeros((3, 6, 8), bool)
    masks[0, :, :4] = True  # lung: left half
    masks[1, 3:, 3:7] = True  # heart: lower middle, overlapping the lung in column 3
    masks[2, 1:4, 2:4] = True  # clavicle: never alone, over the lung and over lung + heart at (3, 3)
    return masks


def test_every_pixel_gets_its_set_of_structures_back():
    masks = _case()
    encoding = RegionEncoding.from_masks(STRUCTURES, [masks])
    labels = encoding.encode(masks)
    assert labels.dtype == np.uint8 and labels.shape == (6, 8)
    assert np.array_equal(encoding.decode(labels), masks)
    # the pixel under all three structures and one under lung + clavicle have their own labels
    code_of = {code: k + 1 for k, code in enumerate(encoding.combinations)}
    assert labels[3, 3] == code_of[0b111] and labels[1, 2] == code_of[0b101] and labels[0, 7] == 0


def test_combinations_are_numbered_by_bit_code_and_regions_hold_every_label_of_their_structure():
    encoding = RegionEncoding.from_masks(STRUCTURES, [_case()])
    # present: lung 001, heart 010, lung+heart 011 (rows 4-5, column 3), lung+clavicle 101, all three 111
    assert encoding.combinations == (0b001, 0b010, 0b011, 0b101, 0b111)
    assert encoding.regions() == [(1, 3, 4, 5), (2, 3, 5), (4, 5)]
    labels = encoding.dataset_labels()
    assert labels["background"] == 0 and labels["clavicle"] == (4, 5)
    # lung and heart paint their own single-structure label; the clavicle never lies alone: its first label
    assert encoding.regions_class_order() == (1, 2, 4)


def test_json_round_trip_keeps_the_encoding():
    encoding = RegionEncoding.from_masks(STRUCTURES, [_case()])
    assert RegionEncoding.from_json(encoding.to_json()) == encoding


def test_more_than_255_combinations_use_uint16():
    n = 9
    codes = np.arange(1, 2**n)  # 511 combinations, one pixel each
    masks = np.stack([(codes >> s & 1).astype(bool).reshape(1, -1) for s in range(n)])
    encoding = RegionEncoding.from_masks([f"s{i}" for i in range(n)], [masks])
    labels = encoding.encode(masks)
    assert labels.dtype == np.uint16 and labels.max() == 511
    assert np.array_equal(encoding.decode(labels), masks)


def test_region_probabilities_above_the_threshold_are_the_masks():
    probabilities = np.zeros((3, 1, 2, 2), np.float32)
    probabilities[0, 0, 0, 0] = 0.51
    probabilities[1, 0, 0, 0] = 0.5  # not above
    probabilities[2, 0, 1, 1] = 0.9
    masks = masks_from_region_probabilities(probabilities, 3, 0.5)
    assert masks.shape == (3, 2, 2)
    assert masks[0, 0, 0] and not masks[1].any() and masks[2, 1, 1] and masks.sum() == 2


def test_bad_input_is_rejected_with_a_reason():
    masks = _case()
    with pytest.raises(EncodingError, match="empty split"):
        RegionEncoding.from_masks(STRUCTURES, [])
    absent = masks.copy()
    absent[1] = False
    with pytest.raises(EncodingError, match="never present.*heart"):
        RegionEncoding.from_masks(STRUCTURES, [absent])
    with pytest.raises(EncodingError, match=r"\(S=3, H, W\)"):
        RegionEncoding.from_masks(STRUCTURES, [masks[:2]])
    encoding = RegionEncoding(STRUCTURES, (0b001, 0b010, 0b100))  # no overlaps
    with pytest.raises(EncodingError, match="not in the encoding"):
        encoding.encode(masks, "test case")
    with pytest.raises(EncodingError, match="outside"):
        encoding.decode(np.full((2, 2), encoding.n_labels))
    with pytest.raises(EncodingError, match=r"\(3, H, W\)"):
        masks_from_region_probabilities(np.zeros((2, 4, 4)), 3, 0.5)
