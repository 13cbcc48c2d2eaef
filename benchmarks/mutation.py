"""Mutation testing of the core library: the share of small planted bugs that the tests catch.

Line coverage says a line ran, not that a wrong line would be noticed. This
script plants one small, plausible bug at a time (a mutant) in a scratch copy of
the project and runs that package's tests against it; a mutant is killed when
the tests fail (or run past ``--timeout``), and it survives when they pass.

The mutator is built in (an AST walk, deterministic, no extra dependency) and
makes the kinds of slips that a probe of the library found surviving:

- arithmetic operators swapped (``+``/``-``, ``*``/``/``, ``//``/``/``, ``**`` -> ``*``),
  augmented assignments included;
- comparisons moved across their boundary or negated (``<``/``<=``, ``>``/``>=``,
  ``==``/``!=``, ``in``/``not in``, ``is``/``is not``);
- ``and``/``or`` swapped; a unary minus or a ``not`` dropped;
- number constants nudged (``n`` -> ``n + 1``, ``0.0`` -> ``1.0``, ``x`` -> ``2x``),
  ``True``/``False`` flipped.

Docstrings, strings, ``__future__`` imports and type annotations are left
alone. The mutated module is written with ``ast.unparse``, so a package's
tests are first run once on the unparsed but unmutated sources (the baseline);
a package whose baseline fails is reported and skipped.

Usage:
    python benchmarks/mutation.py [--packages uv shape evaluation preprocessing io]
                                  [--max-mutants N] [--timeout S] [--seed K] [--root DIR] [--survivors]

``--max-mutants`` samples N mutants per package (with ``--seed``, the same
sample for the same sources, so two trees can be compared); ``--root`` tests
another checkout (e.g. an older commit exported with ``git archive``). Each
package's tests are ``tests/<package>`` of that root, slow tests excluded. The
machine's cores are left to others: one pytest at a time, one thread each.
Prints killed/total and the share per package, and ends with one JSON line.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
CORE = ("uv", "shape", "evaluation", "preprocessing", "io")
COPIED = ("denseseg", "stages", "pipelines", "tests", "pyproject.toml", "params.yaml", "dvc.yaml", "configs")

_BINOP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div}
_BINOP[ast.Pow] = ast.Mult
_CMP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}
_BOOL = {ast.And: ast.Or, ast.Or: ast.And}


@dataclass(frozen=True)
class Mutant:
    path: str  # relative to the root
    index: int  # the index-th mutation site of the file, in walk order
    line: int
    description: str


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, __future__ imports."""
    skip: set[int] = set()

    def mark(node):
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                mark(body[0])
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            mark(node.returns)
            for arg in node.args.args + node.args.kwonlyargs + node.args.posonlyargs:
                mark(arg.annotation)
        if isinstance(node, ast.AnnAssign):
            mark(node.annotation)
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            mark(node)
        if isinstance(node, ast.JoinedStr):
            mark(node)
    return skip


def _sites(tree: ast.Module) -> list[tuple[ast.AST, int, str]]:
    """(node, line, description) of every mutation site, in a fixed walk order."""
    skip = _skipped_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BINOP:
            out.append((node, line, f"{type(node.op).__name__} -> {_BINOP[type(node.op)].__name__}"))
        elif isinstance(node, ast.Compare):
            for k, op in enumerate(node.ops):
                if type(op) in _CMP:
                    out.append((node, line, f"compare {k}: {type(op).__name__} -> {_CMP[type(op)].__name__}"))
        elif isinstance(node, ast.BoolOp):
            out.append((node, line, f"{type(node.op).__name__} -> {_BOOL[type(node.op)].__name__}"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.Not):
            out.append((node, line, f"drop {type(node.op).__name__}"))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            out.append((node, line, f"constant {node.value!r} -> {_nudged(node.value)!r}"))
    return out


def _nudged(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    return 1.0 if value == 0 else value * 2


def _mutate(node: ast.AST, description: str) -> ast.AST:
    """Replace ``node`` in place (or return its replacement) as ``description`` says."""
    if isinstance(node, ast.BinOp | ast.AugAssign):
        node.op = _BINOP[type(node.op)]()
    elif isinstance(node, ast.Compare):
        k = int(description.split(":")[0].split()[1])
        node.ops[k] = _CMP[type(node.ops[k])]()
    elif isinstance(node, ast.BoolOp):
        node.op = _BOOL[type(node.op)]()
    elif isinstance(node, ast.UnaryOp):
        return node.operand
    elif isinstance(node, ast.Constant):
        node.value = _nudged(node.value)
    return node


class _Replace(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: ast.AST):
        self.target, self.replacement = target, replacement

    def visit(self, node):
        if node is self.target:
            return self.replacement
        return super().visit(node)


def mutated_source(source: str, index: int) -> str:
    """The module with its index-th mutation site mutated, unparsed."""
    tree = ast.parse(source)
    node, _, description = _sites(tree)[index]
    replacement = _mutate(node, description)
    if replacement is not node:
        tree = _Replace(node, replacement).visit(tree)
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


def enumerate_mutants(root: Path, package: str) -> list[Mutant]:
    mutants = []
    for path in sorted((root / "denseseg" / package).rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for k, (_, line, description) in enumerate(_sites(ast.parse(path.read_text()))):
            mutants.append(Mutant(rel, k, line, description))
    return mutants


def _scratch_copy(root: Path, into: Path) -> Path:
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, into / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, into / name)
    return into


def run_tests(scratch: Path, tests: str, timeout: float) -> str:
    """'passed', 'failed' or 'timeout' for the package's tests in the scratch copy."""
    env = dict(
        os.environ,
        DVC_NO_ANALYTICS="true",
        PYTHONDONTWRITEBYTECODE="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONPATH=str(scratch),
        # the scratch copy has no ../shared beside it: point the tests at this checkout's real data, or
        # every test that reads it skips and its mutants look like survivors
        DENSESEG_SHARED_DATA=os.environ.get("DENSESEG_SHARED_DATA", str(PROJECT.parent / "shared" / "data")),
    )
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:dash", "-m", "not slow", tests]
    try:
        done = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout"
    if done.returncode == 5:
        raise RuntimeError(f"no tests collected from {tests}")
    return "passed" if done.returncode == 0 else "failed"


def _baseline(scratch: Path, package: str, tests: str, timeout: float) -> str:
    """Run the tests on the unparsed, unmutated sources (what every mutant is compared against)."""
    originals = {}
    for path in (scratch / "denseseg" / package).rglob("*.py"):
        originals[path] = path.read_text()
        path.write_text(ast.unparse(ast.parse(originals[path])) + "\n")
    try:
        return run_tests(scratch, tests, timeout)
    finally:
        for path, text in originals.items():
            path.write_text(text)


def mutation_score(root: Path, package: str, max_mutants: int | None, timeout: float, seed: int) -> dict:
    mutants = enumerate_mutants(root, package)
    sample = list(mutants)
    random.Random(f"{seed}:{package}").shuffle(sample)
    if max_mutants is not None:
        sample = sample[:max_mutants]
    tests = f"tests/{package}"
    with tempfile.TemporaryDirectory(prefix=f"mutation-{package}-") as tmp:
        scratch = _scratch_copy(root, Path(tmp))
        start = time.perf_counter()
        baseline = _baseline(scratch, package, tests, timeout * 3)
        if baseline != "passed":
            return {"package": package, "error": f"baseline tests {baseline}", "sites": len(mutants)}
        killed, timeouts, survivors = 0, 0, []
        for mutant in sample:
            path = scratch / mutant.path
            original = path.read_text()
            path.write_text(mutated_source(original, mutant.index))
            try:
                verdict = run_tests(scratch, tests, timeout)
            finally:
                path.write_text(original)
            killed += verdict != "passed"
            timeouts += verdict == "timeout"
            if verdict == "passed":
                survivors.append(f"{mutant.path}:{mutant.line} {mutant.description}")
        seconds = time.perf_counter() - start
    total = len(sample)
    return {
        "package": package,
        "sites": len(mutants),
        "total": total,
        "killed": killed,
        "timeouts": timeouts,
        "share": killed / total if total else float("nan"),
        "survivors": survivors,
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", nargs="+", default=list(CORE), help="denseseg sub-packages to mutate")
    parser.add_argument("--max-mutants", type=int, default=None, help="sample this many mutants per package")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per test run before a mutant is killed")
    parser.add_argument("--seed", type=int, default=0, help="seeds the sample of mutants")
    parser.add_argument("--root", type=Path, default=PROJECT, help="the project tree to test (default: this one)")
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = parser.parse_args(argv)
    results = {}
    for package in args.packages:
        if not (args.root / "denseseg" / package).is_dir():
            parser.error(f"no package denseseg/{package} under {args.root}")
        result = mutation_score(args.root, package, args.max_mutants, args.timeout, args.seed)
        results[package] = result
        if "error" in result:
            print(f"{package:14s} skipped: {result['error']}", flush=True)
            continue
        print(
            f"{package:14s} killed {result['killed']:4d} / {result['total']:4d}  {100 * result['share']:5.1f} %"
            f"  ({result['sites']} sites, {result['timeouts']} timeouts, {result['seconds']} s)",
            flush=True,
        )
        if args.survivors:
            for line in result["survivors"]:
                print(f"    survived: {line}")
    scored = [r for r in results.values() if "error" not in r]
    killed, total = sum(r["killed"] for r in scored), sum(r["total"] for r in scored)
    summary = {
        "packages": {p: {k: v for k, v in r.items() if k != "package"} for p, r in results.items()},
        "killed": killed,
        "total": total,
        "share": killed / total if total else None,
        "seed": args.seed,
        "max_mutants": args.max_mutants,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
