"""Export a dump for other tools: one dispatch over every target, and the movement one.

:func:`export` is the one entry point of every target (``skelstore export --to``):
:data:`TARGETS` names each target's function as ``"module:function"``, imported
only when that target runs (as fsspec's registry names filesystems), with the
extra that brings its packages; a missing package raises
:class:`~skelstore.errors.MissingDependencyError` with the install hint. See
docs/export.md for what each format holds and what it cannot carry.

:func:`export_movement` reads a frame range (or one shot) with the dense API
(:func:`skelstore.dense.to_xarray`) and writes it in the layout of the
`movement <https://movement.neuroinformatics.dev>`_ package's poses datasets:
``position`` with dimensions ``(time, space, keypoint, individual)`` and
``confidence`` with ``(time, keypoint, individual)`` (movement 0.17's names;
``dims="legacy"`` writes ``keypoints`` and ``individuals``, the names of movement
up to 0.16), NaN where a keypoint is absent, and the attributes
``ds_type="poses"``, ``source_software``, ``fps`` (when given), ``time_unit`` and
``source_file``. Open the file with ``xarray.open_dataset`` (or ``open_zarr``);
movement works on the dataset as is.

``.nc`` files are written with h5netcdf (``pip install 'skelstore[export]'``),
``.zarr`` stores with xarray's Zarr backend, in Zarr format 2 with consolidated
metadata (the keypoint and individual names are strings, which format 3 has no
standard type for yet). The whole range is held in memory
once (the dense API's limit of 4 GiB applies): export long dumps by parts.
"""

from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from skelstore.errors import EngineError, InputError, MissingDependencyError
from skelstore.staging import Destination
from skelstore.urls import split_suffix

__all__ = [
    "MOVEMENT_DIMS",
    "MOVEMENT_SUFFIXES",
    "TARGETS",
    "ExportReport",
    "ExportTarget",
    "export",
    "export_movement",
    "movement_dataset",
    "require",
]

#: Destination suffixes :func:`export_movement` writes, and how.
MOVEMENT_SUFFIXES = (".nc", ".zarr")

#: movement's dimension names: ``current`` (movement 0.17 on) and ``legacy`` (up to 0.16).
MOVEMENT_DIMS: dict[str, tuple[str, str]] = {
    "current": ("keypoint", "individual"),
    "legacy": ("keypoints", "individuals"),
}


@dataclass(frozen=True)
class ExportTarget:
    """One ``--to`` target of :func:`export`.

    Attributes:
        name: the target's name (``skelstore export --to NAME``).
        function: ``"module:function"`` writing it, imported when the target runs.
        extra: the skelstore extra bringing its packages (``None``: none needed).
        requires: ``(module, distribution)`` pairs that must import.
        options: which of ``frames``, ``shot``, ``fps``, ``movement_dims`` and
            ``max_frames`` the target takes.
        help: one line for ``--help``.
    """

    name: str
    function: str
    extra: str | None
    requires: tuple[tuple[str, str], ...]
    options: frozenset[str]
    help: str


_RANGE = frozenset({"frames", "shot", "fps"})

#: Every export target, by name.
TARGETS: dict[str, ExportTarget] = {
    t.name: t
    for t in (
        ExportTarget(
            "movement", "skelstore.export:_movement_target", "export",
            (("xarray", "xarray"),), _RANGE | {"movement_dims"},
            "a movement poses dataset (DST *.nc or *.zarr)",
        ),
        ExportTarget(
            "openpose-json", "skelstore.openpose:export_openpose", None, (),
            frozenset({"max_frames"}),
            "one OpenPose JSON file per frame (DST a directory or *.zip)",
        ),
        ExportTarget(
            "sleap", "skelstore.interop.sleap:export_sleap", "sleap",
            (("sleap_io", "sleap-io"),), frozenset({"frames", "shot"}),
            "a SLEAP labels file (DST *.slp)",
        ),
        ExportTarget(
            "nwb", "skelstore.interop.nwb:export_nwb", "nwb",
            (("pynwb", "pynwb"), ("ndx_pose", "ndx-pose")), _RANGE,
            "an NWB file with ndx-pose (DST *.nwb; needs --fps)",
        ),
        ExportTarget(
            "pose", "skelstore.interop.posefile:export_pose", "pose",
            (("pose_format", "pose-format"),), _RANGE,
            "a pose-format file (DST *.pose; needs --fps)",
        ),
    )
}  # fmt: skip


def require(module: str, distribution: str, extra: str, what: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependencyError` with the install hint.

    Raises:
        MissingDependencyError: ``module`` cannot be imported.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{what} needs {distribution}: pip install 'skelstore[{extra}]'"
        ) from exc


@dataclass
class ExportReport:
    """What an export wrote."""

    src: str
    dst: str
    target: str
    frames: int
    tracks: int
    poses: int
    seconds: float = 0.0
    #: Anything the reader of the output should know (e.g. the pose id of each person).
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: what, how much, how fast."""
        return (
            f"{self.src} -> {self.dst} [{self.target}]: {self.frames} frames, "
            f"{self.tracks} tracks, {self.poses} poses in {self.seconds:.1f} s"
        )


def export(
    src: Any,
    dst: str,
    *,
    to: str,
    frames: slice | None = None,
    shot: int | None = None,
    fps: float | None = None,
    movement_dims: str | None = None,
    max_frames: int | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Any:
    """Export a dump to target ``to`` (one of :data:`TARGETS`).

    Args:
        src: the dump (path, URL, skelstore group, h5py or zarr object).
        dst: where to write (see each target).
        to: the target's name.
        frames: absolute frame range (targets that take ``frames``).
        shot: the N of ``shotN`` to export instead (targets that take ``shot``).
        fps: frames per second (targets that take ``fps``; NWB and pose need it).
        movement_dims: ``current``, ``legacy`` or ``auto`` (movement only).
        max_frames: refuse a dump spanning more frames than this (openpose-json only;
            its default: :data:`skelstore.openpose.MAX_EXPORT_FRAMES`).
        storage_options: fsspec options for both ends.
        overwrite: replace an existing ``dst``.
        progress: show a progress bar where the target has one.

    Returns:
        The target's report (its ``summary()`` is one line).

    Raises:
        InputError: an option the target does not take.
        FrameRangeError: ``frames`` is reversed or empty, or misses the dump
            (checked here, before any target runs, so every target refuses it).
        EngineError: unknown target; MissingDependencyError: its packages are missing.
    """
    target = TARGETS.get(to)
    if target is None:
        raise EngineError(f"unknown export target {to!r}; targets: {', '.join(TARGETS)}")
    given = {
        "frames": frames,
        "shot": shot,
        "fps": fps,
        "movement_dims": movement_dims,
        "max_frames": max_frames,
    }
    for name, value in given.items():
        if value is not None and name not in target.options:
            raise InputError(f"{name}= does not apply to export target {to!r}")
    if target.extra is not None:
        for module, distribution in target.requires:
            require(module, distribution, target.extra, f"export target {to!r}")
    if frames is not None:
        _check_frames(src, frames, storage_options)
    modname, _, funcname = target.function.partition(":")
    func = getattr(importlib.import_module(modname), funcname)
    kwargs: dict[str, Any] = {
        k: v for k, v in given.items() if v is not None and k in target.options
    }
    if to == "openpose-json":
        kwargs["progress"] = progress
    return func(src, dst, storage_options=storage_options, overwrite=overwrite, **kwargs)


def _check_frames(src: Any, frames: slice, storage_options: dict[str, Any] | None) -> None:
    """:func:`skelstore.framerange.check_frames` of ``frames`` against the dump ``src``."""
    from skelstore.engines import as_group
    from skelstore.engines import open as open_store
    from skelstore.framerange import check_frames

    if isinstance(src, (str, os.PathLike)):
        with open_store(os.fspath(src), "r", storage_options=storage_options) as root:
            check_frames(root, frames)
    else:
        check_frames(as_group(src), frames)


def _movement_target(src: Any, dst: str, **kwargs: Any) -> ExportReport:
    """:func:`export_movement` with an :class:`ExportReport` (for :func:`export`)."""
    t0 = time.perf_counter()
    ds = export_movement(src, dst, **kwargs)
    ind = next(d for d in ds["confidence"].dims if d.startswith("individual"))
    poses = int(
        (
            ds["confidence"]
            .notnull()
            .any(dim=[d for d in ds["confidence"].dims if d.startswith("keypoint")])
        ).sum()
    )
    report = ExportReport(
        src=ds.attrs["source_file"],
        dst=str(dst),
        target="movement",
        frames=int(ds.sizes["time"]),
        tracks=int(ds.sizes[ind]),
        poses=poses,
        seconds=time.perf_counter() - t0,
    )
    report.notes.append("dimensions: " + ", ".join(f"{k} {v}" for k, v in ds.sizes.items()))
    return report


def _movement_dims(dims: str | None) -> str:
    """``current`` or ``legacy``: ``auto`` (the default) follows the movement
    installed beside skelstore (``legacy`` before 0.17), ``current`` without one."""
    dims = dims or "auto"
    if dims in MOVEMENT_DIMS:
        return dims
    if dims != "auto":
        raise InputError(f"movement dims must be auto, current or legacy, not {dims!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("movement")
    except PackageNotFoundError:
        return "current"
    parts = [int(p) if p.isdigit() else 0 for p in release.split(".")[:2]]
    return "legacy" if tuple(parts) < (0, 17) else "current"


def movement_dataset(
    src: Any,
    *,
    frames: slice | None = None,
    shot: int | None = None,
    fps: float | None = None,
    storage_options: dict[str, Any] | None = None,
    dims: str | None = None,
) -> Any:
    """The ``xarray.Dataset`` :func:`export_movement` writes (see the module docs).

    ``dims``: ``current`` (``keypoint``, ``individual``: movement 0.17 on),
    ``legacy`` (``keypoints``, ``individuals``: movement up to 0.16) or ``auto``
    (the default: ``legacy`` if the movement installed is older than 0.17, else
    ``current``).

    Raises:
        MissingDependencyError: xarray is not installed.
    """
    from skelstore.dense import to_xarray
    from skelstore.engines import as_group

    keypoint, individual = MOVEMENT_DIMS[_movement_dims(dims)]
    ds = to_xarray(src, frames=frames, shot=shot, fps=fps, storage_options=storage_options)
    ds = ds.rename({"keypoints": keypoint, "individuals": individual})
    ds = ds.transpose("time", "space", keypoint, individual)
    path = isinstance(src, (str, os.PathLike))
    ds.attrs["source_file"] = os.fspath(src) if path else as_group(src).source
    return ds


def export_movement(
    src: Any,
    dst: str,
    *,
    frames: slice | None = None,
    shot: int | None = None,
    fps: float | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    movement_dims: str | None = None,
) -> Any:
    """Write a dump (a frame range, or one shot) as a movement poses dataset.

    Args:
        src: the dump (path, URL, skelstore group, h5py or zarr object).
        dst: ``*.nc`` (netCDF 4, via h5netcdf) or ``*.zarr``; a local path or an
            fsspec URL (a remote ``.nc`` is written locally and uploaded).
        frames: absolute frame range (default: the whole dump); it must overlap
            the dump (:mod:`skelstore.framerange`).
        shot: the N of ``shotN`` to export instead of a frame range.
        fps: frames per second: ``time`` in seconds instead of frame numbers.
        storage_options: fsspec options for both ends.
        overwrite: replace an existing ``dst``, if it is a movement dataset
            (``ds_type = "poses"``; see :func:`skelstore.staging.check_replaceable`).
        movement_dims: ``current``, ``legacy`` or ``auto`` (see :func:`movement_dataset`).

    Returns:
        The dataset written (staged, and put in place once complete).

    Raises:
        EngineError: ``dst`` has another suffix, or exists and ``overwrite`` is false.
        OverwriteRefusedError: ``overwrite`` met something that is not a movement
            dataset (nothing is deleted).
        FrameRangeError: ``frames`` is reversed or empty, or misses the dump
            (checked before anything is written).
        MissingDependencyError: xarray, or h5netcdf for ``.nc``, is not installed
            (``pip install 'skelstore[export]'``).
    """
    dst = os.fspath(dst)
    suffix = split_suffix(dst) or os.path.splitext(dst)[1].lower()
    if suffix not in MOVEMENT_SUFFIXES:
        raise EngineError(f"{dst}: cannot tell the output format; name it *.nc (netCDF) or *.zarr")
    stage = Destination(dst, storage_options, overwrite=overwrite, accept="movement")
    if suffix == ".nc":
        try:
            import h5netcdf  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "writing netCDF needs h5netcdf: pip install 'skelstore[export]'"
            ) from exc
    ds = movement_dataset(
        src,
        frames=frames,
        shot=shot,
        fps=fps,
        storage_options=storage_options,
        dims=movement_dims,
    )
    with stage:
        if suffix == ".zarr":
            # Zarr format 2: its string dtypes and consolidated metadata are standard
            # (in format 3 both are still extensions zarr-python warns about)
            ds.to_zarr(stage.path, mode="w-", consolidated=True, zarr_format=2)
        else:
            ds.to_netcdf(stage.path, engine="h5netcdf")
        stage.publish()
    return ds
