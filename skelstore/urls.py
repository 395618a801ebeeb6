"""Targets as fsspec URLs: suffixes, locality and filesystems.

A target is a local path or any fsspec URL. This module holds the few facts about
URLs the rest needs; the filesystems themselves are fsspec's (and its config and
environment discovery apply).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from skelstore.errors import EngineError, MissingDependencyError

__all__ = ["is_local", "is_read_only", "local_path", "protocol", "split_suffix", "to_fs"]

#: Name endings made of two parts, matched before single ones.
_DOUBLE_SUFFIXES = (".zarr.zip",)

#: Protocols whose fsspec filesystems can read but not write.
_READ_ONLY_PROTOCOLS = frozenset({"http", "https"})

#: The pip extra that brings each protocol's filesystem.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "http": "http", "https": "http"}


def protocol(url: str) -> str:
    """The outermost protocol of ``url`` (``"file"`` for plain paths)."""
    first = url.split("::", 1)[0]
    if "://" not in first:
        return "file" if "::" not in url else first
    return first.split("://", 1)[0].lower()


def is_local(url: str) -> bool:
    """True for plain paths and ``file://`` URLs (not for chained URLs)."""
    return "::" not in url and protocol(url) in ("file", "local")


def is_read_only(url: str) -> bool:
    """True for URLs that can only be read: ``http://``, ``https://`` (also chained,
    as in ``zip::https://...``)."""
    return any(protocol(part) in _READ_ONLY_PROTOCOLS for part in url.split("::"))


def local_path(url: str) -> str:
    """The filesystem path of a local target."""
    if url.startswith("file://"):
        return urlsplit(url).path
    if url.startswith("local://"):
        return url[len("local://") :]
    return os.path.expanduser(url)


def split_suffix(url: str) -> str:
    """The lower-cased name ending used to guess an engine (``""`` if none).

    ``s3://b/video.h5`` → ``.h5``; ``x.zarr.zip`` → ``.zarr.zip``;
    ``zip::file:///tmp/x.zarr.zip`` → ``.zarr.zip``; ``x.zarr/`` → ``.zarr``.
    """
    last = url.split("::")[-1]
    if "://" in last:
        # the name may sit in the "host" part (memory://x.zarr) or the path
        rest = last.split("://", 1)[1]
        if protocol(last) in ("http", "https"):
            rest = rest.split("?", 1)[0].split("#", 1)[0]
        path = rest
    else:
        path = last
    base = path.rstrip("/").rsplit("/", 1)[-1].lower()
    for double in _DOUBLE_SUFFIXES:
        if base.endswith(double):
            return double
    return os.path.splitext(base)[1]


#: Defaults skelstore adds to a protocol's storage options (the caller's win; a
#: ``config_kwargs`` given by the caller is merged key by key with these):
#:
#: * s3fs sends a HEAD before every whole-object GET when ``max_concurrency`` > 1
#:   (to split it into parallel ranges), doubling the requests of a Zarr read whose
#:   objects are small; skelstore reads many objects concurrently instead.
#: * botocore's ``standard`` retry mode with 3 attempts in all (botocore's
#:   default is ``legacy``, 5 attempts). It retries HTTP 500/502/503/504,
#:   throttling and connection errors and timeouts, with jittered exponential
#:   backoff (at most 1 s, then 2 s). s3fs retries timeouts and broken
#:   connections up to 5 times itself, at two nested levels, on top of botocore:
#:   a request that keeps timing out is tried 75 times with standard/3 and 125
#:   with legacy/5 (measured), and a persistent 5xx takes ~8 s on average with
#:   legacy/5 against ~1.5 s here. skelstore's own bounded retries
#:   (:data:`skelstore.rangefile.DEFAULT_RETRY`, each attempt limited in time)
#:   come on top and cap the total. Left out when ``AWS_RETRY_MODE`` or
#:   ``AWS_MAX_ATTEMPTS`` is set, so the environment's choice stands.
PROTOCOL_DEFAULTS: dict[str, dict[str, Any]] = {
    "s3": {
        "max_concurrency": 1,
        "config_kwargs": {"retries": {"mode": "standard", "total_max_attempts": 3}},
    },
}
PROTOCOL_DEFAULTS["s3a"] = PROTOCOL_DEFAULTS["s3"]

#: Environment variables that configure botocore's retries (they win over ours).
_AWS_RETRY_ENV = ("AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS")


def with_defaults(url: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """``storage_options`` with :data:`PROTOCOL_DEFAULTS` of ``url``'s protocol.

    The caller's options win; ``config_kwargs`` (botocore's ``Config``) are merged
    key by key, so ``{"config_kwargs": {"read_timeout": 5}}`` keeps the default
    retry settings.
    """
    defaults = PROTOCOL_DEFAULTS.get(protocol(url), {})
    opts = dict(storage_options or {})
    out = {**defaults, **opts}
    if "config_kwargs" in defaults:
        config = dict(defaults["config_kwargs"])
        if any(os.environ.get(name) for name in _AWS_RETRY_ENV):
            config.pop("retries", None)
        config.update(opts.get("config_kwargs") or {})
        if config:
            out["config_kwargs"] = config
        else:
            out.pop("config_kwargs", None)
    return out


def to_fs(url: str, storage_options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """``(filesystem, path)`` for ``url`` through fsspec.

    Raises:
        MissingDependencyError: the protocol's filesystem package is missing (the
            message names the pip extra to install).
        EngineError: fsspec knows no such protocol.
    """
    import fsspec.core

    try:
        return fsspec.core.url_to_fs(url, **with_defaults(url, storage_options))
    except ImportError as exc:
        extra = _EXTRAS.get(protocol(url))
        hint = f"pip install 'skelstore[{extra}]'" if extra else "install its fsspec package"
        raise MissingDependencyError(
            f"{url}: the {protocol(url)!r} protocol needs a missing package ({exc}); {hint}"
        ) from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise EngineError(f"{url}: unknown URL protocol {protocol(url)!r}") from exc
        raise
