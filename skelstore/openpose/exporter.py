"""A dump back to OpenPose JSON, a file per frame (:func:`export_openpose`)."""

from __future__ import annotations

import json
import os
import re
import time
import zipfile
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import numpy as np

from skelstore.engines import open as open_store
from skelstore.errors import (
    EngineError,
    FormatError,
    UnknownModeError,
)
from skelstore.layout import TIMELINE
from skelstore.openpose.frames import DEFAULT_VERSION, PARTS, PERSON_KEYS
from skelstore.pose import LIMBS, MODES
from skelstore.storage import Group
from skelstore.urls import is_local, local_path, to_fs

#: Frames read per block when exporting.
EXPORT_BLOCK_FRAMES = 1024
#: The most frames (one file each) an export writes unless told otherwise: about
#: four days of video at 30 fps. A dump declaring more (its ``num_frames``, or its
#: shots' frame ranges, which are only attributes) is refused; raise it with
#: ``max_frames=`` / ``--max-frames``.
MAX_EXPORT_FRAMES = 10_000_000


@dataclass
class ExportReport:
    """What :func:`export_openpose` did."""

    src: str
    dst: str
    frames: int
    people: int
    seconds: float

    def summary(self) -> str:
        return (
            f"{self.src} -> {self.dst} [openpose-json]: {self.frames} files, "
            f"{self.people} people in {self.seconds:.1f} s"
        )


def _numbers(values: np.ndarray) -> str:
    """Comma-separated shortest float32 decimals (``NaN``/``Infinity`` as Python's json)."""
    text = ",".join(values.astype(np.float32).astype(str).tolist())
    if "n" in text:  # nan, inf (never in exponents: those are 'e')
        text = re.sub(
            r"-?inf|nan",
            lambda m: {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[m[0]],
            text,
        )
    return text


def _person_json(kps: np.ndarray, mode: str, person_id: int) -> str:
    parts: dict[str, str] = {}
    row = 0
    for key, count in PARTS[mode]:
        parts[key] = _numbers(kps[row : row + count].reshape(-1))
        row += count
    body = ",".join(f'"{k}":[{parts.get(k, "")}]' for k in PERSON_KEYS)
    return f'{{"person_id":[{person_id}],{body}}}'


def _frame_people(
    keypoints: np.ndarray, pose_ids: np.ndarray, tracked: bool
) -> list[tuple[int, np.ndarray]]:
    """``(person_id, keypoints)`` of one frame's people (see the module docs)."""
    stored = (keypoints[..., 2] != 0).any(axis=-1)
    if tracked:
        return [(int(pose_ids[s]), keypoints[s]) for s in np.nonzero(stored)[0]]
    if not stored.any():
        return []
    by_id = {int(p): s for s, p in enumerate(pose_ids)}
    top = int(pose_ids[stored].max())
    zeros = np.zeros(keypoints.shape[1:], dtype=keypoints.dtype)
    return [(-1, keypoints[by_id[i]] if i in by_id else zeros) for i in range(top + 1)]


class _Out:
    """Where exported files go: a directory (local or URL), or a ``.zip`` (staged
    and published whole by :meth:`close`, see :class:`skelstore.staging.Destination`)."""

    def __init__(self, dst: str, storage_options: dict[str, Any] | None, overwrite: bool):
        from skelstore.staging import Destination

        self.dst = dst
        self.fs, self.path = to_fs(dst, storage_options)
        self.is_zip = dst.lower().endswith(".zip")
        self.stage: Destination | None = None
        if self.is_zip:
            self.stage = Destination(
                dst, storage_options, overwrite=overwrite, accept="openpose-zip", suffix=".zip"
            )
            self._buf: Any = open(self.stage.path, "xb")  # noqa: SIM115 - closed by close()
            self.zip = zipfile.ZipFile(self._buf, "w", compression=zipfile.ZIP_DEFLATED)
        else:
            if self.fs.exists(self.path):
                clash = [
                    p for p in self.fs.ls(self.path, detail=False) if p.endswith("_keypoints.json")
                ]
                if clash and not overwrite:
                    raise EngineError(
                        f"{dst}: already holds *_keypoints.json files (pass overwrite=True)"
                    )
            if is_local(dst):
                os.makedirs(local_path(dst), exist_ok=True)
            else:
                self.fs.makedirs(self.path, exist_ok=True)

    def write(self, name: str, text: str) -> None:
        if self.is_zip:
            self.zip.writestr(name, text)
        else:
            with self.fs.open(f"{self.path.rstrip('/')}/{name}", "wb") as f:
                f.write(text.encode())

    def close(self, exc: BaseException | None = None) -> None:
        """Finish: publish a staged zip, or (``exc``, the export failed) discard it."""
        if self.stage is None:
            return
        with self.stage:
            try:
                self.zip.close()
            finally:
                self._buf.close()
            if exc is None:
                self.stage.publish()
            else:
                self.stage.discard()


def _timeline_range(root: Group) -> tuple[int, int, bool]:
    """``(first frame, end frame, tracked)`` of a dump, for export."""
    from skelstore.layout import MAX_FRAME, frame_attrs, shot_info, shot_names

    fmt_type = root.attrs.get("fmt_type")
    timeline = root.get(TIMELINE)
    if not isinstance(timeline, Group) or fmt_type not in ("unseg", "trackshots"):
        raise FormatError(f"{root.source}: not a skeleton dump (fmt_type={fmt_type!r})")
    if root.attrs.get("layout") is not None:
        from skelstore.packed_ops import dump_shots

        shots = dump_shots(root)
        start = shots[0].start_frame if shots else 0
        end = shots[-1].end_frame if shots else 0
    elif fmt_type == "unseg":
        start, end = frame_attrs(timeline)
    else:
        names = shot_names(timeline)
        if names:
            start = shot_info(timeline, *names[0]).start_frame
            end = shot_info(timeline, *names[-1]).end_frame
        else:
            start = end = 0
    n = root.attrs.get("num_frames")
    if isinstance(n, int) and not isinstance(n, bool):
        if not 0 <= n <= MAX_FRAME:
            raise FormatError(
                f"{root.source}: num_frames {n} is not a frame count (0 to {MAX_FRAME})"
            )
        end = max(end, n)
    return start, end, fmt_type == "trackshots"


def _refuse_padding(root: Group, mode: str) -> None:
    """Raise if the dump stores a keypoint beyond the mode's OpenPose parts (the
    padding of skelshop's limb counts), which OpenPose's lists cannot hold."""
    from skelstore.layout import first_stored_at_or_beyond
    from skelstore.pose import SKELETONS

    skel = SKELETONS[mode]
    pad = skel.padding()
    if not pad:
        return
    hit = first_stored_at_or_beyond(root, pad.start)
    if hit is not None:
        where, kp = hit
        name = f" ({skel.keypoints[kp]})" if kp < skel.limbs else ""
        raise FormatError(
            f"{where}: stores keypoint {kp}{name}, but OpenPose JSON of mode {mode} holds "
            f"keypoints 0..{pad.start - 1} only (skelshop's {skel.limbs} keypoints of "
            f"{mode} leave {len(pad)} beyond OpenPose's parts); refusing to drop it"
        )


def export_openpose(
    src: Any,
    dst: str,
    *,
    basename: str | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    max_frames: int | None = MAX_EXPORT_FRAMES,
) -> ExportReport:
    """Write a dump as OpenPose JSON files, one per frame (the inverse of
    :func:`import_openpose`; see the module docs for what a dump cannot carry).

    Args:
        src: the dump (path, URL, skelstore group, h5py or zarr object).
        dst: a directory (created if missing; local or fsspec URL) or a ``.zip``.
        basename: the files' prefix (default: the dump's ``video`` attribute
            without its extension).
        storage_options: fsspec options for both ends.
        overwrite: write into a directory that already holds ``*_keypoints.json``
            files, or replace an existing zip.
        progress: show a progress bar (tqdm) over frames.
        max_frames: refuse a dump spanning more frames than this (one file is
            written per frame, also for frames without people, up to the dump's
            ``num_frames``); ``None``: no limit.

    Raises:
        FormatError: ``src`` is not a skeleton dump, or its mode is unknown, or it
            stores a keypoint OpenPose's lists cannot hold (the padding keypoints of
            BODY_25_ALL, BODY_25_FACE and BODY_135, see
            :attr:`skelstore.pose.Skeleton.parts`), or spans more than
            ``max_frames`` frames: refused before anything is written.
        EngineError: ``dst`` holds an earlier export and ``overwrite`` is false.
    """
    from skelstore.engines import as_group

    with ExitStack() as stack:
        if isinstance(src, (str, os.PathLike)):
            name = os.fspath(src)
            root = stack.enter_context(open_store(name, "r", storage_options=storage_options))
        else:
            root = as_group(src)
            name = root.source
        return _export(
            root, name, os.fspath(dst), basename, storage_options, overwrite, progress, max_frames
        )


def _export(
    root: Group,
    src: str,
    dst: str,
    basename: str | None,
    storage_options: dict[str, Any] | None,
    overwrite: bool,
    progress: bool,
    max_frames: int | None = MAX_EXPORT_FRAMES,
) -> ExportReport:
    from tqdm.auto import tqdm

    from skelstore.dense import read_poses

    t0 = time.perf_counter()
    mode = root.attrs.get("mode")
    if not isinstance(mode, str) or mode not in PARTS:
        raise UnknownModeError(
            f"{root.source}: cannot export pose mode {mode!r} to OpenPose JSON; "
            f"known modes: {', '.join(MODES)}"
        )
    limbs = root.attrs.get("limbs")
    if limbs is not None and limbs != LIMBS[mode]:
        raise FormatError(
            f"{root.source}: limbs {limbs!r} is not {LIMBS[mode]}, the keypoints of mode "
            f"{mode} (a legacy skelshop layout?); cannot split it into OpenPose's lists"
        )
    _refuse_padding(root, mode)
    first, end, tracked = _timeline_range(root)
    if max_frames is not None and end - first > max_frames:
        raise FormatError(
            f"{root.source}: spans frames {first}:{end} ({end - first} frames, one file "
            f"each), more than the limit of {max_frames}; pass max_frames= (--max-frames) "
            "to export it anyway"
        )
    if basename is None:
        video = root.attrs.get("video")
        basename = os.path.splitext(str(video))[0] if video else "video"
    version = root.attrs.get("op_ver", DEFAULT_VERSION)
    version_json = json.dumps(version)
    people_total = 0
    out = _Out(dst, storage_options, overwrite)
    try:
        with tqdm(
            total=end - first,
            disable=not progress,
            unit="frame",
            desc=os.path.basename(dst.rstrip("/")),
        ) as bar:
            for f0 in range(first, end, EXPORT_BLOCK_FRAMES):
                f1 = min(end, f0 + EXPORT_BLOCK_FRAMES)
                block = read_poses(root, frames=slice(f0, f1))
                for i, frame in enumerate(range(f0, f1)):
                    people = _frame_people(block.keypoints[i], block.pose_ids, tracked)
                    people_total += len(people)
                    body = ",".join(_person_json(k, mode, pid) for pid, k in people)
                    out.write(
                        f"{basename}_{frame:012d}_keypoints.json",
                        f'{{"version":{version_json},"people":[{body}]}}',
                    )
                bar.update(f1 - f0)
    except BaseException as exc:
        out.close(exc)
        raise
    out.close()
    return ExportReport(
        src=src,
        dst=dst,
        frames=end - first,
        people=people_total,
        seconds=time.perf_counter() - t0,
    )
