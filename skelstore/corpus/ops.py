"""The corpus operations: convert, validate and describe many dumps."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from skelstore.corpus.report import CorpusReport
from skelstore.corpus.runner import Runner
from skelstore.corpus.sources import check_distinct, destination_for, expand_sources
from skelstore.corpus.tasks import Job, convert_file, info_file, validate_file
from skelstore.errors import EngineError, ReadOnlyError
from skelstore.urls import is_local, is_read_only, local_path, protocol, split_suffix

__all__ = ["convert_corpus", "info_corpus", "plan_conversion", "validate_corpus"]


def _check_processes(urls: Iterable[str], runner: Runner, n: int) -> None:
    """``memory://`` lives in one process: refuse it when tasks go to Dask workers."""
    if not runner.uses_dask(n):
        return
    for url in urls:
        if any(protocol(part) == "memory" for part in url.split("::")):
            raise EngineError(
                f"{url}: memory:// exists only in this process, not on Dask workers; "
                "run with workers=0"
            )


def _read_jobs(
    sources: str | Iterable[str], storage_options: dict[str, Any] | None, runner: Runner | None
) -> tuple[Runner, list[Job]]:
    """The runner (a default one if ``None``) and a job per source, globs expanded,
    for a command that only reads (checked: no ``memory://`` on Dask workers)."""
    runner = runner or Runner()
    jobs = [Job(s) for s in expand_sources(sources, storage_options)]
    _check_processes([j.src for j in jobs], runner, len(jobs))
    return runner, jobs


def _run(command: str, fn: Any, jobs: list[Job], runner: Runner, **kwargs: Any) -> CorpusReport:
    t0 = time.perf_counter()
    results = runner.map(fn, jobs, desc=command, **kwargs)
    return CorpusReport(command, results, runner.describe(len(jobs)), time.perf_counter() - t0)


def _destination_engine(src: str, engine: str | None, src_engine: str | None = None) -> str:
    """The destination engine: ``engine``, else the other of ``src``'s (``src_engine``,
    else by suffix)."""
    if engine:
        return engine
    from skelstore.engines import get_engine, guess_engine

    if src_engine:
        return "hdf5" if get_engine(src_engine).name == "zarr" else "zarr"
    suffix = split_suffix(src)
    if suffix in get_engine("zarr").suffixes:
        return "hdf5"
    if suffix in get_engine("hdf5").suffixes:
        return "zarr"
    try:
        return "hdf5" if guess_engine(src, "r").name == "zarr" else "zarr"
    except Exception:  # the file's own task reports why it cannot be read
        return "zarr"


def plan_conversion(
    sources: str | Iterable[str],
    to_dir: str,
    *,
    engine: str | None = None,
    storage_options: dict[str, Any] | None = None,
    src_engine: str | None = None,
) -> list[Job]:
    """The ``(source, destination)`` jobs of converting ``sources`` into ``to_dir``.

    Each destination is ``to_dir/<stem>.zarr`` or ``.h5``: the ``engine`` given,
    else the other engine than the source's (``src_engine``, else guessed).

    Raises:
        NotFoundError: a glob matches nothing.
        EngineError: two sources would be written to the same destination.
        ReadOnlyError: ``to_dir`` is a read-only URL.
    """
    if is_read_only(to_dir):
        raise ReadOnlyError(f"{to_dir}: HTTP(S) URLs are read only; cannot convert into one")
    srcs = expand_sources(sources, storage_options)
    pairs = [
        (s, destination_for(s, to_dir, _destination_engine(s, engine, src_engine))) for s in srcs
    ]
    check_distinct(pairs)
    return [Job(s, d) for s, d in pairs]


def convert_corpus(
    sources: str | Iterable[str],
    to_dir: str,
    *,
    engine: str | None = None,
    compression: str | None = None,
    zarr_format: int | None = None,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    runner: Runner | None = None,
    src_engine: str | None = None,
    layout: str | None = None,
) -> CorpusReport:
    """Convert every dump of ``sources`` into ``to_dir``, verified; resumable.

    Every conversion is verified before it is published (see
    :func:`skelstore.convert`) and recorded in the copy's root attribute
    ``skelstore_verified`` (:mod:`skelstore.corpus.record`); running again skips
    the files recorded. A file that fails is reported in its
    result and the others go on.

    Args:
        sources: paths, URLs or globs (:func:`~skelstore.corpus.sources.expand_sources`).
        to_dir: the destination directory or URL prefix (created if local).
        engine: destination engine; default: the other engine than each source's.
        compression: a preset for the pose arrays (default: keep the source's).
        zarr_format: 2 or 3 for Zarr destinations.
        overwrite: convert again and replace destinations even if recorded.
        storage_options: fsspec options for sources and destinations (sent to
            the Dask workers with each task).
        runner: where to run (default: :class:`Runner()`: Dask for two files or more).
        src_engine: the engine of every source (default: guessed per file).
        layout: the copies' layout (default: each destination engine's; see
            :func:`skelstore.convert`).

    Raises:
        NotFoundError: a glob matches nothing.
        EngineError: two sources would collide in ``to_dir``; ``memory://`` on Dask.
        MissingDependencyError: Dask is needed but not installed.
    """
    runner = runner or Runner()
    jobs = plan_conversion(
        sources, to_dir, engine=engine, storage_options=storage_options, src_engine=src_engine
    )
    _check_processes([to_dir, *(j.src for j in jobs)], runner, len(jobs))
    if is_local(to_dir):
        os.makedirs(local_path(to_dir), exist_ok=True)
    return _run(
        "convert", convert_file, jobs, runner,
        engine=engine, compression=compression, zarr_format=zarr_format,
        overwrite=overwrite, storage_options=storage_options, src_engine=src_engine,
        **({"layout": layout} if layout is not None else {}),
    )  # fmt: skip


def validate_corpus(
    sources: str | Iterable[str],
    *,
    deep: bool = False,
    storage_options: dict[str, Any] | None = None,
    runner: Runner | None = None,
    engine: str | None = None,
) -> CorpusReport:
    """Run the structural checks of :func:`skelstore.validate.validate` on every dump.

    Each result is ``ok``, ``invalid`` (its ``validation`` lists the problems) or
    ``failed`` (the file could not be opened or read; its error is named).
    ``engine`` is every file's engine (default: guessed per file).

    Raises:
        NotFoundError: a glob matches nothing.
        MissingDependencyError: Dask is needed but not installed.
    """
    runner, jobs = _read_jobs(sources, storage_options, runner)
    return _run(
        "validate", validate_file, jobs, runner, deep=deep, storage_options=storage_options,
        engine=engine,
    )  # fmt: skip


def info_corpus(
    sources: str | Iterable[str],
    *,
    storage_options: dict[str, Any] | None = None,
    runner: Runner | None = None,
    engine: str | None = None,
) -> CorpusReport:
    """:func:`skelstore.summary.describe` every dump; aggregate the report with
    :func:`~skelstore.corpus.report.summarize`. ``engine`` is every file's engine
    (default: guessed per file).

    Raises:
        NotFoundError: a glob matches nothing.
        MissingDependencyError: Dask is needed but not installed.
    """
    runner, jobs = _read_jobs(sources, storage_options, runner)
    return _run("info", info_file, jobs, runner, storage_options=storage_options, engine=engine)
