"""Where labelling tasks run: in-process, a local process pool, or a dask.distributed cluster."""

from __future__ import annotations

import contextlib
import os
import uuid
from abc import ABC, abstractmethod
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class TaskOutcome:
    """One finished task: its position in the submitted list and its value, or why the executor lost it."""

    index: int
    value: Any = None
    error: str | None = None


class Executor(ABC):
    """Runs ``fn(*args)`` for each args tuple and yields :class:`TaskOutcome` as tasks finish."""

    @abstractmethod
    def run(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[TaskOutcome]:
        """Yield one outcome per task, in completion order."""

    def close(self) -> None:  # noqa: B027 (an optional hook: most executors have nothing to release)
        """Release workers this executor started (no-op by default)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SerialExecutor(Executor):
    """Runs tasks one after the other in this process (easy to debug, no pickling)."""

    def run(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[TaskOutcome]:
        for i, args in enumerate(tasks):
            try:
                yield TaskOutcome(i, fn(*args))
            except Exception as exc:  # the task function catches method errors; this is a bug guard
                yield TaskOutcome(i, error=f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        return "SerialExecutor()"


def default_workers() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class LocalExecutor(Executor):
    """A pool of ``n_workers`` local processes (``spawn``), each limited to ``threads_per_worker``.

    ``n_workers=1`` (or a single task) runs in this process instead. Worker processes start with
    OMP/BLAS thread variables set, so numerical libraries do not oversubscribe the cores.
    ``spawn`` (not ``fork``) because forking a process whose OpenMP runtime is already running
    (torch, PySCF) can hang the child; as with any spawn pool, a script that labels at top
    level needs the ``if __name__ == "__main__":`` guard (notebooks and the CLI need nothing).
    """

    def __init__(self, n_workers: int | None = None, threads_per_worker: int = 1, start_method: str = "spawn"):
        self.n_workers = default_workers() if n_workers is None else int(n_workers)
        if self.n_workers < 1:
            raise ValueError(f"n_workers must be >= 1, got {n_workers}")
        self.threads_per_worker = int(threads_per_worker)
        self.start_method = start_method
        self._pool: ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"LocalExecutor(n_workers={self.n_workers}, threads_per_worker={self.threads_per_worker})"

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = ProcessPoolExecutor(self.n_workers, mp_context=mp.get_context(self.start_method))
        return self._pool

    def run(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[TaskOutcome]:
        if self.n_workers == 1 or len(tasks) <= 1:
            yield from SerialExecutor().run(fn, tasks)
            return
        pool = self._get_pool()
        # spawn copies os.environ when a worker starts, and workers start inside submit()
        with _thread_env(self.threads_per_worker):
            futures: dict[Future, int] = {pool.submit(fn, *args): i for i, args in enumerate(tasks)}
        broken = False
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    yield TaskOutcome(i, fut.result())
                except BrokenProcessPool as exc:
                    broken = True
                    yield TaskOutcome(i, error=f"worker process died ({exc}); out of memory, or a script "
                                             "without the `if __name__ == '__main__':` guard that spawn needs?")
                except Exception as exc:  # pickling errors and the like
                    yield TaskOutcome(i, error=f"{type(exc).__name__}: {exc}")
        finally:
            for fut in futures:
                fut.cancel()
            if broken:  # a broken pool refuses new work: start afresh next time
                self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Temporarily set the thread-count variables that child processes inherit."""
    old = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: str(threads) for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class DaskExecutor(Executor):
    """Tasks on a dask.distributed cluster, given a ``Client`` or a scheduler address.

    Results come back to this process (which writes the cache), so workers need no shared disk.
    """

    def __init__(self, client_or_address: Any):
        from distributed import Client

        if isinstance(client_or_address, Client):
            self.client, self._owns = client_or_address, False
        else:
            self.client, self._owns = Client(client_or_address), True

    def __repr__(self) -> str:
        return f"DaskExecutor({self.client.scheduler.address})"

    def run(self, fn: Callable[..., Any], tasks: Sequence[tuple]) -> Iterator[TaskOutcome]:
        from distributed import as_completed as dask_as_completed

        tag = uuid.uuid4().hex[:8]
        futures = [self.client.submit(fn, *args, key=f"lam-label-{tag}-{i}", pure=False)
                   for i, args in enumerate(tasks)]
        where = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in dask_as_completed(futures):
                i = where[fut.key]
                try:
                    yield TaskOutcome(i, fut.result())
                except Exception as exc:  # KilledWorker, CancelledError, lost connection
                    yield TaskOutcome(i, error=f"{type(exc).__name__}: {exc}")
                finally:
                    fut.release()
        finally:
            self.client.cancel([f for f in futures if not f.done()])

    def close(self) -> None:
        if self._owns:
            self.client.close()


def make_executor(spec: Any = None) -> tuple[Executor, bool]:
    """Executor for ``spec`` and whether the caller owns it (must close it).

    ``None`` → local pool over all cores; ``int`` → local pool of that many workers (1 = in-process);
    ``str`` → dask scheduler address; ``distributed.Client`` → that client; an :class:`Executor` → itself.
    """
    if isinstance(spec, Executor):
        return spec, False
    if spec is None:
        return LocalExecutor(), True
    if isinstance(spec, bool):
        raise TypeError("executor must be None, an int, a scheduler address, a dask Client or an Executor")
    if isinstance(spec, int):
        return LocalExecutor(spec), True
    if isinstance(spec, str):
        return DaskExecutor(spec), True
    try:
        from distributed import Client
    except ImportError:  # dask is an optional extra
        Client = None  # type: ignore[assignment,misc]
    if Client is not None and isinstance(spec, Client):
        return DaskExecutor(spec), False
    raise TypeError(f"cannot make an executor from {type(spec).__name__}: {spec!r}")
