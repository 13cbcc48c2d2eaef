"""Read params.yaml, apply ``--set section.key=value`` overrides, build a stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from stages.base import ProjectConfig, Stage, StageError
from stages.registry import load_stage_class

PROJECT_KEYS = ("seed", "paths", "runner")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (["a", "b"], value parsed as YAML scalar)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise StageError(f"override {text!r} is not of the form section.key=value")
    return key.split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(params: dict, overrides: list[str]) -> dict:
    for text in overrides:
        keys, value = parse_override(text)
        node = params
        for key in keys[:-1]:
            if not isinstance(node.get(key), dict):
                raise StageError(f"override {text!r}: {key!r} is not a section of params.yaml")
            node = node[key]
        if keys[-1] not in node:
            raise StageError(f"override {text!r}: params.yaml has no key {'.'.join(keys)}")
        node[keys[-1]] = value
    return params


def load_params(root: Path, overrides: list[str] = ()) -> dict:
    path = Path(root) / "params.yaml"
    if not path.exists():
        raise StageError(f"{path}: params.yaml not found; run from the project folder")
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise StageError(f"{path}: not valid YAML ({err})".replace("\n", " ")) from None
    return apply_overrides(params, list(overrides))


def subsections(root: Path, section: str, keys: tuple[str, ...], why: str) -> dict[str, dict]:
    """``{key: params[section][key]}`` read from params.yaml itself (no overrides), each required to be a section.

    For a stage that works through another stage's section (``tune`` trains through ``train``).
    """
    raw = load_params(root).get(section)
    if not isinstance(raw, dict):
        raise StageError(f"params.yaml has no section {section!r} ({why})")
    missing = [key for key in keys if not isinstance(raw.get(key), dict)]
    if missing:
        raise StageError(f"params.yaml [{section}]: no section(s) {', '.join(missing)} ({why})")
    return {key: raw[key] for key in keys}


def _validation_message(section: str, err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join([section, *(str(p) for p in first["loc"])])  # the section alone for a check of several keys
    return f"params.yaml [{where}]: {first['msg']} ({len(err.errors())} error(s))"


def project_config(params: dict) -> ProjectConfig:
    try:
        return ProjectConfig(**{key: params.get(key) for key in PROJECT_KEYS})
    except ValidationError as err:
        raise StageError(_validation_message("project", err)) from None


def build_stage(name: str, root: Path = Path("."), overrides: list[str] = ()) -> Stage:
    """Load params, validate the stage's section and instantiate the stage.

    ``name@variant`` (a DVC foreach stage such as ``uvmaps@jsrt``) reads the
    section ``params[name][variant]`` (the whole ``params[name]`` for a stage class
    with ``whole_section = True``, such as ``train@<run>``) and sets ``stage.variant``.
    """
    params = load_params(root, overrides)
    config = project_config(params)
    base, _, variant = name.partition("@")
    try:
        cls = load_stage_class(base)
    except KeyError as err:
        raise StageError(str(err.args[0])) from None
    section = params.get(base)
    # a foreach stage reads its variant's subsection, unless it declares that it reads the whole section
    if variant and isinstance(section, dict) and not getattr(cls, "whole_section", False):
        section = section.get(variant)
    if section is None:
        raise StageError(f"params.yaml has no section {name.replace('@', '.')!r} for stage {name!r}")
    try:
        stage_params = cls.Params(**section)
    except ValidationError as err:
        raise StageError(_validation_message(name, err)) from None
    stage = cls(stage_params, config, Path(root))
    stage.variant = variant or None
    return stage
