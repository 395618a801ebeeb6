"""The verification record: what makes corpus conversion idempotent and resumable.

A corpus conversion stores, in the copy's root attribute ``skelstore_verified``
(:data:`skelstore.conversion.VERIFIED_ATTR`), a JSON object::

    {"version": 1, "src": "s3://bucket/dumps/video.h5",
     "source": {"kind": "file", "bytes": 1250000, "modified": "\\"etag...\\""},
     "options": {"engine": "zarr", "compression": null, "zarr_format": null},
     "skelstore": "0.1.0"}

The copy is written to a staging name, compared with its source, and published
only if they match (:func:`skelstore.convert`), so a destination that
carries the record was verified, and a run killed at any point leaves either no
destination or a verified one: nothing is ever half done. The attribute is
bookkeeping: :func:`~skelstore.conversion.compare_dumps` ignores it and
conversions do not copy it.

A later run skips a file whose destination exists and carries a record with the
same source, the same options, and the same source fingerprint (size, and
modification time or ETag for a file; total size for a directory store). A
destination without a matching record is compared with its source instead: if
it holds the same dump (with the compression and Zarr format asked for) the file
is skipped too, otherwise it fails with
:class:`~skelstore.errors.VerificationError` (``--overwrite`` replaces it).
"""

from __future__ import annotations

import os
from typing import Any

from skelstore.errors import NotFoundError
from skelstore.urls import is_local, local_path, to_fs

__all__ = ["RECORD_VERSION", "fingerprint", "make_record", "record_matches"]

#: Version of the record's JSON layout.
RECORD_VERSION = 1


def fingerprint(src: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    """What identifies the current content of ``src`` cheaply: its size and
    modification time or ETag (a file), or its total size (a directory store).

    Raises:
        NotFoundError: ``src`` does not exist.
    """
    try:
        if is_local(src):
            path = local_path(src)
            if os.path.isdir(path):
                total = sum(
                    os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
                )
                return {"kind": "directory", "bytes": total}
            st = os.stat(path)
            return {"kind": "file", "bytes": st.st_size, "modified": str(st.st_mtime_ns)}
        fs, path = to_fs(src, storage_options)
        info = fs.info(path)
        if info.get("type") == "directory":
            return {"kind": "directory", "bytes": int(fs.du(path, total=True))}
        changed = next(
            (info[k] for k in ("ETag", "etag", "md5Hash", "LastModified", "mtime", "updated")
             if info.get(k) is not None),
            None,
        )  # fmt: skip
        return {"kind": "file", "bytes": info.get("size"), "modified": str(changed)}
    except FileNotFoundError:
        raise NotFoundError(f"{src}: no such file, directory or object") from None


def make_record(src: str, options: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
    """The record of converting ``src`` (fingerprint ``source``) with ``options``."""
    from skelstore import __version__

    return {
        "version": RECORD_VERSION,
        "src": src,
        "source": source,
        "options": options,
        "skelstore": __version__,
    }


def _same_source(a: str, b: str) -> bool:
    if is_local(a) and is_local(b):
        return os.path.realpath(local_path(a)) == os.path.realpath(local_path(b))
    return a.rstrip("/") == b.rstrip("/")


def record_matches(
    record: dict[str, Any] | None, src: str, options: dict[str, Any], source: dict[str, Any]
) -> bool:
    """True if ``record`` says: converted from ``src`` as it is now, with ``options``."""
    return (
        record is not None
        and record.get("version") == RECORD_VERSION
        and isinstance(record.get("src"), str)
        and _same_source(record["src"], src)
        and record.get("options") == options
        and record.get("source") == source
    )
