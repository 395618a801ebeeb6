"""Where a corpus run's tasks execute: in this process, or on Dask.

:class:`Runner` maps a task function over jobs and returns one
:class:`~skelstore.corpus.tasks.FileResult` per job, in the jobs' order. It
does no scheduling of its own: with Dask it submits one task per file to a
``distributed`` cluster and collects the results as they complete.

When Dask is used (:meth:`Runner.uses_dask`):

* with ``client`` (a ``distributed.Client``) or ``scheduler`` (an address):
  always, on that cluster;
* with ``workers=0``: never; the files run one after the other in this process;
* otherwise: when there are two or more files, on a ``LocalCluster`` started for
  the run and closed after it, with ``workers`` worker *processes* (default: one
  per CPU this process may use, at most one per file) of one thread each. HDF5
  serialises every call within a process, so threads would not run in
  parallel. The cluster listens on 127.0.0.1 only and has no dashboard.

Dask (``distributed``) is an optional dependency, imported only here and only
when used (``pip install 'skelstore[dask]'``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import Any

from skelstore.config import Settings, applied, get_options
from skelstore.corpus.tasks import FileResult, Job
from skelstore.errors import MissingDependencyError

__all__ = ["Runner", "default_workers", "import_distributed"]

#: Seconds to wait for a scheduler given by address to answer.
CONNECT_TIMEOUT = 30


def import_distributed() -> Any:
    """The ``distributed`` module.

    Raises:
        MissingDependencyError: Dask is not installed (the message says how to
            install it, and how to run without it).
    """
    try:
        import distributed
    except ImportError as exc:
        raise MissingDependencyError(
            f"running many files in parallel needs Dask, which is not installed ({exc}); "
            "pip install 'skelstore[dask]', or run one file after another with "
            "workers=0"
        ) from exc
    return distributed


def _under_settings(
    settings: Settings, fn: Callable[..., FileResult], job: Job, **kwargs: Any
) -> FileResult:
    """``fn(job, **kwargs)`` under ``settings``: a Dask worker does not share the
    caller's process, so the caller's settings travel with each task."""
    with applied(settings):
        return fn(job, **kwargs)


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Runner:
    """How a corpus run executes (see the module documentation for when Dask is used).

    Attributes:
        workers: size of the ``LocalCluster`` (worker processes); ``None``: one
            per CPU; ``0``: no Dask, run in this process.
        scheduler: address of an existing Dask scheduler (``tcp://host:8786``).
        client: an existing ``distributed.Client`` (it is not closed).
        progress: show a progress bar (tqdm, on stderr) over the files.
    """

    workers: int | None = None
    scheduler: str | None = None
    client: Any = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"workers must be >= 0, not {self.workers}")

    def uses_dask(self, n_files: int) -> bool:
        """True if a run over ``n_files`` files goes to Dask."""
        if self.client is not None or self.scheduler:
            return True
        return self.workers != 0 and n_files > 1

    def local_workers(self, n_files: int) -> int:
        """Workers of the ``LocalCluster`` a run over ``n_files`` files would start."""
        return max(1, min(self.workers or default_workers(), n_files))

    def describe(self, n_files: int) -> str:
        """Where a run over ``n_files`` files executes, for messages."""
        if self.client is not None:
            return f"Dask cluster {self.client.scheduler.address}"
        if self.scheduler:
            return f"Dask scheduler {self.scheduler}"
        if not self.uses_dask(n_files):
            return "this process"
        return f"local Dask cluster ({self.local_workers(n_files)} worker processes)"

    def map(
        self,
        fn: Callable[..., FileResult],
        jobs: Sequence[Job],
        *,
        desc: str = "files",
        **kwargs: Any,
    ) -> list[FileResult]:
        """``fn(job, **kwargs)`` for every job; the results in the jobs' order.

        ``fn`` must be a module-level function (Dask workers import it by name).
        Every task runs under the caller's settings (:func:`skelstore.get_options`),
        in worker processes too. An error that escapes a task (a worker that died,
        a cancelled task) is returned as that job's ``failed`` result.

        Raises:
            MissingDependencyError: Dask is needed but not installed.
        """
        if not self.uses_dask(len(jobs)):
            return self._serial(partial(fn, **kwargs), jobs, desc)
        return self._dask(partial(_under_settings, get_options(), fn, **kwargs), jobs, desc)

    def _bar(self, total: int, desc: str) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, disable=not self.progress, unit="file", desc=desc)

    def _serial(
        self, task: Callable[[Job], FileResult], jobs: Sequence[Job], desc: str
    ) -> list[FileResult]:
        out = []
        with self._bar(len(jobs), desc) as bar:
            for job in jobs:
                t0 = time.perf_counter()
                try:
                    out.append(task(job))
                except Exception as exc:  # tasks catch their own; this is a safety net
                    out.append(FileResult.from_error(job, exc, time.perf_counter() - t0))
                bar.update(1)
        return out

    def _dask(
        self, task: Callable[[Job], FileResult], jobs: Sequence[Job], desc: str
    ) -> list[FileResult]:
        distributed = import_distributed()
        results: list[FileResult | None] = [None] * len(jobs)
        with ExitStack() as stack:
            client = self.client
            if client is None and self.scheduler:
                client = stack.enter_context(
                    distributed.Client(self.scheduler, timeout=CONNECT_TIMEOUT)
                )
            elif client is None:
                cluster = stack.enter_context(
                    distributed.LocalCluster(
                        n_workers=self.local_workers(len(jobs)),
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                        # no dashboard; the scheduler's HTTP routes on a free loopback port
                        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.ERROR,
                    )
                )
                client = stack.enter_context(distributed.Client(cluster))
            futures = client.map(task, list(jobs), pure=False)
            where = {f.key: i for i, f in enumerate(futures)}
            try:
                with self._bar(len(jobs), desc) as bar:
                    for fut in distributed.as_completed(futures):
                        i = where[fut.key]
                        try:
                            results[i] = fut.result()
                        except (KeyboardInterrupt, SystemExit):
                            raise
                        except BaseException as exc:  # KilledWorker, a cancelled future, ...
                            results[i] = FileResult.from_error(jobs[i], exc)
                        fut.release()
                        bar.update(1)
            finally:
                client.cancel([f for f in futures if not f.done()])
        return [
            r if r is not None else FileResult.from_error(j, RuntimeError("no result"))
            for r, j in zip(results, jobs, strict=True)
        ]
