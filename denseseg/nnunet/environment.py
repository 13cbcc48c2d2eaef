"""nnU-Net's folder variables, set only while a call runs.

``nnunetv2`` finds its raw, preprocessed and results folders through the
environment variables ``nnUNet_raw``, ``nnUNet_preprocessed`` and
``nnUNet_results`` (read at each use in nnunetv2 2.8). The library knows no
folder layout, so every function takes the folders as ``Folders`` and sets the
variables for the duration of the call, restoring what was there before.
Worker processes nnU-Net spawns inherit them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Folders:
    """The three nnU-Net folders of one run."""

    raw: Path
    preprocessed: Path
    results: Path


@contextmanager
def nnunet_environment(folders: Folders, augmentation_processes: int) -> Iterator[None]:
    """Point nnU-Net at ``folders`` (and set its augmentation worker count) inside the ``with`` block."""
    values = {
        "nnUNet_raw": str(Path(folders.raw).resolve()),
        "nnUNet_preprocessed": str(Path(folders.preprocessed).resolve()),
        "nnUNet_results": str(Path(folders.results).resolve()),
        "nnUNet_n_proc_DA": str(augmentation_processes),
    }
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
