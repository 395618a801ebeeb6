"""``.zarr.zip`` targets: built in a staged directory and written (or uploaded)
as one zip on close."""

from __future__ import annotations

import os
import secrets
import zipfile
from typing import Any

from skelstore import rangefile as _rangefile
from skelstore.errors import (
    FormatError,
    NotFoundError,
    RemoteError,
    WriteError,
)
from skelstore.staging import Staged, write_error
from skelstore.urls import (
    confirmed,
    is_local,
    local_path,
    to_fs,
)


class _ZipSink:
    """Where a zip being built locally goes on close: a local path or a remote
    object (``inner``, an fsspec URL). The build directory and the zip file are
    both staged (:class:`~skelstore.staging.Staged`): beside a local destination,
    in the temporary directory for a remote one."""

    def __init__(self, url: str, inner: str, storage_options: dict[str, Any] | None) -> None:
        self.url = url
        self.inner = inner
        self.storage_options = storage_options
        self.fs: Any = None
        if is_local(inner):
            self.dest = local_path(inner)
        else:
            self.fs, self.dest = to_fs(inner, storage_options)

    @property
    def local(self) -> bool:
        return self.fs is None

    def _lookup(self, method: str) -> bool:
        """``fs.<method>(dest)`` bounded in time, a not-found confirmed (remote only)."""
        return bool(
            confirmed(
                self.fs,
                self.dest,
                lambda: _rangefile.fs_retried(
                    self.fs, method, self.dest, what=self.url, action="look up"
                ),
            )
        )

    def exists(self) -> bool:
        return os.path.lexists(self.dest) if self.local else self._lookup("exists")

    def is_file(self) -> bool:
        return os.path.isfile(self.dest) if self.local else self._lookup("isfile")

    def build_dir(self) -> Staged:
        """A fresh local directory to build the store in (made)."""
        staged = Staged(self.inner, self.storage_options, suffix=".build")
        staged.mkdir()
        return staged

    def extract_to(self, directory: str) -> None:
        """Unpack the existing zip into ``directory`` (later duplicates win, as in reading)."""
        try:
            if self.local:
                with zipfile.ZipFile(self.dest) as zf:
                    zf.extractall(directory)
            else:  # downloaded first: every request bounded in time and retried
                local = os.path.join(directory, f".{secrets.token_hex(6)}.download.zip")
                size = _rangefile.fs_retried(
                    self.fs, "size", self.dest, what=self.url, action="look up"
                )
                _rangefile.fs_retried(
                    self.fs,
                    "get_file",
                    self.dest,
                    local,
                    what=self.url,
                    action="download",
                    nbytes=size,
                )
                try:
                    with zipfile.ZipFile(local) as zf:
                        zf.extractall(directory)
                finally:
                    os.remove(local)
        except zipfile.BadZipFile as exc:
            raise FormatError(f"{self.url}: not a zip file ({exc})") from exc

    def publish(self, directory: str) -> None:
        """Write ``directory`` as the zip in one go, then move or upload it into place.

        Raises:
            WriteError: writing the zip failed (nothing is left of it), or the
                upload did (the zip is kept, and the message says where).
        """
        staged = Staged(self.inner, self.storage_options, suffix=".zip")
        try:
            with open(staged.path, "xb") as f:
                _write_zip(directory, f)
                f.flush()
                os.fsync(f.fileno())
        except Exception as exc:
            staged.discard()
            raise write_error(self.url, exc) or WriteError(
                f"{self.url}: writing the zip failed ({exc})", path=self.url
            ) from exc
        try:
            staged.publish()
        except (WriteError, RemoteError, NotFoundError) as exc:  # upload failed: keep it
            if self.local:
                staged.discard()
                raise
            kept = staged.keep()
            raise WriteError(
                f"{self.url}: {exc}; the written zip is kept at {kept}", path=self.url
            ) from exc
        except BaseException:
            staged.discard()
            raise


def _write_zip(directory: str, fileobj: Any) -> None:
    """Store every file under ``directory`` in a zip (uncompressed: chunks already are)."""
    with zipfile.ZipFile(fileobj, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for root, dirs, files in os.walk(directory):
            dirs.sort()
            for fname in sorted(files):
                full = os.path.join(root, fname)
                arcname = os.path.relpath(full, directory).replace(os.sep, "/")
                zf.write(full, arcname)
