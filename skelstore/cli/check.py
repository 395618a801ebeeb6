"""Commands that check and mend dumps: ``validate``, ``repair``."""

from __future__ import annotations

import sys
from typing import Any

import click

from skelstore.cli.app import EXIT_CHECK_FAILED, Context, cli, guarded
from skelstore.cli.options import (
    corpus_options,
    engine_option,
    finish_corpus,
    make_runner,
    sources_of,
    storage_option,
)


@cli.command()
@click.argument("urls", nargs=-1)
@click.option("--deep", is_flag=True, help="Also read all keypoint data (finite values).")
@engine_option
@storage_option
@corpus_options
@guarded
def validate(
    ctx: Context,
    urls: tuple[str, ...],
    deep: bool,
    engine: str | None,
    files_from: Any,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Check dumps' structure; exit 1 if any problem is found.

    With several URLs, globs or --files-from, every file is checked as one task
    (on Dask for two files or more), a file that cannot be read is reported and
    the others go on, and a summary table ends the output.
    """
    from skelstore.corpus.sources import is_glob

    sources = sources_of(urls, files_from)
    many = len(sources) > 1 or is_glob(sources[0]) or files_from is not None
    if many or workers is not None or scheduler:
        _validate_corpus(
            ctx, sources, deep, make_runner(workers, scheduler, sys.stderr.isatty()), engine
        )
        return
    import skelstore
    from skelstore.validate import validate as run

    url = sources[0]
    with skelstore.open(url, engine=engine, storage_options=ctx.storage_options) as root:
        rep = run(root, deep=deep)
    _print_validation(url, rep)
    if not rep.ok:
        sys.exit(EXIT_CHECK_FAILED)


def _print_validation(url: str, rep: Any) -> None:
    status = "ok" if rep.ok else f"{len(rep.problems)} problem(s)"
    faces = f", {rep.faces} faces" if getattr(rep, "faces", None) is not None else ""
    click.echo(f"{url}: {status} ({rep.shots} shots, {rep.tracks} tracks{faces})")
    for p in rep.problems:
        click.echo(f"  {p}")


def _validate_corpus(
    ctx: Context, sources: list[str], deep: bool, runner: Any, engine: str | None = None
) -> None:
    from skelstore.corpus import validate_corpus

    report = validate_corpus(
        sources, deep=deep, storage_options=ctx.storage_options, runner=runner, engine=engine
    )
    for r in report.results:
        if r.validation is not None:
            _print_validation(r.src, r.validation)
    finish_corpus(ctx, report, report.table())


@cli.command()
@click.argument("url")
@engine_option
@storage_option
@guarded
def repair(ctx: Context, url: str, engine: str | None) -> None:
    """Make a dump whose writer died readable: drop the unfinished shot, remove the mark."""
    from skelstore.engines import get_engine, guess_engine
    from skelstore.recovery import repair as do_repair

    # the engine's own open: skelstore.open refuses to write to an unfinished dump
    eng = get_engine(engine) if engine else guess_engine(url, "r+", ctx.storage_options)
    with eng.open(url, "r+", storage_options=ctx.storage_options) as root:
        intact, deleted = do_repair(root)
    gone = f"; removed {', '.join(deleted)}" if deleted else ""
    click.echo(f"{url}: {intact} complete shot(s) kept{gone}")
