"""The ``skelstore`` command line (also ``python -m skelstore``).

Exit codes: 0 success; 1 a check failed (verification, validation); 2 usage
error or bad input; 130 interrupted (Ctrl-C, as shells report SIGINT). Errors are
one line on stderr naming the file and the problem; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from skelstore.config import set_options
from skelstore.errors import SkelstoreError, VerificationError
from skelstore.export import TARGETS
from skelstore.pose import MODES

__all__ = ["main"]

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
#: 128 + SIGINT, what a shell reports for a command stopped with Ctrl-C.
EXIT_INTERRUPTED = 130


class _Context:
    def __init__(self, debug: bool, storage_options: dict[str, Any]) -> None:
        self.debug = debug
        self.storage_options = storage_options or None


def _parse_options(values: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--storage-option")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


#: Library messages name the options that would help as Python arguments; how the
#: command line spells each (the commands that print them have these options).
_CLI_SPELLINGS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = tuple(
    (re.compile(pattern), cli)
    for pattern, cli in (
        (r"skelstore\.open\(\.\.\., engine=\.\.\.\)", "--engine ENGINE"),
        (r"(?<![\w.])src_engine=\.\.\.", "--src-engine ENGINE"),
        (r"(?<![\w.])engine=\.\.\.", "--engine ENGINE"),
        (r"(?<![\w.])overwrite=True\b", "--overwrite"),
        (r"(?<![\w.])missing='empty'", "--missing empty"),
        (r"(?<![\w.])workers=0\b", "--workers 0"),
        (r"(?<![\w.])zarr_format= ", "--zarr-format "),
        (r"\bwith tracked=False\b", "without --tracked"),
        (r"(?<![\w.])frames=slice\(a, b\) or shot=N\b", "--frames A:B or --shot N"),
        (r"(?<![\w.])frames= or shot=", "--frames or --shot"),
        (r"(?<![\w.])fps=\.\.\.", "--fps FPS"),
        (
            r"(?<![\w.])(\w+)= does not apply to export target '([\w-]+)'",
            lambda m: f"--{m[1].replace('_', '-')} does not apply to --to {m[2]}",
        ),
    )
)


def _cli_text(message: str) -> str:
    """``message`` on one line, with its Python option hints in the command line's
    spelling."""
    message = re.sub(r"\s*\n\s*", " ", message.strip())  # libhdf5's messages span lines
    for pattern, cli in _CLI_SPELLINGS:
        message = pattern.sub(cli, message)
    return message


def _fail(ctx: _Context, exc: BaseException, code: int) -> None:
    if ctx.debug:
        raise exc
    # one line, whatever the message holds (a server's error body may span lines)
    text = _cli_text(str(exc))
    message = " ".join(line.strip() for line in text.splitlines() if line.strip())
    click.echo(f"skelstore: error: {message}", err=True)
    sys.exit(code)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn skelstore and OS errors into one-line messages and exit codes."""

    @click.pass_obj
    def wrapper(obj: _Context, *args: Any, **kwargs: Any) -> Any:
        extra = kwargs.pop("command_storage_options", ())
        if extra:  # -o after the command adds to (and overrides) -o before it
            obj.storage_options = {**(obj.storage_options or {}), **_parse_options(extra)}
        try:
            return fn(obj, *args, **kwargs)
        except KeyboardInterrupt:  # Ctrl-C: not "a check failed" (1), not bad input (2)
            if obj.debug:
                raise
            click.echo("skelstore: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:  # output piped into `head` and closed: not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        except VerificationError as exc:
            _fail(obj, exc, EXIT_CHECK_FAILED)
        except (SkelstoreError, OSError, ValueError) as exc:
            _fail(obj, exc, EXIT_BAD_INPUT)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.option(
    "-o",
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="fsspec storage option (repeatable; VALUE parsed as JSON when it can be).",
)
@click.option(
    "--untrusted",
    is_flag=True,
    help="Files may be damaged or hostile: read each one's metadata in a watchdog child "
    "process first (about 0.5 s a file), so that none can hang or crash the run.",
)
@click.version_option(package_name="skelstore")
@click.pass_context
def cli(ctx: click.Context, debug: bool, storage_options: tuple[str, ...], untrusted: bool) -> None:
    """Skeleton (pose) dumps on any storage: HDF5 and Zarr, local or remote."""
    if not debug and not logging.getLogger().handlers:
        # errors are reported here, in one line: the filesystems' own logging (gcsfs
        # logs every failed request with its traceback) is shown with --debug only
        logging.getLogger().addHandler(logging.NullHandler())
    if untrusted:  # for every skelstore.open of this command, corpus tasks included
        ctx.with_resource(set_options(untrusted=True))
    ctx.obj = _Context(debug, _parse_options(storage_options))


def _storage_option(fn: Callable[..., Any]) -> Callable[..., Any]:
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


def _zarr_format_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--zarr-format of a command's output."""
    return click.option(
        "--zarr-format", type=click.Choice(["2", "3"]), help="Zarr format of the output."
    )(fn)


def _new_dump_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--compression, --engine and --zarr-format of a command that writes a new dump."""
    fn = _zarr_format_option(fn)
    fn = click.option(
        "--engine", help="Destination engine (hdf5, zarr); guessed from DST's suffix."
    )(fn)
    return click.option(
        "--compression",
        type=click.Choice(PRESETS),
        help="Compression preset of the pose arrays (default: none).",
    )(fn)


def _engine_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--engine: the engine of the dumps a command reads."""
    return click.option(
        "--engine",
        metavar="ENGINE",
        help="Engine of the dump(s) read: hdf5 or zarr (default: told from the name, "
        "else from the contents).",
    )(fn)


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1000
    return f"{n} B"


def _corpus_options(fn: Callable[..., Any]) -> Callable[..., Any]:
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


def _sources(args: Sequence[str], files_from: Any) -> list[str]:
    out = list(args)
    if files_from is not None:
        out += [ln.strip() for ln in files_from if ln.strip() and not ln.lstrip().startswith("#")]
    if not out:
        raise click.UsageError("give one source or more (or --files-from FILE)")
    return out


def _runner(workers: int | None, scheduler: str | None, progress: bool) -> Any:
    """The corpus runner: --scheduler, else --workers, else $DASK_SCHEDULER_ADDRESS."""
    from skelstore.corpus import Runner

    if scheduler and workers is not None:
        raise click.UsageError("--workers sizes a local cluster; it does not go with --scheduler")
    if not scheduler and workers is None:
        scheduler = os.environ.get("DASK_SCHEDULER_ADDRESS") or None
    return Runner(workers=workers, scheduler=scheduler, progress=progress)


def _report_failures(ctx: _Context, report: Any) -> None:
    """One line on stderr per failed file (with --debug, its traceback too)."""
    for r in report.failed:
        error = _cli_text(r.error or "")
        click.echo(f"skelstore: failed: {r.src}: {r.error_type}: {error}", err=True)
        if ctx.debug and r.traceback:
            click.echo(r.traceback, err=True)


@cli.command()
@click.argument("urls", nargs=-1)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON: an object for one file; for several, one list with an entry per file "
    "(an entry that could not be read is {url, error_type, error}).",
)
@click.option(
    "--summary",
    is_flag=True,
    help="Totals per engine across every file (frames, shots, poses, bytes), in parallel.",
)
@click.option(
    "--output",
    metavar="FILE",
    help="With --summary: also write the totals to FILE (.csv or .json; a path or URL).",
)
@_engine_option
@_storage_option
@_corpus_options
@_guarded
def info(
    ctx: _Context,
    urls: tuple[str, ...],
    as_json: bool,
    summary: bool,
    output: str | None,
    engine: str | None,
    files_from: Any,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Summarise dumps: format, mode, frames, shots, tracks, poses, engine, compression, size.

    URLs may be globs (quoted: 'dumps/*.h5', 's3://bucket/dumps/*.zarr'). Every
    file is reported in turn; one that cannot be read is reported as an error on
    stderr, naming it (with --json, as an entry carrying its error), the others
    go on, and the exit code is then 2. With --summary, every file is read as one
    task (on Dask for two files or more) and the totals per engine are printed.
    """
    if summary:
        _info_summary(ctx, _sources(urls, files_from), as_json, output, engine, workers, scheduler)
        return
    if output or workers is not None or scheduler or files_from:
        raise click.UsageError("--output, --workers, --scheduler and --files-from need --summary")
    if not urls:
        raise click.UsageError("give one URL or more")
    entries = _info_entries(ctx, urls, engine)
    failed = [e for e in entries if isinstance(e, _Failure)]
    if as_json:
        for e in failed:
            click.echo(f"skelstore: error: {e.message}", err=True)
        if len(entries) == 1 and failed:
            sys.exit(EXIT_BAD_INPUT)
        payload = [e.as_dict() for e in entries]
        click.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
    else:
        printed = False
        for e in entries:
            if isinstance(e, _Failure):
                click.echo(f"skelstore: error: {e.message}", err=True)
                continue
            if printed:
                click.echo("")
            _print_info(e)
            printed = True
    if failed:
        sys.exit(EXIT_BAD_INPUT)


class _Failure:
    """A file ``info`` could not read: its URL and the error, as the CLI says it."""

    def __init__(self, url: str, exc: BaseException) -> None:
        self.url = url
        self.error_type = type(exc).__name__
        text = _cli_text(str(exc) or repr(exc))
        self.error = text
        # messages name their file; when one names another form of it, name it here
        self.message = text if url in text else f"{url}: {text}"

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "error_type": self.error_type, "error": self.error}


def _info_entries(ctx: _Context, urls: Sequence[str], engine: str | None) -> list[Any]:
    """A :class:`~skelstore.summary.DumpInfo` or a :class:`_Failure` per file of
    ``urls`` (globs expanded), in order; every file is tried."""
    import skelstore
    from skelstore.corpus.sources import expand_sources
    from skelstore.summary import describe

    entries: list[Any] = []
    for arg in urls:
        try:
            expanded = expand_sources([arg], ctx.storage_options)
        except (SkelstoreError, OSError, ValueError) as exc:  # a glob that matches nothing
            if ctx.debug:
                raise
            entries.append(_Failure(arg, exc))
            continue
        for url in expanded:
            try:
                with skelstore.open(
                    url, engine=engine, storage_options=ctx.storage_options
                ) as root:
                    entries.append(describe(root, storage_options=ctx.storage_options))
            except (SkelstoreError, OSError, ValueError) as exc:
                if ctx.debug:
                    raise
                entries.append(_Failure(url, exc))
    return entries


def _print_info(r: Any) -> None:
    """The text block of one :class:`~skelstore.summary.DumpInfo`."""
    fmt = ", ".join(f"{k} {v}" for k, v in r.format_info.items())
    rows: list[tuple[str, Any]] = [
        ("file", r.url),
        ("engine", f"{r.engine}" + (f" ({fmt})" if fmt else "")),
    ]
    if r.fmt_type is None:  # a face dump without skeletons
        frames = "?" if r.num_frames is None else r.num_frames
        rows += [("format", "face dump (no skeletons)"), ("frames", frames)]
    else:
        rows += [
            ("format", r.fmt_type),
            ("layout", r.layout),
            ("mode", f"{r.mode} ({r.limbs} keypoints)"),
            ("frames", r.num_frames),
            ("shots", r.shots),
            ("pose tracks", r.pose_tracks),
            ("poses stored", r.poses_stored),
            ("keypoints stored", r.keypoints_stored),
            ("compression", r.compression or "unknown/mixed"),
        ]
    if r.faces is not None:
        rows.append(("faces", _describe_faces(r.faces)))
    rows.append(("size on storage", _human(r.bytes_stored)))
    if r.extra_groups:
        rows.append(("other groups", ", ".join(r.extra_groups)))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k:<{width}}  {v}")


def _describe_faces(f: Any) -> str:
    """One line for a :class:`~skelstore.face.FaceInfo`."""
    parts = [f"{f.layout}, {f.frames} frames"]
    if f.persons is not None:
        parts[0] = f"{f.layout}, {f.frames} frames with faces, {f.persons} persons"
    parts.append(f"embed {f.embed_size}")
    parts += f.arrays
    return f"{f.faces} ({', '.join(parts)})"


def _info_summary(
    ctx: _Context,
    sources: list[str],
    as_json: bool,
    output: str | None,
    engine: str | None,
    workers: int | None,
    scheduler: str | None,
) -> None:
    from skelstore.corpus import info_corpus, summarize

    if output and not output.lower().endswith((".csv", ".json")):
        raise click.BadParameter(f"{output!r}: use a .csv or .json name", param_hint="--output")
    report = info_corpus(
        sources,
        storage_options=ctx.storage_options,
        runner=_runner(workers, scheduler, progress=sys.stderr.isatty()),
        engine=engine,
    )
    totals = summarize(report)
    _report_failures(ctx, report)
    if output:
        totals.write(output, ctx.storage_options)
    click.echo(totals.to_json() if as_json else totals.table())
    click.echo(report.footer(), err=True)
    if not report.ok:
        sys.exit(EXIT_CHECK_FAILED)


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
@_zarr_format_option
@click.option(
    "--layout",
    type=click.Choice(["skelshop", "packed"]),
    help="Layout of the output (default: packed for Zarr, skelshop's for HDF5).",
)
@click.option("--verify", is_flag=True, help="Re-read the output and compare it with the source.")
@click.option("--overwrite", is_flag=True, help="Replace an existing destination.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@_storage_option
@_corpus_options
@_guarded
def convert(
    ctx: _Context,
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
            ctx, _sources(paths, files_from), to_dir, engine, compression, zf, overwrite, quiet,
            _runner(workers, scheduler, progress), src_engine, layout,
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
    ctx: _Context,
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
    _report_failures(ctx, report)
    if not quiet:
        click.echo(report.table())
        click.echo(report.footer(), err=True)
    if not report.ok:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command()
@click.argument("url")
@click.option("--attrs/--no-attrs", default=False, help="Show every node's attributes.")
@_engine_option
@_storage_option
@_guarded
def ls(ctx: _Context, url: str, attrs: bool, engine: str | None) -> None:
    """List a dump's tree: groups with frame ranges, arrays with shape, dtype, compression."""
    import skelstore
    from skelstore.storage import Group

    def show(group: Group, depth: int) -> None:
        for name, node in group.items():
            pad = "  " * depth
            if isinstance(node, Group):
                a = node.attrs
                rng = (
                    f"  frames {a['start_frame']}:{a['end_frame']}"
                    if "start_frame" in a and "end_frame" in a
                    else ""
                )
                click.echo(f"{pad}{name}/{rng}")
                if attrs:
                    for k, v in node.attrs.items():
                        click.echo(f"{pad}  @{k} = {v!r}")
                show(node, depth + 1)
            else:
                enc = node.encoding
                what = "unknown filters" if enc is None else _describe_encoding(enc)
                click.echo(f"{pad}{name}  {node.dtype} {node.shape}  chunks {node.chunks}  {what}")

    with skelstore.open(url, engine=engine, storage_options=ctx.storage_options) as root:
        click.echo(f"{url} [{root.engine_name}]")
        for k, v in root.attrs.items():
            click.echo(f"  @{k} = {v!r}")
        show(root, 1)


def _describe_encoding(enc: Any) -> str:
    parts = []
    if enc.blosc_level is not None:
        parts.append(f"blosc-zstd{enc.blosc_level}")
    if enc.scale_digits is not None:
        parts.append(f"scale-offset {enc.scale_digits} digits")
    return "+".join(parts) or "uncompressed"


_FRAMES_HELP = (
    "Frames A:B (half-open: A to B-1; A alone: one frame; A: to the end; :B from the "
    "start). Video frame numbers; the range must overlap the dump's frames."
)


@cli.command()
@click.argument("url")
@click.option("--frames", default="0:10", show_default=True, metavar="A:B", help=_FRAMES_HELP)
@_engine_option
@_storage_option
@_guarded
def cat(ctx: _Context, url: str, frames: str, engine: str | None) -> None:
    """Print the stored keypoints of a frame range as a table.

    Only the shots that overlap the range are read (of an unsegmented dump, the
    blocks of frames that do).
    """
    import skelstore
    from skelstore.framerange import check_frames, parse_frames
    from skelstore.io import ShotSegmentedReader, UnsegmentedReader
    from skelstore.pose import DumpReaderPoseBundle

    sel = parse_frames(frames)
    with skelstore.open(url, engine=engine, storage_options=ctx.storage_options) as root:
        start, end = check_frames(root, sel)  # a non-dump or a range outside it: no output
        shots: Any
        if root.attrs.get("fmt_type") == "unseg":
            reader = UnsegmentedReader(root, bundle_cls=DumpReaderPoseBundle)
            shots = [reader.shot_reader]
        else:
            shots = ShotSegmentedReader(root).iter_frame_range(start, end)
        click.echo(
            f"{'frame':>7} {'shot':>5} {'pose':>5} {'kp':>4} {'x':>10} {'y':>10} {'conf':>7}"
        )
        for shot in shots:
            shot_no = shot.index if shot.index is not None else 0
            s0 = max(start, shot.start_frame)
            if s0 >= end or shot.end_frame is None:
                break
            # only frames some track covers: a shot's frame range is an attribute,
            # a track's range is backed by its stored indptr
            spans = [(t0, t1) for _, t0, t1, _ in getattr(shot, "poses", ())]
            if not spans:
                continue  # an empty shot (or the gap before the first one)
            s0 = max(s0, min(t0 for t0, _ in spans))
            stop = min(shot.end_frame, max(t1 for _, t1 in spans), end)
            for frame, bundle in enumerate(shot.iter_from(s0), start=s0):
                if frame >= stop:
                    break
                for pose_id, pose in bundle:
                    for kp, (x, y, c) in enumerate(pose.keypoints):
                        if c:
                            click.echo(
                                f"{frame:>7} {shot_no:>5} {pose_id:>5} {kp:>4} "
                                f"{x:>10.2f} {y:>10.2f} {c:>7.3f}"
                            )


@cli.command()
@click.argument("urls", nargs=-1)
@click.option("--deep", is_flag=True, help="Also read all keypoint data (finite values).")
@_engine_option
@_storage_option
@_corpus_options
@_guarded
def validate(
    ctx: _Context,
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

    sources = _sources(urls, files_from)
    many = len(sources) > 1 or is_glob(sources[0]) or files_from is not None
    if many or workers is not None or scheduler:
        _validate_corpus(
            ctx, sources, deep, _runner(workers, scheduler, sys.stderr.isatty()), engine
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
    ctx: _Context, sources: list[str], deep: bool, runner: Any, engine: str | None = None
) -> None:
    from skelstore.corpus import validate_corpus

    report = validate_corpus(
        sources, deep=deep, storage_options=ctx.storage_options, runner=runner, engine=engine
    )
    for r in report.results:
        if r.validation is not None:
            _print_validation(r.src, r.validation)
    _report_failures(ctx, report)
    click.echo(report.table())
    click.echo(report.footer(), err=True)
    if not report.ok:
        sys.exit(EXIT_CHECK_FAILED)


@cli.command()
@click.argument("url")
@_engine_option
@_storage_option
@_guarded
def repair(ctx: _Context, url: str, engine: str | None) -> None:
    """Make a dump whose writer died readable: drop the unfinished shot, remove the mark."""
    from skelstore.engines import get_engine, guess_engine
    from skelstore.recovery import repair as do_repair

    # the engine's own open: skelstore.open refuses to write to an unfinished dump
    eng = get_engine(engine) if engine else guess_engine(url, "r+", ctx.storage_options)
    with eng.open(url, "r+", storage_options=ctx.storage_options) as root:
        intact, deleted = do_repair(root)
    gone = f"; removed {', '.join(deleted)}" if deleted else ""
    click.echo(f"{url}: {intact} complete shot(s) kept{gone}")


@cli.command("import-openpose")
@click.argument("src")
@click.argument("dst")
@click.option(
    "--mode",
    type=click.Choice(MODES),
    required=True,
    help="Pose mode OpenPose ran with: which keypoint lists are stacked.",
)
@click.option(
    "--tracked",
    is_flag=True,
    help="Pose id = OpenPose's person_id (from --tracking), in a one-shot trackshots dump; "
    "default: the position in 'people', in an unseg dump.",
)
@click.option(
    "--missing",
    type=click.Choice(["error", "empty"]),
    default="error",
    show_default=True,
    help="A frame number missing from the files: an error, or a frame without people.",
)
@_new_dump_options
@click.option(
    "--layout",
    type=click.Choice(["skelshop", "packed"]),
    help="Layout of the output (default: packed for Zarr, skelshop's for HDF5).",
)
@click.option("--video", help="The dump's video attribute (default: the files' base name.mp4).")
@click.option("--overwrite", is_flag=True, help="Replace an existing DST.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@_storage_option
@_guarded
def import_openpose(
    ctx: _Context,
    src: str,
    dst: str,
    mode: str,
    tracked: bool,
    missing: str,
    compression: str | None,
    engine: str | None,
    zarr_format: str | None,
    layout: str | None,
    video: str | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Import OpenPose's per-frame JSON files (a directory or .zip) into a dump.

    \b
      skelstore import-openpose json/ video.h5 --mode BODY_25
      skelstore import-openpose json.zip video.zarr --mode BODY_25_ALL --tracked
    """
    from skelstore.openpose import import_openpose as do_import

    report = do_import(
        src,
        dst,
        mode=mode,
        tracked=tracked,
        missing=missing,
        compression=compression,
        engine=engine,
        zarr_format=int(zarr_format) if zarr_format else None,
        video=video,
        storage_options=ctx.storage_options,
        overwrite=overwrite,
        progress=not quiet and sys.stderr.isatty(),
        layout=layout,
    )
    if not quiet:
        click.echo(report.summary())


@cli.command("import")
@click.argument("src")
@click.argument("dst")
@_new_dump_options
@click.option("--video", help="The dump's video attribute (default: the source's video file).")
@click.option("--overwrite", is_flag=True, help="Replace an existing DST.")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
@_storage_option
@_guarded
def import_(
    ctx: _Context,
    src: str,
    dst: str,
    compression: str | None,
    engine: str | None,
    zarr_format: str | None,
    video: str | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Import what sleap-io reads (SLEAP .slp, NWB, DeepLabCut, ...) into a dump.

    Tracked sources become trackshots dumps, others unseg; the mode is the one
    whose keypoint names the skeleton has, else CUSTOM (names kept). Needs
    skelstore[sleap]. OpenPose's JSON files: import-openpose.

    \b
      skelstore import labels.slp video.h5
      skelstore import predictions.nwb video.zarr --compression lossless
    """
    from skelstore.export import require

    require("sleap_io", "sleap-io", "sleap", "skelstore import")
    from skelstore.interop.sleap import import_sleap

    report = import_sleap(
        src,
        dst,
        compression=compression,
        engine=engine,
        zarr_format=int(zarr_format) if zarr_format else None,
        video=video,
        storage_options=ctx.storage_options,
        overwrite=overwrite,
    )
    if not quiet:
        click.echo(report.summary())


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option(
    "--to",
    "to",
    type=click.Choice(list(TARGETS)),
    required=True,
    help="; ".join(f"{t.name}: {t.help}" for t in TARGETS.values()) + ".",
)
@click.option(
    "--fps",
    type=float,
    help="Frames per second of the video: movement's time in seconds; needed by nwb and pose.",
)
@click.option(
    "--frames",
    metavar="A:B",
    help="Only these frames (as cat --frames: A:B, A:, :B, A); not for openpose-json.",
)
@click.option("--shot", type=int, help="Only the shot stored as shotN; not for openpose-json.")
@click.option(
    "--movement-dims",
    type=click.Choice(["auto", "current", "legacy"]),
    help="movement: dimension names keypoint/individual (current: movement >= 0.17) or "
    "keypoints/individuals (legacy: movement <= 0.16); auto (default): as the movement "
    "installed here, current if none.",
)
@click.option(
    "--max-frames",
    type=click.IntRange(min=0),
    help="openpose-json: refuse a dump spanning more frames than this (one file each; "
    "default 10000000).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing DST.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@_engine_option
@_storage_option
@_guarded
def export(
    ctx: _Context,
    src: str,
    dst: str,
    to: str,
    fps: float | None,
    frames: str | None,
    shot: int | None,
    movement_dims: str | None,
    max_frames: int | None,
    overwrite: bool,
    quiet: bool,
    engine: str | None,
) -> None:
    """Export a dump for other tools (see docs/export.md for what each holds).

    \b
      skelstore export video.h5 poses.nc --to movement --fps 25
      skelstore export video.h5 json/ --to openpose-json
      skelstore export video.h5 video.slp --to sleap
      skelstore export video.h5 video.nwb --to nwb --fps 25
      skelstore export video.h5 video.pose --to pose --fps 25
    """
    import skelstore
    from skelstore.export import export as do_export
    from skelstore.framerange import check_frames, parse_frames

    if frames is not None and shot is not None:
        raise click.UsageError("--frames and --shot both choose the frames; give one")
    sel = parse_frames(frames) if frames is not None else None  # one parser, every target
    with skelstore.open(src, engine=engine, storage_options=ctx.storage_options) as root:
        if sel is not None:  # every target: checked before anything is written
            check_frames(root, sel)
        report = do_export(
            root, dst, to=to, frames=sel, shot=shot, fps=fps, movement_dims=movement_dims,
            max_frames=max_frames, storage_options=ctx.storage_options, overwrite=overwrite,
            progress=not quiet and sys.stderr.isatty(),
        )  # fmt: skip
    if not quiet:
        click.echo(report.summary())
        for note in getattr(report, "notes", ()):
            click.echo(f"  {note}")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``skelstore`` command."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="skelstore")


if __name__ == "__main__":  # pragma: no cover
    main()
