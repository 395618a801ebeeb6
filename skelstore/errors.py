"""The one exception hierarchy of skelstore.

Every failure that input (a file, a URL, an argument) can cause is raised as a
subclass of :class:`SkelstoreError`, with a message that names the file and the
problem. Callers that want "anything skelstore refuses" catch ``SkelstoreError``;
callers that want to tell cases apart catch the subclasses.

``SkelstoreError`` subclasses that correspond to a builtin error family also
inherit from it (``NotFoundError`` is a ``FileNotFoundError``, ``FormatError`` a
``ValueError``, ``NotFoundError`` also a ``KeyError``), so code written against
h5py or zarr, which raise those, keeps working.
"""

from __future__ import annotations

__all__ = [
    "ClosedError",
    "EngineError",
    "FormatError",
    "FrameRangeError",
    "IncompleteDumpError",
    "InputError",
    "LockedError",
    "MissingDependencyError",
    "MissingFramesError",
    "NoSuchFaceError",
    "NotFoundError",
    "OpenPoseError",
    "OverwriteRefusedError",
    "ReadOnlyError",
    "RemoteAccessError",
    "RemoteError",
    "RemoteTimeoutError",
    "RepairWarning",
    "SkelstoreError",
    "StorageFullError",
    "UnknownModeError",
    "VerificationError",
    "WriteError",
]


class SkelstoreError(Exception):
    """Base class of every error skelstore raises on purpose."""


class EngineError(SkelstoreError):
    """No engine can serve a target, or an engine cannot honour a request.

    Raised for an unknown ``engine=`` name, a URL whose engine cannot be told from
    its suffix or bytes, or an option one engine cannot carry out (for example
    h5py filter settings given to the Zarr engine).
    """


class MissingDependencyError(EngineError, ImportError):
    """An optional dependency is not installed; the message says what to install."""


class NotFoundError(SkelstoreError, FileNotFoundError, KeyError):
    """A file, object, bucket, group, array or attribute does not exist.

    Also a ``KeyError``, so mapping-style code written for h5py or zarr
    (``try: group["x"] except KeyError``, ``attrs.get("x")``) keeps working.
    """


class ReadOnlyError(SkelstoreError, PermissionError):
    """A write was attempted on a target opened (or only openable) for reading."""


class ClosedError(ReadOnlyError):
    """A write (attributes, arrays, groups) to a dump that has been closed."""


class FormatError(SkelstoreError, ValueError):
    """The stored data does not follow the skeleton dump layout.

    Examples: a missing root attribute, an unknown ``fmt_type``, a group named
    ``poseX`` where X is not a number, an ``indptr`` that does not fit ``data``.
    """


class UnknownModeError(FormatError):
    """The dump's ``mode`` attribute names no known pose mode."""


class IncompleteDumpError(FormatError):
    """The dump was not closed by its writer (it still carries the in-progress mark).

    Raised when such a dump is opened, for reading or for writing, without
    ``allow_incomplete=True``, and when a writer is given one that is still marked.
    """


class RepairWarning(UserWarning):
    """An incomplete dump opened for writing with ``allow_incomplete=True`` was
    repaired first (its unfinished shot dropped); the message says what went."""


class NoSuchFaceError(NotFoundError, IndexError):
    """A sparse face dump holds no face for the ``(frame, person)`` asked for.

    Also an ``IndexError``, which is what skelshop's ``SparseFaceReader`` raised.
    """


class InputError(SkelstoreError, ValueError):
    """Data handed to a writer or an importer is malformed: a face writer given
    embeddings of the wrong shape or targets out of order, an OpenPose JSON file
    that does not parse, a frame range that cannot apply (:class:`FrameRangeError`).
    Also a ``ValueError``, which skelshop raised for these."""


class FrameRangeError(InputError):
    """A frame range is reversed or empty (``10:5``, ``5:5``), is not frame
    numbers, or does not overlap the dump it is applied to (see
    :mod:`skelstore.framerange`). Also a ``ValueError``."""


class OpenPoseError(InputError):
    """An OpenPose JSON file (or the set of them) cannot be imported.

    Attributes:
        path: the file (or directory/zip) at fault.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class MissingFramesError(OpenPoseError):
    """Frame numbers are missing from a sequence of OpenPose JSON files (OpenPose
    writes one file per frame, even when nobody is seen, so a gap is a lost file).

    Attributes:
        missing: the missing frame numbers (the first 1000 at most).
    """

    def __init__(self, message: str, *, path: str | None = None, missing: list[int]) -> None:
        super().__init__(message, path=path)
        self.missing = missing


class VerificationError(SkelstoreError):
    """A converted dump differs from its source; the message names the first difference."""


class LockedError(EngineError):
    """A target is already open for writing, by another process or by another open
    in this process; a second writer is refused rather than interleaved.

    Attributes:
        path: the locked file or directory.
        holder: who holds it, as far as can be told (``"pid 123 on host"``), or ``None``.
    """

    def __init__(self, message: str, *, path: str | None = None, holder: str | None = None):
        super().__init__(message)
        self.path = path
        self.holder = holder


class RemoteError(SkelstoreError, OSError):
    """Remote storage failed to serve a read: a permanent failure (an HTTP 4xx other
    than 404, an unexpected error), or a transient one (5xx, timeout, dropped
    connection) that persisted through every retry. The message names the URL.

    Attributes:
        url: the object or store that failed.
        status: the HTTP status, when one was seen.
        attempts: how many times the request was tried.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.attempts = attempts

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class WriteError(SkelstoreError, OSError):
    """Storage failed a write (an I/O error, a file-size limit, a full disk).

    The first failure stops the write: the dump (or the staged copy a command was
    building) is closed and whatever was staged removed; the message names the
    user's target, never a temporary name.

    Attributes:
        path: the target being written.
        errno: the operating system's error number, when there was one.
    """

    def __init__(self, message: str, *, path: str | None = None, errno: int | None = None):
        super().__init__(message)
        self.path = path
        self.errno = errno

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class StorageFullError(WriteError):
    """No room left: the disk or quota is full, or the file may not grow any larger
    (``ENOSPC``, ``EDQUOT``, ``EFBIG``)."""


class OverwriteRefusedError(EngineError):
    """``overwrite=True`` / ``--overwrite`` met a destination it may not replace.

    Overwriting replaces only what is provably a dump (or what the command itself
    writes), or an empty directory; a directory or prefix holding anything else
    is refused and nothing is deleted.

    Attributes:
        path: the destination.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class RemoteTimeoutError(RemoteError, TimeoutError):
    """A remote read did not complete in time, on every attempt."""


class RemoteAccessError(RemoteError, PermissionError):
    """Remote storage refused a read (HTTP 401 or 403)."""
