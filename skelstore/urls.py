"""Targets as fsspec URLs: suffixes, locality and filesystems.

A target is a local path or any fsspec URL. This module holds the few facts about
URLs the rest needs; the filesystems themselves are fsspec's (and its config and
environment discovery apply).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from skelstore.errors import EngineError, InputError, MissingDependencyError

__all__ = [
    "chain_parts",
    "confirmed",
    "google_credentials_here",
    "invalidate",
    "is_chained",
    "is_local",
    "is_read_only",
    "local_path",
    "protocol",
    "split_suffix",
    "to_fs",
]

#: Name endings made of two parts, matched before single ones.
_DOUBLE_SUFFIXES = (".zarr.zip",)

T = TypeVar("T")

#: Protocols whose fsspec filesystems can read but not write.
_READ_ONLY_PROTOCOLS = frozenset({"http", "https"})

#: The pip extra that brings each protocol's filesystem.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "http": "http", "https": "http"}


_PROTOCOL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def _known_protocol(name: str) -> bool:
    from fsspec.registry import known_implementations, registry

    name = name.lower()
    return name in known_implementations or name in registry


def is_chained(url: str) -> bool:
    """True if ``url`` is an fsspec chain such as ``zip::s3://bucket/x.zarr.zip``.

    A target is a chain only if it contains ``::`` and what comes before the first
    ``::`` is a protocol fsspec knows (``zip``, ``simplecache``, ``s3://...``), and
    it is not an existing local path. Anything else is a plain path, ``::`` and all:
    ``runs::v1.h5`` names a local file of that name.
    """
    if "::" not in url:
        return False
    first = url.split("::", 1)[0]
    name = first.split("://", 1)[0] if "://" in first else first
    if not _PROTOCOL_NAME.fullmatch(name) or not _known_protocol(name):
        return False
    return not os.path.lexists(url)


def chain_parts(url: str) -> list[str]:
    """The links of a chained URL (``[url]`` for anything else)."""
    return url.split("::") if is_chained(url) else [url]


def protocol(url: str) -> str:
    """The outermost protocol of ``url`` (``"file"`` for plain paths)."""
    first = url.split("::", 1)[0] if is_chained(url) else url
    if "://" not in first:
        return "file" if first is url else first.lower()
    return first.split("://", 1)[0].lower()


def is_local(url: str) -> bool:
    """True for plain paths and ``file://`` URLs (not for chained URLs)."""
    return not is_chained(url) and protocol(url) in ("file", "local")


def is_read_only(url: str) -> bool:
    """True for URLs that can only be read: ``http://``, ``https://`` (also chained,
    as in ``zip::https://...``)."""
    return any(protocol(part) in _READ_ONLY_PROTOCOLS for part in chain_parts(url))


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
    last = chain_parts(url)[-1]
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
#:   connections itself, at two nested levels, on top of botocore, so botocore's
#:   attempts multiply (docs/performance.md has the counts). skelstore's own bounded retries
#:   (:func:`skelstore.rangefile.default_retry`, each attempt limited in time)
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


#: Storage options whose values must be strings when given (the filesystems fail
#: on anything else only at their first request, with a bare TypeError).
_STRING_OPTIONS = frozenset({
    "endpoint_url", "key", "secret", "username", "password", "profile", "project",
    "region_name", "client_id", "client_secret",
})  # fmt: skip


def check_storage_options(url: str, storage_options: Any) -> None:
    """Refuse storage options of the wrong shape before any filesystem sees them.

    Raises:
        InputError: not a mapping with string keys, or a value of a wrong type for
            a well-known option (``endpoint_url``, ``key``, ``secret``, ...).
    """
    if storage_options is None:
        return
    if not isinstance(storage_options, dict):
        raise InputError(
            f"{url}: storage_options must be a dict, not {type(storage_options).__name__}"
        )
    for key, value in storage_options.items():
        if not isinstance(key, str):
            raise InputError(f"{url}: storage option names must be strings, not {key!r}")
        if key in _STRING_OPTIONS and value is not None and not isinstance(value, str):
            raise InputError(f"{url}: storage option {key!r} must be a string, not {value!r}")
        if key == "anon" and not isinstance(value, bool):
            raise InputError(f"{url}: storage option 'anon' must be true or false, not {value!r}")
        if key in ("config_kwargs", "client_kwargs") and not isinstance(value, dict):
            raise InputError(f"{url}: storage option {key!r} must be a mapping, not {value!r}")
        if key == "client_kwargs":
            check_storage_options(url, value)


#: Where the DMI product name of a Google Cloud VM can be read (as google-auth does).
_GCE_PRODUCT_NAME = "/sys/class/dmi/id/product_name"


def google_credentials_here() -> bool:
    """True if Google credentials can be found without the network: the environment
    (``GOOGLE_APPLICATION_CREDENTIALS``), gcloud's application-default file, gcsfs's
    token cache, or a Google Cloud VM (its metadata server then has credentials,
    told by the machine's DMI product name).

    gcsfs without a ``token`` tries each of these in turn, probing the metadata
    server over the network last (which, off Google Cloud, takes minutes of
    retries before it falls back to anonymous access). When none can be found,
    skelstore passes ``token="anon"`` at once: the same outcome, without the wait;
    a write then fails at once with an access error. Pass ``token=`` (e.g.
    ``"google_default"``, ``"cloud"`` or a credentials file) to choose otherwise.
    """
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return True
    config = os.environ.get("CLOUDSDK_CONFIG") or os.path.join(
        os.path.expanduser("~"), ".config", "gcloud"
    )
    if os.path.exists(os.path.join(config, "application_default_credentials.json")):
        return True
    if os.path.exists(os.path.join(os.path.expanduser("~"), ".gcs_tokens")):
        return True
    try:
        with open(_GCE_PRODUCT_NAME, encoding="ascii", errors="replace") as f:
            return f.read().strip().startswith("Google")
    except OSError:
        return False


def with_defaults(url: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """``storage_options`` with :data:`PROTOCOL_DEFAULTS` of ``url``'s protocol.

    The caller's options win; ``config_kwargs`` (botocore's ``Config``) are merged
    key by key, so ``{"config_kwargs": {"read_timeout": 5}}`` keeps the default
    retry settings.
    """
    defaults = PROTOCOL_DEFAULTS.get(protocol(url), {})
    check_storage_options(url, storage_options)
    opts = dict(storage_options or {})
    out = {**defaults, **opts}
    if protocol(url) in ("gs", "gcs") and "token" not in opts and not google_credentials_here():
        out["token"] = "anon"
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

    if "::" in url and not is_chained(url):  # a local path with "::" in its name
        from fsspec.implementations.local import LocalFileSystem

        check_storage_options(url, storage_options)
        return LocalFileSystem(), os.path.abspath(local_path(url))
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


def invalidate(fs: Any, path: str) -> None:
    """Drop ``fs``'s cached listings of ``path`` and its parents (s3fs, gcsfs, ...)."""
    drop = getattr(fs, "invalidate_cache", None)
    if drop is not None:
        with contextlib.suppress(Exception):  # a cache that cannot be dropped is no worse
            drop(path)


def confirmed(fs: Any, path: str, lookup: Callable[[], T]) -> T:
    """``lookup()`` (an existence, type or size query of ``path`` on ``fs``); when it
    finds nothing (a false or empty result, or ``FileNotFoundError``), asked once
    more after :func:`invalidate`.

    Object-store filesystems answer such queries from directory listings they cached
    earlier in the process (a glob, a listing, a write): an object another client
    uploaded since would be "missing" for as long as the process runs. A not-found
    is therefore confirmed against the store; a found object costs nothing extra.
    """
    try:
        found = lookup()
    except FileNotFoundError:
        invalidate(fs, path)
        return lookup()
    if not found:
        invalidate(fs, path)
        return lookup()
    return found
