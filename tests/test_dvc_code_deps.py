"""dvc.yaml lists the code of every stage: a change in any module a stage imports re-runs that stage.

The oracle is the stage module's import graph, read with ``ast`` (imports inside functions
included), followed through ``denseseg`` and ``stages``: every file reached must be a dep of the
stage, by name or under a listed folder. ``pipelines/`` is the Prefect layer every stage runs
in (it orchestrates, it does not shape outputs) and is not followed. A package ``__init__.py``
holding only a docstring and constants cannot change a result and need not be listed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT

DVC_YAML = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
FOLLOWED = ("denseseg", "stages")


def _module_files(name: str) -> list[Path]:
    """The files of a dotted module and of its parent packages (importing a.b.c runs a/__init__, a/b/__init__)."""
    files, parts = [], name.split(".")
    for depth in range(1, len(parts) + 1):
        path = Path(*parts[:depth])
        if (PROJECT / path / "__init__.py").exists():
            files.append(path / "__init__.py")
        elif (PROJECT / path.with_suffix(".py")).exists():
            files.append(path.with_suffix(".py"))
    return files


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse((PROJECT / path).read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # a submodule or a name
    return {n for n in names if n.split(".")[0] in FOLLOWED}


def import_closure(start: Path) -> set[Path]:
    """Every project file that importing ``start`` can execute."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imported(path):
            todo.extend(_module_files(name))
    return seen


def _inert(path: Path) -> bool:
    """A package ``__init__.py`` of a docstring and constant assignments only."""
    if path.name != "__init__.py":
        return False
    body = ast.parse((PROJECT / path).read_text()).body
    return all(
        (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))
        or (isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant))
        for n in body
    )


def _stage_module(stage: str) -> Path:
    return Path("stages") / f"{stage.removesuffix('_tuned')}.py"  # train_tuned runs stages/train.py


def _covered(path: Path, deps: list[str]) -> bool:
    return any(str(path) == d or str(path).startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", sorted(DVC_YAML["stages"]))
def test_every_module_a_stage_imports_is_one_of_its_deps(stage):
    body = DVC_YAML["stages"][stage].get("do", DVC_YAML["stages"][stage])
    module = _stage_module(stage)
    assert (PROJECT / module).exists(), f"stage {stage}: no module {module}"
    deps = [str(d) for d in body.get("deps", []) if not str(d).startswith("${")]
    missing = sorted(str(p) for p in import_closure(module) if not _inert(p) and not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {stage!r} does not list {missing}"


def test_the_walk_follows_imports_inside_functions_and_parent_packages():
    closure = import_closure(Path("stages/nnunet.py"))
    assert Path("stages/base.py") in closure
    assert Path("denseseg/nnunet/training.py") in closure  # imported inside NnUNetStage.process
    assert Path("denseseg/nnunet/__init__.py") in closure  # parent package of an imported module
    assert not any(p.parts[0] == "pipelines" for p in closure)
