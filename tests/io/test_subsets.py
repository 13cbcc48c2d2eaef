"""The subsets file is read back as a mask over the flat landmark order, and refused when it does not fit."""

import json

import pytest

from denseseg.anatomy import WRIST
from denseseg.io.subsets import SubsetsError, read_used_mask


def test_subsets_of_another_anatomy_or_with_too_few_landmarks_are_refused(tmp_path):
    path = tmp_path / "subsets.json"
    path.write_text(json.dumps({"anatomy": "jsrt", "flat_indices": [0, 1, 2]}))
    with pytest.raises(SubsetsError, match="subsets of anatomy 'jsrt', this variant is 'wrist'"):
        read_used_mask(path, WRIST)
    keep = [i for i in range(710) if i >= 80 or i < 2]  # radius (landmarks 0..79) keeps 2
    path.write_text(json.dumps({"anatomy": "wrist", "flat_indices": keep}))
    with pytest.raises(SubsetsError, match="structure 'radius' keeps 2 landmark"):
        read_used_mask(path, WRIST)
    path.write_text(json.dumps({"anatomy": "wrist", "flat_indices": [710]}))
    with pytest.raises(SubsetsError, match=r"indices in 0\.\.709"):
        read_used_mask(path, WRIST)
    path.write_text(json.dumps({"anatomy": "wrist", "flat_indices": list(range(710))}))
    assert read_used_mask(path, WRIST).all()


def test_a_missing_or_malformed_subsets_file_is_named(tmp_path):
    path = tmp_path / "subsets.json"
    with pytest.raises(SubsetsError, match=r"subsets\.json: landmark subsets not found"):
        read_used_mask(path, WRIST)
    path.write_text("{not json")
    with pytest.raises(SubsetsError, match="not a subsets file"):
        read_used_mask(path, WRIST)
