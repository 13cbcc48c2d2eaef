"""configs/*.yaml -> `dvc exp run -S` arguments that params.yaml accepts."""

import yaml

from pipelines.overrides import main, override_arguments
from stages.config import apply_overrides
from tests.conftest import PROJECT


def test_paper_config_becomes_overrides_that_params_yaml_accepts():
    args = override_arguments(PROJECT / "configs/paper.yaml")
    pairs = args[1::2]
    assert args[0::2] == ["-S"] * len(pairs)
    assert 'train.methods.denseseg.backbone={"channels":[64,128,256,512],"num_res_units":2,"features":64}' in pairs
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    updated = apply_overrides(params, pairs)  # every key exists in params.yaml, values parse as YAML
    assert updated["train"]["methods"]["denseseg"]["backbone"]["channels"] == [64, 128, 256, 512]
    assert updated["ingest"]["height"] == 384


def test_a_file_that_is_not_a_mapping_is_an_error(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("- a\n- b\n")
    assert main([str(path)]) == 1
    assert "mapping of dotted keys" in capsys.readouterr().err
