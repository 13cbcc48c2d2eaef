"""nnU-Net's folder variables, set only while a call runs.

``nnunetv2`` finds its raw, preprocessed and results folders through the
environment variables ``nnUNet_raw``, ``nnUNet_preprocessed`` and
``nnUNet_results`` (read at each use in nnunetv2 2.8). The library knows no
folder layout, so every function takes the folders as ``Folders`` and sets the
variables for the duration of the call, restoring what was there before.
Worker processes nnU-Net spawns inherit them.

Some of nnU-Net's process pools use the platform's default start method (for
example the file listing of ``get_filenames_of_train_images_and_targets``, a
``multiprocessing.Pool`` of 12), which is ``fork`` on Linux. Forking the
stage's process copies Prefect's threads' locks and its SIGTERM handler into
every worker; when the pool ends, ``terminate`` sends SIGTERM, the copied
handler raises inside the worker, and a worker can then block for ever on a lock
that no thread of the child will release: the stage hung there once in a
``dvc repro`` on this project (``nnunet@nnunet-jsrt``, preprocessing, every CPU
idle). Inside the block the default start method is therefore ``forkserver``:
workers fork from a clean single-threaded server process that never ran a flow.
"""

from __future__ import annotations

import multiprocessing
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
    """Point nnU-Net at ``folders`` (and set its augmentation worker count) inside the ``with`` block,
    with ``forkserver`` as the default start method of process pools (see the module docstring)."""
    values = {
        "nnUNet_raw": str(Path(folders.raw).resolve()),
        "nnUNet_preprocessed": str(Path(folders.preprocessed).resolve()),
        "nnUNet_results": str(Path(folders.results).resolve()),
        "nnUNet_n_proc_DA": str(augmentation_processes),
    }
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    start_method = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("forkserver", force=True)
    try:
        yield
    finally:
        multiprocessing.set_start_method(start_method, force=True)
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
