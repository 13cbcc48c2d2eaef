import pytest

from denseseg.anatomy import JSRT, WRIST


def test_wrist_table_matches_the_published_annotations():
    assert len(WRIST.structures) == 17 and WRIST.n_landmarks == 710
    assert sum(len(m) for m in WRIST.groups.values()) == 17
    assert WRIST.landmark_offsets()["ulna"] == 80 and WRIST.group_of("pisiform") == "carpals"


def test_jsrt_table_and_errors():
    assert JSRT.n_landmarks == 166
    with pytest.raises(KeyError, match="unknown jsrt structure 'liver'"):
        JSRT.index("liver")
