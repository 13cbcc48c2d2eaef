"""params.yaml is the one source: each refactored stage's section validates into the library's models, whole.

No key is left over (every model forbids unknown keys and the dump gives the
section back), and no model field has a default of its own (a second source).
"""

import pytest
import yaml
from pydantic import BaseModel

from denseseg.nnunet.config import NnUNetParams
from denseseg.propagation.network import NetworkParams
from denseseg.propagation.refiners import RefinerParams
from denseseg.propagation.rounds import PropagationParams
from denseseg.propagation.trainer import TrainConfig
from denseseg.release.contents import ReleaseParams
from denseseg.shape.quality import QCParams
from denseseg.shape.registration import ReferenceParams, RegistrationParams, TemplateParams
from stages.contours import ContoursParams
from stages.nnunet import NnUNetStageParams
from stages.propagate import PropagateParams
from stages.register import RegisterParams
from stages.release import ReleaseStageParams
from tests.conftest import PROJECT

PARAMS = yaml.safe_load((PROJECT / "params.yaml").read_text())
STAGES = {
    "register": RegisterParams,
    "propagate": PropagateParams,
    "release": ReleaseStageParams,
    "contours": ContoursParams,
    "nnunet": NnUNetStageParams,
}


def _plain(value):
    """A model dump as YAML reads it (tuples are lists)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _models(model: type[BaseModel]):
    yield model
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            yield from _models(field.annotation)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_section_validates_whole_into_its_models(stage):
    section = PARAMS[stage]
    params = STAGES[stage](**section)
    assert _plain(params.model_dump()) == section  # nothing left over, nothing added
    for model in _models(STAGES[stage]):
        defaults = [name for name, field in model.model_fields.items() if not field.is_required()]
        assert not defaults, f"{model.__name__} has defaults of its own: {defaults}"


def test_the_nested_sections_are_the_library_s_models():
    register = RegisterParams(**PARAMS["register"])
    assert type(register.registration) is RegistrationParams and type(register.qc) is QCParams
    assert type(register.reference) is ReferenceParams and type(register.template) is TemplateParams
    propagate = PropagateParams(**PARAMS["propagate"])
    assert isinstance(propagate, PropagationParams) and type(propagate.refiner) is RefinerParams
    assert type(propagate.network) is NetworkParams and type(propagate.training) is TrainConfig
    assert isinstance(ReleaseStageParams(**PARAMS["release"]), ReleaseParams)
    assert isinstance(NnUNetStageParams(**PARAMS["nnunet"]), NnUNetParams)  # one validation, the library's


def test_a_leftover_key_is_an_error():
    section = {**PARAMS["register"], "qc": {**PARAMS["register"]["qc"], "dice": 0.5}}
    with pytest.raises(ValueError, match="dice"):
        RegisterParams(**section)
