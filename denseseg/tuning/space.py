"""The search space of a study: dotted paths into a method's params, each a closed float range.

Written in params.yaml as ``{"loss.lambda_bce": [0.0, 1.0], ...}``; the paper
searched each lambda of eq. 4 in [0, 1], and HeatReg's alpha in [1, 50] and
sigma in [1, 10]. Keeping the paths literal (rather than per-method code) means
a new method or an extra weight is a params change, and the same string names
the Optuna parameter, the column of the trials table and the picked value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
from optuna.distributions import FloatDistribution


@dataclass(frozen=True)
class SearchSpace:
    """Float ranges by dotted path, in the order given (the order of sampling and of the tables)."""

    ranges: dict[str, tuple[float, float]]

    @classmethod
    def from_params(cls, raw: dict[str, list[float] | tuple[float, float]], where: str) -> SearchSpace:
        """Validate ``{path: [low, high]}``; ``where`` names the params section in the messages."""
        if not raw:
            raise ValueError(f"{where}: the search space is empty; name at least one parameter")
        ranges = {}
        for path, bounds in raw.items():
            if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
                raise ValueError(f"{where}.{path}: expected [low, high], got {bounds!r}")
            low, high = (float(b) for b in bounds)
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise ValueError(f"{where}.{path}: low {low} must be finite and below high {high}")
            ranges[str(path)] = (low, high)
        return cls(ranges)

    def distributions(self) -> dict[str, FloatDistribution]:
        """The Optuna distributions (uniform floats), for ``study.ask(fixed_distributions=...)``."""
        return {path: FloatDistribution(low, high) for path, (low, high) in self.ranges.items()}

    def signature(self) -> dict[str, list[float]]:
        """JSON form stored in the study's user attrs: a study of another space is refused, never mixed."""
        return {path: [low, high] for path, (low, high) in self.ranges.items()}

    def values_of(self, trial: optuna.trial.FrozenTrial | optuna.trial.Trial) -> dict[str, float]:
        """A trial's sampled values in the space's order."""
        return {path: float(trial.params[path]) for path in self.ranges}

    def check_paths(self, params: dict, where: str) -> None:
        """Every path must name an existing number in ``params`` (a typo fails before any trial trains)."""
        for path in self.ranges:
            node = params
            for key in path.split("."):
                if not isinstance(node, dict) or key not in node:
                    raise ValueError(f"{where}: {path!r} is not a parameter of the method (no key {key!r})")
                node = node[key]
            if isinstance(node, bool) or not isinstance(node, (int, float)):
                raise ValueError(f"{where}: {path!r} is {node!r}, not a number")

    @staticmethod
    def nested(values: dict[str, float]) -> dict:
        """``{"loss.lambda_bce": 0.1}`` -> ``{"loss": {"lambda_bce": 0.1}}`` (a deep update of method params)."""
        out: dict = {}
        for path, value in values.items():
            node = out
            *parents, leaf = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = value
        return out
