"""Export for analysis tools: a dump as a ``movement`` poses dataset (netCDF or Zarr).

:func:`export_movement` reads a frame range (or one shot) with the dense API
(:func:`skelstore.dense.to_xarray`) and writes it in the layout of the
`movement <https://movement.neuroinformatics.dev>`_ package's poses datasets:
``position`` with dimensions ``(time, space, keypoints, individuals)`` and
``confidence`` with ``(time, keypoints, individuals)`` (movement's order since
0.1; :func:`~skelstore.dense.to_xarray` itself keeps ``individuals`` second), NaN
where a keypoint is absent, and the attributes ``ds_type="poses"``,
``source_software``, ``fps``, ``time_unit`` and ``source_file``. Open the file with
``xarray.open_dataset`` (or ``open_zarr``); movement works on the dataset as is.

``.nc`` files are written with h5netcdf (``pip install 'skelstore[export]'``),
``.zarr`` stores with xarray's Zarr backend, in Zarr format 2 with consolidated
metadata (the keypoint and individual names are strings, which format 3 has no
standard type for yet). The whole range is held in memory
once (the dense API's limit of 4 GiB applies): export long dumps by parts.
"""

from __future__ import annotations

import os
from typing import Any

from skelstore.errors import EngineError, MissingDependencyError
from skelstore.staging import Destination
from skelstore.urls import split_suffix

__all__ = ["MOVEMENT_SUFFIXES", "export_movement", "movement_dataset"]

#: Destination suffixes :func:`export_movement` writes, and how.
MOVEMENT_SUFFIXES = (".nc", ".zarr")


def movement_dataset(
    src: Any,
    *,
    frames: slice | None = None,
    shot: int | None = None,
    fps: float | None = None,
    storage_options: dict[str, Any] | None = None,
) -> Any:
    """The ``xarray.Dataset`` :func:`export_movement` writes (see the module docs).

    Raises:
        MissingDependencyError: xarray is not installed.
    """
    from skelstore.dense import to_xarray

    ds = to_xarray(src, frames=frames, shot=shot, fps=fps, storage_options=storage_options)
    ds = ds.transpose("time", "space", "keypoints", "individuals")
    if isinstance(src, (str, os.PathLike)):
        ds.attrs["source_file"] = os.fspath(src)
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
) -> Any:
    """Write a dump (a frame range, or one shot) as a movement poses dataset.

    Args:
        src: the dump (path, URL, skelstore group, h5py or zarr object).
        dst: ``*.nc`` (netCDF 4, via h5netcdf) or ``*.zarr``; a local path or an
            fsspec URL (a remote ``.nc`` is written locally and uploaded).
        frames: absolute frame range (default: the whole dump).
        shot: the N of ``shotN`` to export instead of a frame range.
        fps: frames per second: ``time`` in seconds instead of frame numbers.
        storage_options: fsspec options for both ends.
        overwrite: replace an existing ``dst``, if it is a movement dataset
            (``ds_type = "poses"``; see :func:`skelstore.staging.check_replaceable`).

    Returns:
        The dataset written (staged, and put in place once complete).

    Raises:
        EngineError: ``dst`` has another suffix, or exists and ``overwrite`` is false.
        OverwriteRefusedError: ``overwrite`` met something that is not a movement
            dataset (nothing is deleted).
        MissingDependencyError: xarray, or h5netcdf for ``.nc``, is not installed
            (``pip install 'skelstore[export]'``).
    """
    dst = os.fspath(dst)
    suffix = split_suffix(dst) or os.path.splitext(dst)[1].lower()
    if suffix not in MOVEMENT_SUFFIXES:
        raise EngineError(
            f"{dst}: cannot tell the output format; name it *.nc (netCDF) or *.zarr"
        )
    stage = Destination(dst, storage_options, overwrite=overwrite, accept="movement")
    if suffix == ".nc":
        try:
            import h5netcdf  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError(
                "writing netCDF needs h5netcdf: pip install 'skelstore[export]'"
            ) from exc
    ds = movement_dataset(src, frames=frames, shot=shot, fps=fps, storage_options=storage_options)
    with stage:
        if suffix == ".zarr":
            # Zarr format 2: its string dtypes and consolidated metadata are standard
            # (in format 3 both are still extensions zarr-python warns about)
            ds.to_zarr(stage.path, mode="w-", consolidated=True, zarr_format=2)
        else:
            ds.to_netcdf(stage.path, engine="h5netcdf")
        stage.publish()
    return ds
