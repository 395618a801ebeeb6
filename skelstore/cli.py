"""The ``skelstore`` command line (also ``python -m skelstore``).

Exit codes: 0 success; 1 a check failed (verification, validation); 2 usage
error or bad input. Errors are one line on stderr naming the file and the
problem; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import click

from skelstore.errors import SkelstoreError, VerificationError
from skelstore.pose import MODES

__all__ = ["main"]

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


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


def _fail(ctx: _Context, exc: BaseException, code: int) -> None:
    if ctx.debug:
        raise exc
    click.echo(f"skelstore: error: {exc}", err=True)
    sys.exit(code)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn skelstore and OS errors into one-line messages and exit codes."""

    @click.pass_obj
    def wrapper(obj: _Context, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(obj, *args, **kwargs)
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
def cli(
    ctx: click.Context, debug: bool, storage_options: tuple[str, ...], untrusted: bool
) -> None:
    """Skeleton (pose) dumps on any storage: HDF5 and Zarr, local or remote."""
    if untrusted:  # read by skelstore.open, here and in corpus worker processes
        os.environ["SKELSTORE_UNTRUSTED"] = "1"
    ctx.obj = _Context(debug, _parse_options(storage_options))


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
        help="Run on this Dask scheduler (default: $DASK_SCHEDULER_ADDRESS, else a local "
        "cluster).",
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
        click.echo(f"skelstore: failed: {r.src}: {r.error_type}: {r.error}", err=True)
        if ctx.debug and r.traceback:
            click.echo(r.traceback, err=True)


@cli.command()
@click.argument("urls", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per file).")
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
@_corpus_options
@_guarded
def info(
    ctx: _Context,
    urls: tuple[str, ...],
    as_json: bool,
    summary: bool,
    output: str | None,
    files_from: Any,
    workers: int | None,
    scheduler: str | None,
) -> None:
    """Summarise dumps: format, mode, frames, shots, tracks, poses, engine, compression, size.

    URLs may be globs (quoted: 'dumps/*.h5', 's3://bucket/dumps/*.zarr'). With
    --summary, every file is read as one task (on Dask for two files or more) and
    the totals per engine are printed.
    """
    import skelstore
    from skelstore.corpus.sources import expand_sources
    from skelstore.summary import describe

    if summary:
        _info_summary(ctx, _sources(urls, files_from), as_json, output, workers, scheduler)
        return
    if output or workers is not None or scheduler or files_from:
        raise click.UsageError("--output, --workers, --scheduler and --files-from need --summary")
    if not urls:
        raise click.UsageError("give one URL or more")
    results = []
    for url in expand_sources(urls, ctx.storage_options):
        with skelstore.open(url, storage_options=ctx.storage_options) as root:
            results.append(describe(root, storage_options=ctx.storage_options))
    if as_json:
        payload = [r.as_dict() for r in results]
        click.echo(json.dumps(payload[0] if len(payload) == 1 else payload, indent=2))
        return
    for r in results:
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
        if len(results) > 1:
            click.echo("")


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
    "--compression",
    type=click.Choice(["none", "lossless", "lossless9", "lossy", "lossy9"]),
    help="Recompress pose arrays with this preset (default: keep the source's).",
)
@click.option("--zarr-format", type=click.Choice(["2", "3"]), help="Zarr format of the output.")
@click.option(
    "--layout",
    type=click.Choice(["skelshop", "packed"]),
    help="Layout of the output (default: packed for Zarr, skelshop's for HDF5).",
)
@click.option("--verify", is_flag=True, help="Re-read the output and compare it with the source.")
@click.option("--overwrite", is_flag=True, help="Replace an existing destination.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@_corpus_options
@_guarded
def convert(
    ctx: _Context,
    paths: tuple[str, ...],
    to_dir: str | None,
    engine: str | None,
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

    With --to-dir, every conversion is verified, and recorded in
    DIR/.skelstore-verified/ once verified; running again skips what is recorded.
    Files run on Dask when there are two or more (see --workers, --scheduler); a
    file that fails is reported and the others go on; exit code 1 if any failed.
    """
    progress = not quiet and sys.stderr.isatty()
    zf = int(zarr_format) if zarr_format else None
    if to_dir is not None:
        _convert_corpus(
            ctx, _sources(paths, files_from), to_dir, engine, compression, zf, overwrite, quiet,
            _runner(workers, scheduler, progress), layout,
        )  # fmt: skip
        return
    from skelstore.convert import convert as do_convert

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
@_guarded
def ls(ctx: _Context, url: str, attrs: bool) -> None:
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

    with skelstore.open(url, storage_options=ctx.storage_options) as root:
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


def _frame_range(text: str) -> tuple[int, int | None]:
    a, sep, b = text.partition(":")
    try:
        start = int(a) if a else 0
        end = int(b) if b else None
        if not sep:
            end = start + 1
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected A:B (frame numbers)") from None
    return start, end


@cli.command()
@click.argument("url")
@click.option("--frames", default="0:10", show_default=True, help="Frame range A:B (half-open).")
@_guarded
def cat(ctx: _Context, url: str, frames: str) -> None:
    """Print the stored keypoints of a frame range as a table."""
    import skelstore
    from skelstore.io import ShotSegmentedReader, UnsegmentedReader
    from skelstore.pose import DumpReaderPoseBundle

    start, end = _frame_range(frames)
    click.echo(f"{'frame':>7} {'shot':>5} {'pose':>5} {'kp':>4} {'x':>10} {'y':>10} {'conf':>7}")
    with skelstore.open(url, storage_options=ctx.storage_options) as root:
        if root.attrs.get("fmt_type") == "unseg":
            reader = UnsegmentedReader(root, bundle_cls=DumpReaderPoseBundle)
            shots = [(0, reader.shot_reader)]
        else:
            sreader = ShotSegmentedReader(root)
            shots = [
                (getattr(s, "index", -1), s) for s in sreader.iter_from_frame(start)
            ]
        for shot_no, shot in shots:
            s0 = max(start, shot.start_frame)
            if end is not None and s0 >= end:
                break
            if shot.end_frame is None:
                break
            for frame, bundle in enumerate(shot.iter_from(s0), start=s0):
                if end is not None and frame >= end:
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
@_corpus_options
@_guarded
def validate(
    ctx: _Context,
    urls: tuple[str, ...],
    deep: bool,
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
        _validate_corpus(ctx, sources, deep, _runner(workers, scheduler, sys.stderr.isatty()))
        return
    import skelstore
    from skelstore.validate import validate as run

    url = sources[0]
    with skelstore.open(url, storage_options=ctx.storage_options) as root:
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


def _validate_corpus(ctx: _Context, sources: list[str], deep: bool, runner: Any) -> None:
    from skelstore.corpus import validate_corpus

    report = validate_corpus(
        sources, deep=deep, storage_options=ctx.storage_options, runner=runner
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
@_guarded
def repair(ctx: _Context, url: str) -> None:
    """Make a dump whose writer died readable: drop the unfinished shot, remove the mark."""
    import skelstore
    from skelstore.recovery import repair as do_repair

    with skelstore.open(url, "r+", storage_options=ctx.storage_options) as root:
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
@click.option(
    "--compression",
    type=click.Choice(["none", "lossless", "lossless9", "lossy", "lossy9"]),
    help="Compression preset of the pose arrays (default: none).",
)
@click.option("--engine", help="Destination engine (hdf5, zarr); guessed from DST's suffix.")
@click.option("--zarr-format", type=click.Choice(["2", "3"]), help="Zarr format of the output.")
@click.option(
    "--layout",
    type=click.Choice(["skelshop", "packed"]),
    help="Layout of the output (default: packed for Zarr, skelshop's for HDF5).",
)
@click.option("--video", help="The dump's video attribute (default: the files' base name.mp4).")
@click.option("--overwrite", is_flag=True, help="Replace an existing DST.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
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


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option(
    "--to",
    "to",
    type=click.Choice(["movement", "openpose-json"]),
    required=True,
    help="movement: an xarray poses dataset (DST *.nc or *.zarr); openpose-json: one "
    "OpenPose JSON file per frame (DST a directory or *.zip).",
)
@click.option("--fps", type=float, help="movement: time in seconds at this frame rate.")
@click.option("--frames", help="movement: only frames A:B (half-open).")
@click.option("--shot", type=int, help="movement: only the shot stored as shotN.")
@click.option("--overwrite", is_flag=True, help="Replace an existing DST.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@_guarded
def export(
    ctx: _Context,
    src: str,
    dst: str,
    to: str,
    fps: float | None,
    frames: str | None,
    shot: int | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Export a dump for other tools: movement (netCDF/Zarr) or OpenPose JSON.

    \b
      skelstore export video.h5 poses.nc --to movement --fps 25
      skelstore export video.h5 json/ --to openpose-json
    """
    if to == "movement":
        from skelstore.export import export_movement

        sel = None
        if frames is not None:
            start, end = _frame_range(frames)
            sel = slice(start, end)
        ds = export_movement(
            src, dst, frames=sel, shot=shot, fps=fps, storage_options=ctx.storage_options,
            overwrite=overwrite,
        )
        if not quiet:
            sizes = ", ".join(f"{k} {v}" for k, v in ds.sizes.items())
            click.echo(f"{src} -> {dst} [movement]: {sizes}")
        return
    if fps is not None or frames is not None or shot is not None:
        raise click.UsageError("--fps, --frames and --shot apply to --to movement only")
    from skelstore.openpose import export_openpose

    report = export_openpose(
        src, dst, storage_options=ctx.storage_options, overwrite=overwrite,
        progress=not quiet and sys.stderr.isatty(),
    )
    if not quiet:
        click.echo(report.summary())


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``skelstore`` command."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="skelstore")


if __name__ == "__main__":  # pragma: no cover
    main()
