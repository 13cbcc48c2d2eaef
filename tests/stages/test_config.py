import pytest
import yaml

from stages.base import StageError
from stages.config import apply_overrides, build_stage, parse_override


def test_parse_override_reads_yaml_values():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a.b=null") == (["a", "b"], None)
    with pytest.raises(StageError, match="not of the form"):
        parse_override("a.b")


def test_overrides_only_touch_existing_keys():
    params = {"ingest": {"height": 1}}
    assert apply_overrides(params, ["ingest.height=5"])["ingest"]["height"] == 5
    with pytest.raises(StageError, match="'nope' is not a section"):
        apply_overrides(params, ["nope.height=5"])


def test_unknown_param_keys_are_rejected(tiny_project):
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["ingest"]["colour"] = "blue"
    (tiny_project / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(StageError, match=r"\[ingest.colour\]: Extra inputs are not permitted"):
        build_stage("ingest", tiny_project)


def test_missing_params_file(tmp_path):
    with pytest.raises(StageError, match="params.yaml not found"):
        build_stage("ingest", tmp_path)
