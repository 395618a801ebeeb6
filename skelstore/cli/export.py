"""``skelstore export``: a dump to another tool's format (``export.TARGETS``)."""

from __future__ import annotations

import sys

import click

from skelstore.cli.app import Context, cli, guarded
from skelstore.cli.options import engine_option, storage_option
from skelstore.export import TARGETS


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
@engine_option
@storage_option
@guarded
def export(
    ctx: Context,
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
