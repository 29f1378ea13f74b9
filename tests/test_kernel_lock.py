"""A kernel build killed mid-way leaves PyTorch's lock file; the next process clears it instead of waiting forever."""

from __future__ import annotations

import os
import time

import pytest


def test_stale_build_lock_is_removed_and_a_fresh_one_kept(tmp_path, monkeypatch):
    from torch.utils.cpp_extension import _get_build_directory

    from lam_lab.nn import kernels

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    lock = tmp_path / "x" / "lock"
    assert lock.parent == __import__("pathlib").Path(_get_build_directory("x", verbose=False))
    lock.touch()
    kernels._clear_stale_lock("x")  # a build may be running right now: leave it
    assert lock.exists()
    old = time.time() - kernels.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    with pytest.warns(UserWarning, match="stale kernel build lock"):
        kernels._clear_stale_lock("x")
    assert not lock.exists()
