"""Options and helpers shared by several commands: ``-o/--storage-option``,
``--engine``, the options of commands that write a new dump, and those of runs
over many files (``--files-from``, ``--workers``, ``--scheduler``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from skelstore.cli.app import EXIT_CHECK_FAILED, Context, cli_text


def storage_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """-o/--storage-option on a command (also accepted before the command)."""
    return click.option(
        "-o",
        "--storage-option",
        "command_storage_options",
        multiple=True,
        metavar="KEY=VALUE",
        help="fsspec storage option for the URLs (repeatable; VALUE parsed as JSON where it "
        "parses, else a string), e.g. -o anon=true -o endpoint_url=http://host:9000.",
    )(fn)


#: The compression presets, as ``--compression`` offers them.
PRESETS = ["none", "lossless", "lossless9", "lossy", "lossy9"]


def zarr_format_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--zarr-format of a command's output."""
    return click.option(
        "--zarr-format", type=click.Choice(["2", "3"]), help="Zarr format of the output."
    )(fn)


def layout_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--layout of a command's output."""
    return click.option(
        "--layout",
        type=click.Choice(["skelshop", "packed"]),
        help="Layout of the output (default: packed for Zarr, skelshop's for HDF5).",
    )(fn)


def new_dump_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--compression, --engine, --zarr-format, --layout and --overwrite of a command
    that writes a new dump."""
    fn = click.option("--overwrite", is_flag=True, help="Replace an existing DST.")(fn)
    fn = layout_option(fn)
    fn = zarr_format_option(fn)
    fn = click.option(
        "--engine", help="Destination engine (hdf5, zarr); guessed from DST's suffix."
    )(fn)
    return click.option(
        "--compression",
        type=click.Choice(PRESETS),
        help="Compression preset of the pose arrays (default: none).",
    )(fn)


def engine_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--engine: the engine of the dumps a command reads."""
    return click.option(
        "--engine",
        metavar="ENGINE",
        help="Engine of the dump(s) read: hdf5 or zarr (default: told from the name, "
        "else from the contents).",
    )(fn)


def corpus_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--files-from, --workers, --scheduler: the options of runs over many files."""
    fn = click.option(
        "--scheduler",
        metavar="ADDRESS",
        help="Run on this Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, else a local cluster).",
    )(fn)
    fn = click.option(
        "--workers",
        type=click.IntRange(min=0),
        help="Worker processes of the local Dask cluster (default: one per CPU); "
        "0: no Dask, one file after another in this process.",
    )(fn)
    fn = click.option(
        "--files-from",
        type=click.File("r"),
        metavar="FILE",
        help="Also read sources from FILE, one a line ('-': stdin).",
    )(fn)
    return fn


def sources_of(args: Sequence[str], files_from: Any) -> list[str]:
    out = list(args)
    if files_from is not None:
        out += [ln.strip() for ln in files_from if ln.strip() and not ln.lstrip().startswith("#")]
    if not out:
        raise click.UsageError("give one source or more (or --files-from FILE)")
    return out


def make_runner(workers: int | None, scheduler: str | None, progress: bool) -> Any:
    """The corpus runner: --scheduler, else --workers, else $DASK_SCHEDULER_ADDRESS."""
    from skelstore.corpus import Runner

    if scheduler and workers is not None:
        raise click.UsageError("--workers sizes a local cluster; it does not go with --scheduler")
    if not scheduler and workers is None:
        scheduler = os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    return Runner(workers=workers, scheduler=scheduler, progress=progress)


def report_failures(ctx: Context, report: Any) -> None:
    """One line on stderr per failed file (with --debug, its traceback too)."""
    for r in report.failed:
        error = cli_text(r.error or "")
        click.echo(f"skelstore: failed: {r.src}: {r.error_type}: {error}", err=True)
        if ctx.debug and r.traceback:
            click.echo(r.traceback, err=True)


def finish_corpus(ctx: Context, report: Any, table: str | None) -> None:
    """End a run over many files: each failure on stderr, then ``table`` and the
    report's footer (neither when ``table`` is None: ``--quiet``); exit 1 when a
    file failed."""
    report_failures(ctx, report)
    if table is not None:
        click.echo(table)
        click.echo(report.footer(), err=True)
    if not report.ok:
        sys.exit(EXIT_CHECK_FAILED)
