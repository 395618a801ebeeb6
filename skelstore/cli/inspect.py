"""Commands that read and show: ``info``, ``ls``, ``cat``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import click

from skelstore.cli.app import EXIT_BAD_INPUT, Context, cli, cli_text, guarded
from skelstore.cli.options import (
    corpus_options,
    engine_option,
    finish_corpus,
    make_runner,
    sources_of,
    storage_option,
)
from skelstore.corpus.report import human_bytes
from skelstore.errors import SkelstoreError


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
@engine_option
@storage_option
@corpus_options
@guarded
def info(
    ctx: Context,
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
        _info_summary(
            ctx, sources_of(urls, files_from), as_json, output, engine, workers, scheduler
        )
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
        text = cli_text(str(exc) or repr(exc))
        self.error = text
        # messages name their file; when one names another form of it, name it here
        self.message = text if url in text else f"{url}: {text}"

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "error_type": self.error_type, "error": self.error}


def _info_entries(ctx: Context, urls: Sequence[str], engine: str | None) -> list[Any]:
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
    rows.append(("size on storage", human_bytes(r.bytes_stored)))
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
    ctx: Context,
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
        runner=make_runner(workers, scheduler, progress=sys.stderr.isatty()),
        engine=engine,
    )
    totals = summarize(report)
    if output:
        totals.write(output, ctx.storage_options)
    finish_corpus(ctx, report, totals.to_json() if as_json else totals.table())


@cli.command()
@click.argument("url")
@click.option("--attrs/--no-attrs", default=False, help="Show every node's attributes.")
@engine_option
@storage_option
@guarded
def ls(ctx: Context, url: str, attrs: bool, engine: str | None) -> None:
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
@engine_option
@storage_option
@guarded
def cat(ctx: Context, url: str, frames: str, engine: str | None) -> None:
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
