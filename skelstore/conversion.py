"""Conversion between engines: exact, streamed, staged, optionally verified.

:func:`convert` copies a whole dump, group by group and array by array in
bounded blocks, so memory is bounded by one block (16 MiB), not by the file. It
keeps every attribute (also unknown ones), dtype, chunk shape and any groups or
arrays outside the pose layout (e.g. face data: a face dump without skeletons
converts too; face arrays whose chunks split rows, as h5py chose them for
skelshop, get whole-row chunks). It writes to a staging name and publishes only
on success (:class:`skelstore.staging.Destination`): a local destination is
renamed into place; a remote one is built in a local temporary directory and
uploaded, the root metadata last, so readers never see a half dump. ``overwrite``
replaces only a dump (see :func:`skelstore.staging.check_replaceable`). The first
failed write (a full disk) stops the conversion with
:class:`~skelstore.errors.WriteError` and removes what was staged.

A conversion can carry a *verification record* (``record=``): a JSON object
stored in the copy's root attribute :data:`VERIFIED_ATTR`. The copy is published
only after it was verified, so a published dump carrying the attribute was
verified; corpus conversions (:mod:`skelstore.corpus`) use it to skip files
already done. The attribute is bookkeeping, not content: :func:`compare_dumps`
ignores it and conversions do not copy it (a copy of a copy has its own record,
or none).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.compression import Encoding, Preset, get_preset, lossy_limit, lossy_problem
from skelstore.engines import get_engine, guess_engine
from skelstore.engines import open as open_store
from skelstore.errors import (
    EngineError,
    FormatError,
    InputError,
    ReadOnlyError,
    SkelstoreError,
    VerificationError,
)
from skelstore.face import FACE_ARRAYS, FACES, face_chunks
from skelstore.layout import TIMELINE, pose_chunks
from skelstore.packed import PACKED, SKELSHOP, check_layout_name, is_packed
from skelstore.staging import Destination
from skelstore.storage import CHECKED_READ_BYTES, MAX_EXPANSION, Array, Group
from skelstore.summary import describe, iter_tracks
from skelstore.urls import is_local, is_read_only, local_path

__all__ = ["VERIFIED_ATTR", "ConvertReport", "compare_dumps", "convert", "read_record"]

#: Bytes read and written per block when copying an array.
BLOCK_BYTES = 16 * 2**20
#: Largest difference accepted between lossy-encoded values.
LOSSY_TOLERANCE = 0.01
#: Root attribute holding a verified copy's record (a JSON object, as a string).
VERIFIED_ATTR = "skelstore_verified"


@dataclass
class ConvertReport:
    """What :func:`convert` did."""

    src: str
    dst: str
    src_engine: str
    dst_engine: str
    compression: str | None
    frames: int | None
    pose_tracks: int
    src_bytes: int | None
    dst_bytes: int | None
    seconds: float
    verified: bool
    #: The copy's layout (``"skelshop"`` or ``"packed"``; ``None``: a face dump).
    layout: str | None = None

    @classmethod
    def of(
        cls, src: str, dst: str, src_info: Any, dst_info: Any, *, seconds: float, verified: bool
    ) -> ConvertReport:
        """The report of a copy from what :func:`skelstore.summary.describe` says of
        its source and its destination (``engine``, ``compression``, ``num_frames``,
        ``pose_tracks``, ``bytes_stored``, ``layout``)."""
        return cls(
            src=src,
            dst=dst,
            src_engine=src_info.engine,
            dst_engine=dst_info.engine,
            compression=dst_info.compression,
            frames=src_info.num_frames,
            pose_tracks=src_info.pose_tracks,
            src_bytes=src_info.bytes_stored,
            dst_bytes=dst_info.bytes_stored,
            seconds=seconds,
            verified=verified,
            layout=dst_info.layout,
        )

    @property
    def ratio(self) -> float | None:
        """Destination size over source size."""
        if not self.src_bytes or self.dst_bytes is None:
            return None
        return self.dst_bytes / self.src_bytes

    def summary(self) -> str:
        """One line: what, sizes, ratio, time."""

        def mb(n: int | None) -> str:
            return "?" if n is None else f"{n / 1e6:.2f} MB"

        ratio = f" ({self.ratio:.2f}x)" if self.ratio is not None else ""
        check = ", verified" if self.verified else ""
        layout = f" {self.layout}" if self.layout else ""
        return (
            f"{self.src} [{self.src_engine}] -> {self.dst} [{self.dst_engine}{layout}, "
            f"{self.compression or 'source encoding'}]: {self.pose_tracks} tracks, "
            f"{mb(self.src_bytes)} -> {mb(self.dst_bytes)}{ratio} in {self.seconds:.1f} s{check}"
        )


def _same_target(a: str, b: str) -> bool:
    if is_local(a) and is_local(b):
        return os.path.realpath(local_path(a)) == os.path.realpath(local_path(b))
    return a.rstrip("/") == b.rstrip("/")


def _check_declared(src: Array) -> None:
    """Refuse an array whose shape declares far more than it stores (a forged or
    damaged shape would make the copy loop for ever over rows that do not exist)."""
    shape = src.shape
    need = int(np.prod(shape, dtype=object)) * src.dtype.itemsize if shape else 0
    if need <= CHECKED_READ_BYTES:
        return
    stored = src.nbytes_stored
    if stored is not None and need > stored * MAX_EXPANSION:
        raise FormatError(
            f"{src.where()}: shape {shape} ({src.dtype}) declares {need} bytes but "
            f"{stored} bytes are stored for it; refusing to copy it"
        )


class _Copier:
    """Copies a tree, choosing each array's encoding and growability."""

    def __init__(
        self,
        preset: Preset | None,
        pose_groups: set[str],
        growable_tracks: bool,
        tick: Callable[[], None],
        num_kps: int | None = None,
    ) -> None:
        self.num_kps = num_kps
        self.preset = preset
        self.pose_groups = pose_groups
        self.growable_tracks = growable_tracks
        self.tick = tick

    def copy_group(self, src: Group, dst: Group, *, attrs_done: bool = False) -> None:
        attrs = _content_attrs(src)
        if attrs and not attrs_done:
            dst.attrs.update(attrs)
        is_pose = src.path in self.pose_groups
        for name, child in src.items():
            if isinstance(child, Group):
                # attributes go in with the group: one metadata write, not two
                self.copy_group(child, dst.create_group(name, dict(child.attrs)), attrs_done=True)
            else:
                self.copy_array(name, child, dst, role=name if is_pose else None)
        if is_pose:
            self.tick()

    def _encoding(self, arr: Array, role: str | None, entries: int | None) -> Encoding | None:
        if role in ("data", "indices", "indptr") and self.preset is not None:
            return self.preset.for_array(role, entries)
        enc = arr.encoding
        if enc is None:  # foreign filters: recompress losslessly rather than drop them
            return get_preset("lossless").for_array("indices", entries)
        return enc

    def copy_array(self, name: str, src: Array, dst: Group, role: str | None) -> None:
        _check_declared(src)
        growable = self.growable_tracks if role else src.growable
        nrows = len(src)
        # skelshop's small-track rule counts stored keypoints (len(data)); indices
        # has the same length, indptr is never compressed.
        entries = None if growable else nrows
        enc = self._encoding(src, role, entries)
        shape = src.shape
        chunks = src.chunks
        if role in ("data", "indices", "indptr"):
            # pose arrays follow skelshop's chunking for the destination engine
            chunks = pose_chunks(role, self.num_kps, entries, shape[1:], dst.min_chunk_bytes)
        elif (
            dst.path == "/" + FACES
            and name in FACE_ARRAYS
            and chunks is not None
            and tuple(chunks[1:]) != tuple(shape[1:])
        ):
            # face arrays chunked across rows (h5py's automatic chunks, as skelshop
            # wrote them: embed in (128, 32) pieces) get whole-row chunks instead
            chunks = face_chunks(name, shape[1:], src.dtype, dst.min_chunk_bytes)
        out = dst.create_array(
            name,
            shape=(0, *shape[1:]) if growable else shape,
            dtype=src.dtype,
            chunks=chunks,
            encoding=enc,
            growable=growable,
        )
        dict_attrs = dict(src.attrs)
        if dict_attrs:
            out.attrs.update(dict_attrs)
        if not shape or nrows == 0:
            if not shape:
                out[()] = src[()]
            return
        row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * src.dtype.itemsize)
        step = max(1, BLOCK_BYTES // row_bytes)
        digits = enc.scale_digits if enc is not None else None
        for a in range(0, nrows, step):
            block = src[a : a + step]
            found = lossy_problem(block, digits)
            if found is not None:  # named in the source, before the copy gets it
                assert digits is not None
                (row, *rest), value = found
                at = ", ".join(map(str, (a + row, *rest)))
                raise InputError(
                    f"{src.where()}[{at}]: cannot store {value!r} with a lossy encoding "
                    f"(scale-offset, {digits} decimals), which keeps finite values of "
                    f"magnitude below {lossy_limit(digits):g} only; convert with a "
                    "lossless preset (--compression lossless)"
                )
            if growable:
                out.append(block)
            else:
                out[a : a + len(block)] = block


def convert(
    src: str,
    dst: str,
    *,
    engine: str | None = None,
    compression: str | None = None,
    zarr_format: int | None = None,
    storage_options: dict[str, Any] | None = None,
    verify: bool = False,
    progress: bool = False,
    overwrite: bool = False,
    record: dict[str, Any] | None = None,
    src_engine: str | None = None,
    layout: str | None = None,
) -> ConvertReport:
    """Convert the dump at ``src`` into ``dst`` (any engine, any URL).

    Args:
        src: path or fsspec URL of the dump to read.
        dst: path or fsspec URL to write; must differ from ``src``.
        engine: the destination engine (guessed from ``dst``'s suffix if omitted).
        compression: a preset for the pose arrays; ``None`` keeps each array's
            encoding (foreign filters become ``lossless``).
        zarr_format: 2 or 3 for a Zarr destination.
        storage_options: fsspec options for both ends.
        verify: re-read the written copy and compare it with ``src`` (exact, or
            within 0.01 where a lossy preset is involved) before publishing it.
        progress: show a progress bar (tqdm) over pose tracks.
        overwrite: replace an existing ``dst``, if it is a dump (see
            :func:`skelstore.staging.check_replaceable`).
        record: a verification record (JSON-serialisable) to store in the copy's
            root attribute :data:`VERIFIED_ATTR`; needs ``verify``. The copy is
            published only once verified, so the attribute is never seen on an
            unverified copy.
        src_engine: the engine of ``src`` (guessed from its name or contents if
            omitted).
        layout: ``"skelshop"`` or ``"packed"``: the copy's layout. Default: the
            destination engine's (packed for Zarr, skelshop's for HDF5), except
            that a skelshop dump the packed layout cannot hold exactly (see
            :func:`skelstore.packed_ops.check_packable`) keeps skelshop's. Both
            directions are exact; see docs/layout.md.

    Returns:
        A :class:`ConvertReport`.

    Raises:
        EngineError: ``src`` and ``dst`` are the same, ``dst`` exists and
            ``overwrite`` is false, or an engine cannot be told.
        OverwriteRefusedError: ``overwrite`` met something that is not a dump at
            ``dst`` (nothing is deleted).
        WriteError: writing the copy failed (a full disk: StorageFullError);
            nothing is left of it.
        FormatError: ``src`` is neither a skeleton dump nor a face dump.
        VerificationError: ``verify`` found a difference (``dst`` is untouched).
        ReadOnlyError: ``dst`` is a read-only URL (``http(s)://``).
        ValueError: ``record`` without ``verify``.
    """
    t0 = time.perf_counter()
    if record is not None and not verify:
        raise ValueError("a verification record needs verify=True")
    src, dst = os.fspath(src), os.fspath(dst)
    if _same_target(src, dst):
        raise EngineError(f"{dst}: source and destination are the same")
    if is_read_only(dst):
        raise ReadOnlyError(f"{dst}: HTTP(S) URLs are read only; cannot convert into one")
    preset = get_preset(compression) if compression is not None else None
    check_layout_name(layout)
    dst_engine = get_engine(engine) if engine else guess_engine(dst, "w", hint="engine=...")
    stage = Destination(dst, storage_options, overwrite=overwrite)
    if src_engine is None:
        src_engine = guess_engine(src, "r", storage_options, hint="src_engine=...").name
    with open_store(src, "r", engine=src_engine, storage_options=storage_options) as src_root:
        # a skelshop dump's tree is listed once, for every pass below
        walk = _walk(src_root)
        if walk is None:
            tracks = iter_tracks(src_root)  # raises FormatError for non-dumps, before any write
            src_info = _SourceInfo.of(
                describe(src_root, with_size=True, storage_options=storage_options)
            )
        else:
            tracks = walk.pose_groups()
            src_info = _SourceInfo.of_walk(src_root, walk, storage_options)
        unseg = src_root.attrs.get("fmt_type") == "unseg"
        with stage:
            with _progress_bar(progress, src_info.pose_tracks, os.path.basename(src)) as bar:
                limbs = src_root.attrs.get("limbs")
                copier = _Copier(
                    preset,
                    {p for p, _ in tracks},
                    unseg,
                    lambda: bar.update(1),
                    num_kps=limbs if isinstance(limbs, int) else None,
                )
                packing = False
                for attempt in ("chosen", "skelshop's"):
                    try:
                        with open_store(
                            stage.path, "w", engine=dst_engine.name, zarr_format=zarr_format
                        ) as dst_root:
                            target = layout or dst_root.default_layout
                            if (
                                layout is None
                                and target == PACKED
                                and (attempt != "chosen" or not _packable(src_root, walk))
                            ):
                                target = SKELSHOP
                            packing = target == PACKED and not is_packed(src_root)
                            if TIMELINE in src_root and (target == PACKED or is_packed(src_root)):
                                _copy_relayout(
                                    src_root, dst_root, target, copier, preset, src_info, walk
                                )
                            else:
                                copier.copy_group(src_root, dst_root)
                            if record is not None:
                                dst_root.attrs[VERIFIED_ATTR] = json.dumps(record, sort_keys=True)
                        break
                    except FormatError:
                        # arrays the packed layout cannot hold (a damaged indptr): a
                        # copy in skelshop's layout keeps them as they are, unless
                        # the packed layout was asked for
                        if not packing or layout is not None or walk is None:
                            raise
                        walk = None  # its records are spent
            with open_store(stage.path, "r", engine=dst_engine.name) as staged:
                if verify:
                    diff = compare_dumps(src_root, staged)
                    if diff:
                        raise VerificationError(f"{dst}: verification failed: {diff}")
                dst_info = describe(staged, with_size=True)
            stage.publish()
    return ConvertReport.of(
        src, dst, src_info, dst_info, seconds=time.perf_counter() - t0, verified=verify
    )


class _NoBar:
    """What :func:`convert` uses of a tqdm bar, when it shows none."""

    def update(self, n: int = 1) -> None:
        pass


def _progress_bar(show: bool, total: int, desc: str) -> Any:
    """A tqdm bar over ``total`` tracks, or a :class:`_NoBar` (tqdm is imported
    only to be shown: importing it costs ~50 ms, a tenth of a small conversion)."""
    if not show:
        return contextlib.nullcontext(_NoBar())
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="track", desc=desc)


@dataclass
class _SourceInfo:
    """What a conversion reports of its source."""

    engine: str
    num_frames: int | None
    pose_tracks: int
    bytes_stored: int | None
    compression: str | None

    @classmethod
    def of(cls, info: Any) -> _SourceInfo:
        return cls(info.engine, info.num_frames, info.pose_tracks, info.bytes_stored,
                   info.compression)  # fmt: skip

    @classmethod
    def of_walk(cls, root: Group, walk: Any, storage_options: dict[str, Any] | None
                ) -> _SourceInfo:  # fmt: skip
        """From a listed skelshop tree: the preset judged on the largest track, as
        :func:`skelstore.summary.detect_preset` judges it."""
        from skelstore.compression import preset_name
        from skelstore.summary import _bytes_stored, size_on_storage

        tracks = [(p, t) for _, p, ts in walk.parents for t in ts]
        preset = None
        if walk.damaged:  # the sizes the walk read are not all there: look at the arrays
            from skelstore.summary import detect_preset

            groups = [(p, root[p]) for p, _ in walk.pose_groups()]
            preset = detect_preset([(p, g) for p, g in groups if isinstance(g, Group)])
        elif tracks:
            path, big = max(tracks, key=lambda pt: pt[1].entries)
            grp = root[f"{path.rstrip('/')}/{big.name}"]
            assert isinstance(grp, Group)
            data, indices = grp["data"], grp["indices"]
            assert isinstance(data, Array) and isinstance(indices, Array)
            preset = preset_name(data.encoding, indices.encoding)
        n = root.attrs.get("num_frames")
        return cls(
            root.engine_name,
            n if isinstance(n, int) and not isinstance(n, bool) else None,
            len(tracks),
            size_on_storage(root.source, storage_options) or _bytes_stored(root),
            preset,
        )


def _walk(root: Group) -> Any:
    """A skelshop dump's listed tree (:class:`skelstore.packed_ops.SkelshopWalk`),
    or ``None`` for other trees (packed dumps, face dumps, non-dumps)."""
    from skelstore.layout import FMT_TYPES
    from skelstore.packed_ops import SkelshopWalk, check_packable

    if root.attrs.get("fmt_type") not in FMT_TYPES or TIMELINE not in root or is_packed(root):
        return None
    try:
        return check_packable(root)
    except FormatError as exc:
        if "packed layout cannot hold" not in str(exc):
            raise
        return SkelshopWalk.of(root)  # not packable: listed without the checks


def _packable(root: Group, walk: Any) -> bool:
    """True unless ``root`` is a skelshop dump the packed layout cannot hold."""
    return walk is None or getattr(walk, "checked", False)


def _copy_relayout(
    src: Group,
    dst: Group,
    target: str,
    copier: _Copier,
    preset: Preset | None,
    info: Any,
    walk: Any = None,
) -> None:
    """Copy a dump into another layout (or packed into packed): root attributes
    (the layout's own as the target needs them), every member other than the
    timeline as :class:`_Copier` copies them, and the timeline through
    :mod:`skelstore.packed_ops`."""
    from skelstore.packed import LAYOUT_ATTR, LAYOUT_VERSION_ATTR
    from skelstore.packed_ops import pack_timeline, unpack_timeline
    from skelstore.trackwriter import ArraySettings

    attrs = {
        k: v for k, v in _content_attrs(src).items() if k not in (LAYOUT_ATTR, LAYOUT_VERSION_ATTR)
    }
    if attrs:
        dst.attrs.update(attrs)
    for name, child in src.items():
        if name == TIMELINE:
            continue
        if isinstance(child, Group):
            copier.copy_group(child, dst.create_group(name, dict(child.attrs)), attrs_done=True)
        else:
            copier.copy_array(name, child, dst, role=None)
    src_timeline = src[TIMELINE]
    assert isinstance(src_timeline, Group)
    timeline = dst.create_group(TIMELINE, dict(src_timeline.attrs) or None)
    chosen = preset or get_preset(info.compression or "lossless")
    settings = ArraySettings.make(copier.num_kps, chosen)
    if target == PACKED:
        pack_timeline(src, dst, timeline, settings, copier.tick, walk)
    else:
        unpack_timeline(src, timeline, settings, copier.tick)


# ---------------------------------------------------------------- verification


def _tolerance(a: Array, b: Array) -> float:
    lossy = any(e is not None and e.is_lossy for e in (a.encoding, b.encoding))
    return LOSSY_TOLERANCE if lossy else 0.0


def _first_frame(group: Group, entry: int) -> str:
    """Where entry ``entry`` of a pose group's ``data`` sits: its frame number."""
    try:
        indptr = group["indptr"].read()
        row = int(np.searchsorted(indptr, entry, side="right")) - 1
        return f" frame {int(group.attrs['start_frame']) + row}"
    except (SkelstoreError, KeyError, ValueError, TypeError):
        return ""


def _compare_arrays(a: Array, b: Array, parent: Group) -> str | None:
    if a.dtype != b.dtype:
        return f"{a.path}: dtype {a.dtype} != {b.dtype}"
    if a.shape != b.shape:
        return f"{a.path}: shape {a.shape} != {b.shape}"
    if not a.shape:
        return None if np.array_equal(a[()], b[()]) else f"{a.path}: values differ"
    tol = _tolerance(a, b)
    row_bytes = max(1, int(np.prod(a.shape[1:], dtype=np.int64)) * a.dtype.itemsize)
    step = max(1, BLOCK_BYTES // row_bytes)
    for start in range(0, len(a), step):
        x, y = a[start : start + step], b[start : start + step]
        if tol and x.dtype.kind == "f":
            bad = ~np.isclose(x, y, rtol=0, atol=tol + 1e-6, equal_nan=True)
        elif x.dtype.kind == "f":
            bad = ~((x == y) | (np.isnan(x) & np.isnan(y)))
        else:
            bad = x != y
        if bad.any():
            first = int(np.argwhere(bad)[0][0]) + start
            where = _first_frame(parent, first) if a.name in ("data", "indices") else ""
            return f"{a.path}[{first}]{where}: {a[first]!r} != {b[first]!r}"
    return None


def _content_attrs(group: Group) -> dict[str, Any]:
    """A group's attributes, without the root's verification record."""
    attrs = dict(group.attrs)
    if group.path == "/":
        attrs.pop(VERIFIED_ATTR, None)
    return attrs


def read_record(root: Group) -> dict[str, Any] | None:
    """The verification record of a converted dump (see :func:`convert`), or
    ``None`` if it has none (or it is not a JSON object)."""
    raw = root.attrs.get(VERIFIED_ATTR)
    if not isinstance(raw, str):
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def compare_dumps(a: Group, b: Group) -> str | None:
    """The first difference between two trees (members, attrs, dtypes, values), or
    ``None`` if they hold the same dump. Values are compared exactly, or within
    0.01 where either side uses a lossy encoding. The root attribute
    :data:`VERIFIED_ATTR` (bookkeeping of conversions) is not compared. Dumps of
    which one is packed are compared as dumps, not trees (the same shots and
    tracks, whatever the arrays; see :func:`skelstore.packed_ops.compare_logical`)."""
    if a.path == "/" and TIMELINE in a and (is_packed(a) or is_packed(b)):
        from skelstore.packed_ops import compare_logical

        return compare_logical(a, b, compare_dumps)
    keys_a, keys_b = a.keys(), b.keys()
    if keys_a != keys_b:
        return f"{a.path}: members {keys_a} != {keys_b}"
    attrs_a, attrs_b = _content_attrs(a), _content_attrs(b)
    if attrs_a != attrs_b:
        diff = sorted(k for k in set(attrs_a) | set(attrs_b) if attrs_a.get(k) != attrs_b.get(k))
        k = diff[0]
        return f"{a.path}: attribute {k!r}: {attrs_a.get(k)!r} != {attrs_b.get(k)!r}"
    for name in keys_a:
        ca, cb = a[name], b[name]
        if isinstance(ca, Group) != isinstance(cb, Group):
            return f"{ca.path}: group in one, array in the other"
        if isinstance(ca, Group):
            assert isinstance(cb, Group)
            msg = compare_dumps(ca, cb)
        else:
            assert isinstance(cb, Array)
            msg = _compare_arrays(ca, cb, a)
            if msg is None and dict(ca.attrs) != dict(cb.attrs):
                msg = f"{ca.path}: array attributes differ"
        if msg:
            return msg
    return None
