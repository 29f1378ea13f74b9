"""Labelling through the executors: local process pool, dask.distributed, lost tasks."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from lam_lab.data import Frame
from lam_lab.labelers import Executor, LabelCache, LocalExecutor, SerialExecutor, get_labeler, make_executor
from lam_lab.labelers.executor import TaskOutcome


def cu_frames(n: int = 4) -> list[Frame]:
    """Rattled 4-atom fcc Cu cells (Å)."""
    out = []
    for s in range(n):
        a = bulk("Cu", "fcc", a=3.6, cubic=True)
        a.rattle(0.05, seed=10 + s)
        out.append(Frame.from_atoms(a))
    return out


def same_labels(a, b) -> None:
    assert [f.labels["emt"].energy for f in a.frames] == pytest.approx([f.labels["emt"].energy for f in b.frames], abs=1e-12)
    for fa, fb in zip(a.frames, b.frames):
        np.testing.assert_allclose(fa.labels["emt"].forces, fb.labels["emt"].forces, atol=1e-12)


def test_make_executor_choices():
    ex, owned = make_executor(1)
    assert isinstance(ex, LocalExecutor) and ex.n_workers == 1 and owned
    mine = SerialExecutor()
    assert make_executor(mine) == (mine, False)
    with pytest.raises(TypeError):
        make_executor(3.5)
    with pytest.raises(ValueError):
        LocalExecutor(0)


def test_local_process_pool_matches_in_process(tmp_path):
    frames = cu_frames()
    lab = get_labeler("emt")
    serial = lab.label(frames, executor=1, progress=False)
    with LocalExecutor(n_workers=2) as ex:
        pooled = lab.label(frames, executor=ex, cache_dir=tmp_path, progress=False)
        assert pooled.indices == [0, 1, 2, 3] and pooled.n_computed == 4
        same_labels(serial, pooled)
        # a second batch reuses the same workers
        assert lab.label(frames[:2], executor=ex, progress=False).n_labelled == 2
    assert len(LabelCache(tmp_path)) == 4


@pytest.mark.parametrize("processes", [False, True])
def test_dask_local_cluster(processes, tmp_path):
    distributed = pytest.importorskip("distributed")
    frames = cu_frames()
    lab = get_labeler("emt")
    serial = lab.label(frames, executor=1, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        res = lab.label(frames, executor=client, cache_dir=tmp_path, progress=False)
        same_labels(serial, res)
        # by scheduler address too; everything now comes from the cache written by this process
        again = lab.label(frames, executor=cluster.scheduler_address, cache_dir=tmp_path, progress=False)
        assert (again.n_cached, again.n_computed) == (4, 0)


class LosingExecutor(Executor):
    """Loses every other task, as a cluster that drops a worker would."""

    def run(self, fn, tasks):
        for i, args in enumerate(tasks):
            yield TaskOutcome(i, error="KilledWorker: worker died") if i % 2 else TaskOutcome(i, fn(*args))


def test_lost_tasks_are_failures_but_not_cached(tmp_path):
    frames = cu_frames()
    lab = get_labeler("emt")
    res = lab.label(frames, executor=LosingExecutor(), cache_dir=tmp_path, progress=False)
    assert res.indices == [0, 2] and [f.index for f in res.failed] == [1, 3]
    assert "executor error: KilledWorker" in res.failed[0].reason
    retry = lab.label(frames, executor=1, cache_dir=tmp_path, progress=False)
    assert (retry.n_cached, retry.n_computed, retry.n_failed) == (2, 2, 0)
