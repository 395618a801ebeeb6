"""Commands that make dumps from other formats: ``import-openpose``, ``import``."""

from __future__ import annotations

import sys

import click

from skelstore.cli.app import Context, cli, guarded
from skelstore.cli.options import new_dump_options, storage_option
from skelstore.pose import MODES


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
@new_dump_options
@click.option("--video", help="The dump's video attribute (default: the files' base name.mp4).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@storage_option
@guarded
def import_openpose(
    ctx: Context,
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
@new_dump_options
@click.option("--video", help="The dump's video attribute (default: the source's video file).")
@click.option("-q", "--quiet", is_flag=True, help="No summary line.")
@storage_option
@guarded
def import_(
    ctx: Context,
    src: str,
    dst: str,
    compression: str | None,
    engine: str | None,
    zarr_format: str | None,
    layout: str | None,
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
        layout=layout,
        video=video,
        storage_options=ctx.storage_options,
        overwrite=overwrite,
    )
    if not quiet:
        click.echo(report.summary())
