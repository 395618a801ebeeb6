"""zarr stores skelstore wraps: a local directory store confined to its directory
(no links out, no special files) and a store that retries and bounds remote I/O."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Iterable
from typing import Any

import zarr
import zarr.buffer
import zarr.errors
import zarr.storage

from skelstore import rangefile as _rangefile
from skelstore.errors import (
    FormatError,
)
from skelstore.rangefile import RetryPolicy, retry_async


class _ConfinedLocalStore(zarr.storage.LocalStore):
    """A directory store that never reads or writes outside its directory.

    A store from elsewhere may hold symbolic links: a chunk linked to another file
    would be read as keypoints, a link to ``/dev/zero`` read until memory runs out.
    Before each read or write, a key's directory (resolved once and remembered) and
    the key itself (one ``lstat``) are checked: a link resolving outside the store,
    or anything but a regular file or directory (devices, FIFOs, sockets), raises
    :class:`~skelstore.errors.FormatError` naming the store and the member. Links
    that stay inside the store are followed.
    """

    def __init__(self, root: Any, *, read_only: bool = False, url: str | None = None) -> None:
        super().__init__(root, read_only=read_only)
        self.url = url or str(root)
        self._real_root: str | None = None
        self._real_dirs: dict[str, str] = {}

    def with_read_only(self, read_only: bool = False) -> _ConfinedLocalStore:
        return type(self)(self.root, read_only=read_only, url=self.url)

    def _inside(self, real: str) -> bool:
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root)
        return real == self._real_root or real.startswith(self._real_root.rstrip(os.sep) + os.sep)

    def _refuse(self, key: str, why: str) -> FormatError:
        return FormatError(f"{self.url}: member {key!r} {why}; refusing to use it")

    def check_key(self, key: str) -> None:
        """Raise FormatError if ``key`` leads outside the store or to a special file."""
        path = os.path.join(os.fspath(self.root), key)
        directory = os.path.dirname(path)
        real_dir = self._real_dirs.get(directory)
        if real_dir is None:
            real_dir = os.path.realpath(directory)
            if not self._inside(real_dir):
                raise self._refuse(
                    key, f"lies in a linked directory outside the store ({real_dir})"
                )
            self._real_dirs[directory] = real_dir
        try:
            st = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return  # missing: zarr reports it as missing
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(path)
            if not self._inside(target):
                raise self._refuse(key, f"is a link to {target}, outside the store")
            try:
                st = os.stat(target)
            except OSError:
                return  # a dangling link inside the store: missing
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            raise self._refuse(key, "is not a regular file (a device, FIFO or socket)")

    async def get(self, key: str, prototype: Any = None, byte_range: Any = None) -> Any:
        self.check_key(key)
        return await super().get(key, prototype, byte_range)

    def get_sync(self, key: str = "", *, prototype: Any = None, byte_range: Any = None) -> Any:
        self.check_key(key)
        return super().get_sync(key, prototype=prototype, byte_range=byte_range)

    async def get_partial_values(
        self, prototype: Any, key_ranges: Iterable[tuple[str, Any]]
    ) -> list[Any]:
        key_ranges = list(key_ranges)
        for key, _ in key_ranges:
            self.check_key(key)
        return await super().get_partial_values(prototype, key_ranges)

    async def _set(self, key: str, value: Any, exclusive: bool = False) -> None:
        self.check_key(key)
        await super()._set(key, value, exclusive=exclusive)

    def set_sync(self, key: str, value: Any) -> None:
        self.check_key(key)
        super().set_sync(key, value)


class _RetryingStore(zarr.storage.WrapperStore):  # type: ignore[type-arg]
    """A remote (fsspec) store whose reads retry transient failures.

    ``get``, ``get_partial_values``, ``exists`` and ``list_dir`` run under a
    :class:`~skelstore.rangefile.RetryPolicy` (each attempt bounded in time and
    cancelled when over); failures raise :class:`~skelstore.errors.RemoteError`
    naming the URL (a missing key stays a missing key). Writes are passed on.
    """

    def __init__(self, store: Any, url: str = "", policy: RetryPolicy | None = None) -> None:
        super().__init__(store)
        self.url = url or str(store)
        self.policy = policy or _rangefile.default_retry()

    def _with_store(self, store: Any) -> _RetryingStore:
        return type(self)(store, self.url, self.policy)

    def __str__(self) -> str:
        return str(self._store)

    def __repr__(self) -> str:
        return f"_RetryingStore({self._store!r})"

    def _where(self, key: str) -> str:
        return f"{self.url.rstrip('/')}/{key}" if key else self.url

    async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
        return await retry_async(
            lambda: self._store.get(key, prototype, byte_range), self._where(key), self.policy
        )

    async def get_partial_values(
        self, prototype: Any, key_ranges: Iterable[tuple[str, Any]]
    ) -> list[Any]:
        key_ranges = list(key_ranges)
        where = self._where(key_ranges[0][0]) if key_ranges else self.url
        return await retry_async(
            lambda: self._store.get_partial_values(prototype, key_ranges), where, self.policy
        )

    async def exists(self, key: str) -> bool:
        return await retry_async(lambda: self._store.exists(key), self._where(key), self.policy)

    # writes: bounded in time and retried like reads (each is a whole-object PUT or
    # DELETE, so repeating one is harmless)
    async def set(self, key: str, value: Any) -> None:
        await retry_async(
            lambda: self._store.set(key, value),
            self._where(key),
            self.policy,
            len(value),
            action="write",
        )

    async def set_if_not_exists(self, key: str, value: Any) -> None:
        await retry_async(
            lambda: self._store.set_if_not_exists(key, value),
            self._where(key),
            self.policy,
            len(value),
            action="write",
        )

    async def _set_many(self, values: Iterable[tuple[str, Any]]) -> None:
        await asyncio.gather(*(self.set(key, value) for key, value in values))

    async def delete(self, key: str) -> None:
        await retry_async(
            lambda: self._store.delete(key), self._where(key), self.policy, action="delete"
        )

    async def delete_dir(self, prefix: str) -> None:
        await retry_async(
            lambda: self._store.delete_dir(prefix),
            self._where(prefix),
            self.policy,
            action="delete",
        )

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        async def collect() -> list[str]:
            return [k async for k in self._store.list_dir(prefix)]

        async def entries() -> AsyncIterator[str]:
            for key in await retry_async(collect, self._where(prefix), self.policy):
                yield key

        return entries()
