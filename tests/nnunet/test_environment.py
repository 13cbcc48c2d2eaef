"""nnunet_environment: nnU-Net's folder variables and a pool start method that inherits no handler."""

import multiprocessing
import os
import signal

from denseseg.nnunet.environment import Folders, nnunet_environment


def _raise_on_sigterm(signum, frame):  # what Prefect's engine installs in a stage's process
    raise RuntimeError("terminated")


def test_sets_and_restores_variables_and_start_method(tmp_path, monkeypatch):
    monkeypatch.setenv("nnUNet_raw", "/elsewhere")
    monkeypatch.delenv("nnUNet_results", raising=False)
    before = multiprocessing.get_start_method(allow_none=True)
    folders = Folders(tmp_path / "raw", tmp_path / "pre", tmp_path / "res")
    with nnunet_environment(folders, 3):
        assert os.environ["nnUNet_raw"] == str((tmp_path / "raw").resolve())
        assert os.environ["nnUNet_results"] == str((tmp_path / "res").resolve())
        assert os.environ["nnUNet_n_proc_DA"] == "3"
        assert multiprocessing.get_start_method() == "forkserver"
    assert os.environ["nnUNet_raw"] == "/elsewhere"
    assert "nnUNet_results" not in os.environ
    assert multiprocessing.get_start_method(allow_none=True) == before


def test_pool_workers_do_not_inherit_the_stage_sigterm_handler(tmp_path):
    # A plain multiprocessing.Pool inside the block (as nnU-Net's file listing makes one) must not copy the
    # stage's SIGTERM handler into its workers: Pool.terminate() would then raise inside them (the hang seen).
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        with nnunet_environment(Folders(tmp_path, tmp_path, tmp_path), 1):
            with multiprocessing.Pool(2) as pool:
                handlers = pool.map(signal.getsignal, [signal.SIGTERM, signal.SIGTERM])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert handlers == [signal.SIG_DFL, signal.SIG_DFL]
