"""benchmarks/mutation.py: the mutants it plants, and its score on a toy project whose answer is known."""

import textwrap

import pytest


@pytest.fixture(scope="module")
def mutation(load_benchmark):
    return load_benchmark("mutation")


def _all_mutants(mutation, source: str) -> list[str]:
    import ast

    n = len(mutation._sites(ast.parse(source)))
    return [mutation.mutated_source(source, k).strip() for k in range(n)]


def test_each_kind_of_site_gets_its_one_mutation(mutation):
    assert _all_mutants(mutation, "y = a + b") == ["y = a - b"]
    assert _all_mutants(mutation, "y = a < b") == ["y = a <= b"]
    assert _all_mutants(mutation, "y = a and b") == ["y = a or b"]
    assert _all_mutants(mutation, "y = -a") == ["y = a"]
    assert _all_mutants(mutation, "y = not a") == ["y = a"]
    assert _all_mutants(mutation, "y = 3") == ["y = 4"]
    assert _all_mutants(mutation, "y = 0.0") == ["y = 1.0"]
    assert _all_mutants(mutation, "y = 0.5") == ["y = 1.0"]
    assert _all_mutants(mutation, "y = True") == ["y = False"]
    assert _all_mutants(mutation, "y += 2") == ["y -= 2", "y += 3"]


def test_docstrings_strings_fstrings_and_annotations_are_left_alone(mutation):
    source = textwrap.dedent(
        '''
        """Module doc with 1 + 2."""
        from __future__ import annotations
        def f(x: int = 5) -> int:
            """Doc."""
            return f"{x + 1}" + "s"
        '''
    )
    mutants = _all_mutants(mutation, source)
    # only the default value and the string concatenation: nothing in docs, f-strings or annotations
    assert len(mutants) == 2
    assert any("def f(x: int=6) -> int:" in m for m in mutants)
    assert any("return f'{x + 1}' - 's'" in m for m in mutants)
    assert all('"""Module doc with 1 + 2."""' in m for m in mutants)


def test_the_score_of_a_toy_package_is_what_its_tests_can_see(mutation, tmp_path):
    """f is tested (both its mutants die), g is not (both survive): 2 of 4 killed."""
    (tmp_path / "denseseg" / "toy").mkdir(parents=True)
    (tmp_path / "denseseg" / "__init__.py").write_text("")
    (tmp_path / "denseseg" / "toy" / "__init__.py").write_text("")
    module = "def f(x):\n    return x + 1\n\n\ndef g(x):\n    return x * 3\n"
    (tmp_path / "denseseg" / "toy" / "mod.py").write_text(module)
    (tmp_path / "tests" / "toy").mkdir(parents=True)
    (tmp_path / "tests" / "toy" / "test_mod.py").write_text(
        "from denseseg.toy.mod import f\n\n\ndef test_f():\n    assert f(1) == 2\n"
    )
    result = mutation.mutation_score(tmp_path, "toy", max_mutants=None, timeout=60, seed=0)
    assert (result["killed"], result["total"], result["share"]) == (2, 4, 0.5)
    assert sorted(result["survivors"]) == ["denseseg/toy/mod.py:6 Mult -> Div", "denseseg/toy/mod.py:6 constant 3 -> 4"]
