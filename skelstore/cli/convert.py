"""``skelstore convert``: one dump, or many into a directory (a corpus run)."""

from __future__ import annotations

import sys
from typing import Any

import click

from skelstore.cli.app import Context, cli, guarded
from skelstore.cli.options import (
    PRESETS,
    corpus_options,
    finish_corpus,
    layout_option,
    make_runner,
    sources_of,
    storage_option,
    zarr_format_option,
)


@cli.command()
@click.argument("paths", nargs=-1)
@click.option(
    "--to-dir",
    help="Convert every source (paths, URLs, globs) into this directory or URL prefix: "
    "verified, resumable, in parallel.",
)
@click.option("--engine", help="Destination engine (hdf5, zarr); guessed from DST's suffix.")
@click.option(
    "--src-engine",
    metavar="ENGINE",
    help="Engine of the source(s): hdf5 or zarr (default: told from the name, else from "
    "the contents).",
)
@click.option(
    "--compression",
    type=click.Choice(PRESETS),
    help="Recompress pose arrays with this preset (default: keep the source's).",
)
@zarr_format_option
@layout_option
@click.option("--verify", is_flag=True, help="Re-read the output and compare it with the source.")
@click.option("--overwrite", is_flag=True, help="Replace an existing destination.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@storage_option
@corpus_options
@guarded
def convert(
    ctx: Context,
    paths: tuple[str, ...],
    to_dir: str | None,
    engine: str | None,
    src_engine: str | None,
    compression: str | None,
    zarr_format: str | None,
    layout: str | None,
    verify: bool,
    overwrite: bool,
    quiet: bool,
    files_from: Any,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Convert SRC to DST, or every SRC into --to-dir DIR.

    \b
      skelstore convert video.h5 video.zarr --verify
      skelstore convert 'dumps/*.h5' --to-dir s3://bucket/zarr --engine zarr

    With --to-dir, every conversion is verified, and the copy records it (root
    attribute skelstore_verified); running again skips what is recorded.
    Files run on Dask when there are two or more (see --workers, --scheduler); a
    file that fails is reported and the others go on; exit code 1 if any failed.
    """
    progress = not quiet and sys.stderr.isatty()
    zf = int(zarr_format) if zarr_format else None
    if to_dir is not None:
        _convert_corpus(
            ctx, sources_of(paths, files_from), to_dir, engine, compression, zf, overwrite, quiet,
            make_runner(workers, scheduler, progress), src_engine, layout,
        )  # fmt: skip
        return
    from skelstore.conversion import convert as do_convert

    if workers is not None or scheduler or files_from:
        raise click.UsageError("--workers, --scheduler and --files-from need --to-dir")
    if len(paths) != 2:
        raise click.UsageError("give SRC DST, or SRC... --to-dir DIR")
    report = do_convert(
        paths[0],
        paths[1],
        engine=engine,
        compression=compression,
        zarr_format=zf,
        storage_options=ctx.storage_options,
        verify=verify,
        progress=progress,
        overwrite=overwrite,
        src_engine=src_engine,
        layout=layout,
    )
    if not quiet:
        click.echo(report.summary())


def _convert_corpus(
    ctx: Context,
    sources: list[str],
    to_dir: str,
    engine: str | None,
    compression: str | None,
    zarr_format: int | None,
    overwrite: bool,
    quiet: bool,
    runner: Any,
    src_engine: str | None = None,
    layout: str | None = None,
) -> None:
    from skelstore.corpus import convert_corpus

    report = convert_corpus(
        sources,
        to_dir,
        engine=engine,
        compression=compression,
        zarr_format=zarr_format,
        overwrite=overwrite,
        storage_options=ctx.storage_options,
        runner=runner,
        src_engine=src_engine,
        layout=layout,
    )
    if not quiet:
        for r in report.results:
            if r.status == "converted" and r.conversion is not None:
                click.echo(r.conversion.summary())
            elif r.status == "skipped":
                click.echo(f"{r.src} -> {r.dst}: skipped ({r.note})")
    finish_corpus(ctx, report, None if quiet else report.table())
