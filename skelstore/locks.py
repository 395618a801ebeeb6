"""One writer at a time: the write lock every engine takes on a local target.

A writer of a local target (an HDF5 file, a Zarr directory, a ``.zarr.zip``)
holds :class:`WriteLock`: an exclusive, non-blocking ``flock`` on a lock file
beside the target, ``.NAME.skelstore-write.lock`` (:func:`lock_path_for`), which
records the holder (``pid N on HOST since TIME``). A second writer, in another
process or in this one, gets :class:`~skelstore.errors.LockedError` naming the
target and the holder, before anything is opened, truncated or deleted. The lock
file sits beside the target, not inside it, because a Zarr store's ``w`` mode
empties the store's directory and ``w-`` refuses a non-empty one.

Stale locks: the OS drops a ``flock`` when its holder exits or dies, so a killed
writer never locks anyone out; the file it leaves is taken over (and removed) by
the next writer. Where the filesystem has no ``flock``, the lock file is created
exclusively instead, and one whose recorded holder is a dead process on this
host is removed and taken over.

HDF5 has a lock of its own on the file itself (one writer or any number of
readers, across processes). :func:`check_file_unlocked` asks for that lock
without taking it, so that a writer refused by it is refused before ``w`` would
truncate the file; :func:`flock_holder` tells who holds it (from
``/proc/locks``).

Object stores (``s3://``, ``gs://``, ...) have no such locks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

from skelstore.errors import LockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: exclusive creation instead
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "LOCK_SUFFIX",
    "WriteLock",
    "check_file_unlocked",
    "flock_holder",
    "lock_path_for",
    "pid_alive",
]

#: Suffix of the lock file a writer holds beside a local target: ``.NAME`` + this.
LOCK_SUFFIX = ".skelstore-write.lock"


def lock_path_for(path: str) -> str:
    """The lock file of the local target at ``path`` (symlinks resolved)."""
    real = os.path.realpath(path)
    return os.path.join(os.path.dirname(real), f".{os.path.basename(real)}{LOCK_SUFFIX}")


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:  # pragma: no cover - cannot tell: assume alive (never steal)
        return True
    return True


def _holder_text() -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    return f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n"


def _describe_holder(text: str) -> str:
    """The holder recorded in a lock file, marked when it is this very process."""
    text = text.strip()
    if not text:
        return "another writer"
    me = f"pid {os.getpid()} on {socket.gethostname()} "
    return f"{text} (this process)" if text.startswith(me) else text


def _stale(text: str) -> bool:
    """True if a lock file's holder is a dead process on this host."""
    parts = text.split()
    if len(parts) < 4 or parts[0] != "pid" or parts[2] != "on" or not parts[1].isdigit():
        return False
    return parts[3] == socket.gethostname() and not pid_alive(int(parts[1]))


class WriteLock:
    """The exclusive write lock of one local target (see the module docs).

    ``flock`` locks belong to an open file description, so a second open in the
    same process conflicts like another process does. The lock file is removed by
    :meth:`release`, while still held; a contender that locked the removed file
    notices and tries again.
    """

    def __init__(self, fd: int, lock_path: str) -> None:
        self._fd: int | None = fd
        self.lock_path = lock_path

    @classmethod
    def acquire(cls, url: str, path: str, *, make_parents: bool = True) -> WriteLock | None:
        """Take the lock of the target at ``path``, or raise LockedError naming the
        holder. ``None`` if no lock file can be made there (a read-only or missing
        directory): writing then goes ahead unlocked (and the open decides).
        ``make_parents``: create the target's missing parent directories first (for
        engines that would create them anyway)."""
        lock_path = lock_path_for(path)
        if make_parents:
            with contextlib.suppress(OSError):
                os.makedirs(os.path.dirname(lock_path), exist_ok=True)
        for _ in range(20):
            if fcntl is None:  # pragma: no cover - non-POSIX
                return cls._acquire_exclusive(url, path, lock_path)
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError:  # e.g. read-only parent directory
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                cls._refuse(url, path, lock_path, fd)
            except OSError:  # no flock on this filesystem: exclusive creation instead
                os.close(fd)
                return cls._acquire_exclusive(url, path, lock_path)
            # the holder may have released (and removed) the file between our open
            # and flock: then the lock we got is on a dead file
            try:
                current = os.stat(lock_path)
            except FileNotFoundError:
                os.close(fd)
                continue
            mine = os.fstat(fd)
            if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, _holder_text().encode(), 0)
            return cls(fd, lock_path)
        raise LockedError(
            f"{url}: could not take the write lock {lock_path} (contended)", path=path
        )

    @classmethod
    def _acquire_exclusive(cls, url: str, path: str, lock_path: str) -> WriteLock | None:
        """The lock as an exclusively created file (filesystems without ``flock``);
        a file left by a dead process on this host is taken over."""
        for _ in range(2):
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                text = cls._read(lock_path)
                if _stale(text):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(lock_path)
                    continue
                cls._refuse(url, path, lock_path, None)
            except OSError:
                return None
            os.pwrite(fd, _holder_text().encode(), 0)
            return cls(fd, lock_path)
        cls._refuse(url, path, lock_path, None)
        return None  # pragma: no cover - _refuse raises

    @staticmethod
    def _read(lock_path: str, fd: int | None = None) -> str:
        try:
            if fd is None:
                with open(lock_path, encoding="utf-8", errors="replace") as f:
                    return f.read(400)
            return os.pread(fd, 400, 0).decode("utf-8", "replace")
        except OSError:
            return ""

    @classmethod
    def _refuse(cls, url: str, path: str, lock_path: str, fd: int | None) -> None:
        try:
            text = cls._read(lock_path, fd)
        finally:
            if fd is not None:
                os.close(fd)
        holder = _describe_holder(text)
        raise LockedError(
            f"{url}: already open for writing by {holder} (lock file {lock_path}); "
            "close that root first",
            path=path,
            holder=holder,
        )

    def release(self) -> None:
        """Remove the lock file and drop the lock (idempotent)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                if os.path.samestat(os.stat(self.lock_path), os.fstat(fd)):
                    os.unlink(self.lock_path)
        finally:
            os.close(fd)


def flock_holder(path: str) -> str | None:
    """``"pid N"`` of a process holding a ``flock`` on ``path``, from ``/proc/locks``
    (Linux; ``None`` when it cannot be told)."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return None
    want = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->":
            continue
        try:
            major, minor, ino = parts[5].split(":")
            if (int(major, 16), int(minor, 16), int(ino)) == want:
                holder = f"pid {int(parts[4])}"
                return f"{holder} (this process)" if int(parts[4]) == os.getpid() else holder
        except ValueError:
            continue
    return None


def check_file_unlocked(url: str, path: str, why: str) -> None:
    """Refuse, with LockedError, a write to the existing file ``path`` that some
    process (this one too) holds a ``flock`` on, as libhdf5 does for every open
    file. Asks for the lock without keeping it; nothing is changed. A file that
    cannot be opened or locked here passes (the open itself then decides)."""
    if fcntl is None:  # pragma: no cover - non-POSIX
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = flock_holder(path)
        who = f" by {holder}" if holder else ""
        raise LockedError(f"{url}: file is in use{who}: {why}", path=url, holder=holder) from None
    except OSError:  # no flock on this filesystem
        pass
    finally:
        os.close(fd)  # closing drops the lock, if we got it
