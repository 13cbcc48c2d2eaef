"""Checkpoints: written atomically, read back safely, refused with a reason.

Why: a training run killed mid-write must never leave a file a rerun trusts, and a
checkpoint is read with ``torch.load(weights_only=True)`` so that a file cannot run
code; everything stored in one is therefore tensors and plain Python values.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from denseseg.io.atomic import atomic_file


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """Write ``state`` to ``path`` through a temporary sibling and ``os.replace``; returns the path."""
    path = Path(path)
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
    return path


def load_checkpoint(
    path: str | os.PathLike, *, required: Iterable[str] = (), fingerprint: str | None = None, map_location="cpu"
) -> dict:
    """Read a checkpoint written by ``save_checkpoint``.

    Args:
        path: the checkpoint file.
        required: keys the checkpoint must hold.
        fingerprint: when given, the checkpoint's "fingerprint" must equal it.
        map_location: where tensors are loaded (CPU by default, moved later).

    Raises:
        CheckpointError: missing, truncated or corrupt file, a file that is not a
            dict, missing keys, or another fingerprint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: no such file")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError ... for broken files
        raise CheckpointError(
            f"checkpoint {path}: cannot be read, the file is truncated or corrupt "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path}: holds a {type(state).__name__}, not a dict of training state")
    missing = sorted(set(required) - set(state))
    if missing:
        raise CheckpointError(f"checkpoint {path}: missing keys {missing}")
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"checkpoint {path}: written for fingerprint {state.get('fingerprint')!r}, expected {fingerprint!r}"
        )
    return state


# the two files of a training workdir, and what a resumable last.pt holds
LAST = "last.pt"
BEST = "best.pt"
LAST_KEYS = (
    "epoch",
    "fingerprint",
    "network",
    "optimizer",
    "scheduler",
    "rng",
    "history",
    "best_epoch",
    "best_metric",
)


def load_best(network: nn.Module, workdir: Path) -> dict:
    """Load best.pt's weights into ``network``; returns {"epoch", "monitor", "metric"} of that checkpoint."""
    path = Path(workdir) / BEST
    state = load_checkpoint(path, required=("network", "epoch", "monitor", "metric"))
    try:
        network.load_state_dict(state["network"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: does not fit this network ({exc})") from exc
    return {"epoch": state["epoch"], "monitor": state["monitor"], "metric": state["metric"]}
