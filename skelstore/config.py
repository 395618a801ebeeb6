"""skelstore's settings, in one object.

Settings start from environment variables, read here and nowhere else, once, when
this module is first imported; :func:`set_options` changes them for the process
or, used as a context manager, for a block (as ``xarray.set_options`` does):

>>> import skelstore
>>> with skelstore.set_options(threads=1):
...     skelstore.get_options().threads
1

Settings, each with the environment variable it starts from:

- ``untrusted`` (``SKELSTORE_UNTRUSTED=1``): :func:`skelstore.open` checks every
  file it reads in a watchdog child process first, as ``untrusted=True`` does.
- ``allow_external`` (``SKELSTORE_HDF5_ALLOW_EXTERNAL=1``): HDF5 external links
  and raw data in other files are followed, as ``allow_external=True`` does.
- ``threads`` (``SKELSTORE_THREADS=N``): threads the engines compress chunks on
  (:func:`codec_threads`); ``None`` means the CPUs this process may use, at most
  4, and ``1`` only the calling thread (HDF5). For Zarr it sizes zarr's own
  codec thread pool, unless zarr's ``threading.max_workers`` is set: zarr makes
  that pool once, so the value in force when the Zarr engine is first used
  counts.
- ``legacy_skels`` (``LEGACY_SKELS``, set to anything): recorded in a new
  dump's ``legacy_skels`` attribute, as skelshop does.
- ``remote_timeout`` (``SKELSTORE_REMOTE_TIMEOUT=SECONDS``, ``0`` or ``none`` for
  ``None``): how long one attempt of a remote request may take, in seconds, before
  the allowance for the bytes it moves (:class:`skelstore.rangefile.RetryPolicy`);
  ``None``: no limit of skelstore's own. 30 by default.
- ``remote_attempts`` (``SKELSTORE_REMOTE_ATTEMPTS=N``): tries per remote request,
  the first included. 3 by default.

The remote limits are read when a remote file or store is opened.

Corpus runs (:mod:`skelstore.corpus`) hand the settings in force to every task,
also on Dask workers in other processes.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from skelstore.errors import InputError

__all__ = ["Settings", "codec_threads", "get_options", "set_options"]


@dataclass(frozen=True)
class Settings:
    """The settings in force; see the module's list. Immutable: change them with
    :func:`set_options`."""

    untrusted: bool = False
    allow_external: bool = False
    threads: int | None = None
    legacy_skels: bool = False
    remote_timeout: float | None = 30.0
    remote_attempts: int = 3

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings that environment variables ask for (``os.environ`` by default).

        Raises:
            InputError: ``SKELSTORE_REMOTE_TIMEOUT`` is not a number, or
                ``SKELSTORE_REMOTE_ATTEMPTS`` not an integer >= 1 (also a
                ``ValueError``).
        """
        env = os.environ if environ is None else environ
        threads = env.get("SKELSTORE_THREADS", "").strip()
        remote: dict[str, Any] = {}
        raw = env.get("SKELSTORE_REMOTE_TIMEOUT", "").strip()
        if raw:
            try:
                timeout = None if raw.lower() == "none" else float(raw)
            except ValueError:
                raise InputError(f"SKELSTORE_REMOTE_TIMEOUT={raw!r} is not a number") from None
            remote["remote_timeout"] = timeout if timeout else None
        raw = env.get("SKELSTORE_REMOTE_ATTEMPTS", "").strip()
        if raw:
            if not raw.isdigit() or int(raw) < 1:
                raise InputError(f"SKELSTORE_REMOTE_ATTEMPTS={raw!r} is not an integer >= 1")
            remote["remote_attempts"] = int(raw)
        return cls(
            untrusted=env.get("SKELSTORE_UNTRUSTED", "") == "1",
            allow_external=env.get("SKELSTORE_HDF5_ALLOW_EXTERNAL", "") == "1",
            threads=max(1, int(threads)) if threads.isdigit() else None,
            legacy_skels="LEGACY_SKELS" in env,
            **remote,
        )


_lock = threading.Lock()
_current = Settings.from_environ()


def get_options() -> Settings:
    """The settings in force."""
    return _current


def codec_threads() -> int:
    """Threads that compress (or decompress) chunks at once: the ``threads``
    setting, else the CPUs this process may use, at most 4."""
    threads = get_options().threads
    if threads is not None:
        return threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _validated(changes: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(Settings)}
    for key, value in changes.items():
        if key not in names:
            raise InputError(
                f"unknown skelstore option {key!r}; options: {', '.join(sorted(names))}"
            )
        if key in ("threads", "remote_attempts"):
            if (value is not None or key == "remote_attempts") and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                also = " or None" if key == "threads" else ""
                raise InputError(f"{key} must be a whole number >= 1{also}, not {value!r}")
        elif key == "remote_timeout":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            ):
                raise InputError(f"remote_timeout must be seconds > 0 or None, not {value!r}")
        elif not isinstance(value, bool):
            raise InputError(f"{key} must be True or False, not {value!r}")
    return changes


class set_options:
    """Change settings for the process, or for a ``with`` block only.

    ``set_options(threads=1)`` changes them until changed again;
    ``with set_options(threads=1): ...`` restores the previous settings when the
    block ends. Settings are process-wide (not per thread).

    Raises:
        InputError: an unknown option or a value of the wrong kind.
    """

    def __init__(self, **changes: Any) -> None:
        global _current
        _validated(changes)
        with _lock:
            self._previous = _current
            _current = dataclasses.replace(_current, **changes)

    def __enter__(self) -> Settings:
        return _current

    def __exit__(self, *exc: object) -> None:
        global _current
        with _lock:
            _current = self._previous


@contextmanager
def applied(settings: Settings) -> Iterator[None]:
    """Run a block under ``settings`` (how corpus tasks carry the caller's settings)."""
    with set_options(**dataclasses.asdict(settings)):
        yield
