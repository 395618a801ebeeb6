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
import shutil
import tempfile
from typing import Any

from skelstore.errors import EngineError, MissingDependencyError
from skelstore.urls import is_local, local_path, split_suffix, to_fs

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
    from skelstore.engines import as_group

    ds = to_xarray(src, frames=frames, shot=shot, fps=fps, storage_options=storage_options)
    ds = ds.transpose("time", "space", "keypoints", "individuals")
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
        overwrite: replace an existing ``dst``.

    Returns:
        The dataset written.

    Raises:
        EngineError: ``dst`` has another suffix, or exists and ``overwrite`` is false.
        FrameRangeError: ``frames`` is reversed or empty, or misses the dump
            (checked before anything is written).
        MissingDependencyError: xarray, or h5netcdf for ``.nc``, is not installed
            (``pip install 'skelstore[export]'``).
    """
    dst = os.fspath(dst)
    suffix = split_suffix(dst) or os.path.splitext(dst)[1].lower()
    if suffix not in MOVEMENT_SUFFIXES:
        raise EngineError(
            f"{dst}: cannot tell the output format; name it *.nc (netCDF) or *.zarr"
        )
    fs, path = to_fs(dst, storage_options)
    if fs.exists(path) and not overwrite:
        raise EngineError(f"{dst}: already exists (pass overwrite=True)")
    ds = movement_dataset(src, frames=frames, shot=shot, fps=fps, storage_options=storage_options)
    if suffix == ".zarr":
        if fs.exists(path):
            fs.rm(path, recursive=True)
        # Zarr format 2: its string dtypes and consolidated metadata are standard (in
        # format 3 both are still extensions zarr-python warns about)
        ds.to_zarr(dst, mode="w", storage_options=storage_options if not is_local(dst) else None,
                   consolidated=True, zarr_format=2)
        return ds
    try:
        import h5netcdf  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            "writing netCDF needs h5netcdf: pip install 'skelstore[export]'"
        ) from exc
    if is_local(dst):
        ds.to_netcdf(local_path(dst), engine="h5netcdf")
        return ds
    tmpdir = tempfile.mkdtemp(prefix="skelstore-export-")
    try:
        tmp = os.path.join(tmpdir, "out.nc")
        ds.to_netcdf(tmp, engine="h5netcdf")
        fs.put_file(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return ds
