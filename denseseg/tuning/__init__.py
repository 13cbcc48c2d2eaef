"""Multi-objective tuning of a method's loss weights with Optuna (issue 11; paper 3.4).

- ``space``: the search space (dotted paths into a method's params, each a float range).
- ``pareto``: the non-dominated trials and the documented compromise pick.
- ``study``: the journal-file study that survives a kill, guarded against a mixed search space.
- ``prune``: the simple rule that stops hopeless trials (Optuna's pruners are single-objective only).
"""

from denseseg.tuning.pareto import normalised_distances, pareto_mask, pick_compromise
from denseseg.tuning.prune import FirstEpochDice, TrialPruned
from denseseg.tuning.space import SearchSpace
from denseseg.tuning.study import TuningError, finished_count, open_study, recover_interrupted, run_worker

__all__ = [
    "FirstEpochDice",
    "SearchSpace",
    "TrialPruned",
    "TuningError",
    "finished_count",
    "normalised_distances",
    "open_study",
    "pareto_mask",
    "pick_compromise",
    "recover_interrupted",
    "run_worker",
]
