"""The parameter models require every value and refuse unknown or out-of-range ones."""

from __future__ import annotations

import pydantic
import pytest

from denseseg.training.config import AugmentParams, TrainingConfig, deep_update

VALUES = dict(
    epochs=3,
    batch_size=2,
    lr=1e-3,
    lr_schedule="cosine",
    lr_decay=100.0,
    optimizer="adam",
    weight_decay=0.0,
    grad_clip_norm=None,
    shuffle=True,
    validate_every=1,
    device="cpu",
    threads=1,
    num_workers=0,
)


def test_a_complete_config_validates_and_is_frozen():
    config = TrainingConfig(**VALUES)
    assert config.grad_clip_norm is None and config.lr_decay == 100.0
    with pytest.raises(pydantic.ValidationError):
        config.epochs = 5


@pytest.mark.parametrize("missing", ["epochs", "grad_clip_norm", "device"])
def test_every_value_is_required(missing):
    values = {k: v for k, v in VALUES.items() if k != missing}
    with pytest.raises(pydantic.ValidationError, match=missing):
        TrainingConfig(**values)


@pytest.mark.parametrize(
    "key,value",
    [("epochs", 0), ("lr", 0.0), ("lr_decay", 0.5), ("optimizer", "sgd"), ("grad_clip_norm", 0.0), ("device", "tpu")],
)
def test_out_of_range_values_are_refused_naming_the_key(key, value):
    with pytest.raises(pydantic.ValidationError, match=key):
        TrainingConfig(**{**VALUES, key: value})


def test_unknown_keys_are_refused():
    with pytest.raises(pydantic.ValidationError, match="momentum"):
        TrainingConfig(**VALUES, momentum=0.9)


def test_augment_scale_range_must_be_ordered():
    AugmentParams(enabled=True, rotation_deg=10, translation=0.1, scale_min=0.85, scale_max=1.15, intensity_gain=0.0)
    with pytest.raises(pydantic.ValidationError, match="scale_min"):
        AugmentParams(enabled=True, rotation_deg=10, translation=0.1, scale_min=1.2, scale_max=1.1, intensity_gain=0.0)


def test_deep_update_merges_nested_keys_and_leaves_its_inputs_alone():
    base = {"loss": {"lambda_bce": 0.13, "dense": True}, "threshold": 0.5}
    update = {"loss": {"dense": False}, "threshold": 0.7, "extra": {"a": 1}}
    merged = deep_update(base, update)
    assert merged == {"loss": {"lambda_bce": 0.13, "dense": False}, "threshold": 0.7, "extra": {"a": 1}}
    assert base == {"loss": {"lambda_bce": 0.13, "dense": True}, "threshold": 0.5}  # a copy, not in place
    assert deep_update({"loss": 1}, {"loss": {"a": 2}}) == {"loss": {"a": 2}}  # a dict replaces a non-dict
