"""The Zarr engine: zarr-python 3 behind the storage interface (Zarr formats 2 and 3).

Targets:

* a local directory (plain path or ``file://``) → :class:`zarr.storage.LocalStore`;
* any other fsspec URL (``memory://``, ``s3://``, ``gs://``, ...) →
  :class:`zarr.storage.FsspecStore` (synchronous filesystems such as ``memory://``
  are wrapped by zarr itself);
* a ``.zarr.zip`` file (or a ``zip::`` prefixed URL): read in place through
  :class:`zarr.storage.ZipStore` (through fsspec's zip filesystem if remote);
  written by building a local directory store and writing the zip in one go
  when the root is closed (to a temporary name, then ``os.replace``-d into place,
  or uploaded as one object), because ``ZipStore`` appends a duplicate entry each
  time a key such as ``zarr.json`` is rewritten, and so a crash never leaves half
  a zip behind.

Writable roots opened here are consolidated (``zarr.consolidate_metadata``) on
:meth:`ZarrGroup.close`; readers use consolidated metadata when it is there.
While a root is open for writing, consolidated metadata is ignored and an old
copy is dropped at open, so nothing stale is ever listed.

One writer at a time: a local directory store (or local ``.zarr.zip``) opened
for writing holds :class:`skelstore.locks.WriteLock` (a lock file beside it,
naming the holder) until the root is closed; it is taken before the target is
looked at, so a refused writer changes nothing. Object stores have no such lock
(see docs/remote.md).

A write the storage fails (a full disk) raises
:class:`~skelstore.errors.WriteError` and stops the session: later writes raise
it again, and closing neither consolidates nor publishes a zip.

Remote stores (fsspec) are wrapped in :class:`_RetryingStore`: reads that fail
transiently are retried under :func:`skelstore.rangefile.default_retry`, and
failures raise :class:`~skelstore.errors.RemoteError` naming the URL.

The engine is a package, a module per concern: ``engine`` (guessing, opening,
wrapping), ``targets`` (what is at a URL, open modes, the root group),
``session`` (one opened hierarchy: lock, failed-write guard, consolidation),
``groups`` and ``arrays`` (the nodes), ``batch`` (``write_many``), ``attrs``,
``codecs``, ``chunking``, ``stores`` (confined local and retrying remote stores),
``zipsink`` (``.zarr.zip`` targets), ``util``, and ``compat``, the one place that
touches zarr-python's internals.
"""

from skelstore.backends.zarr.arrays import ZarrArray
from skelstore.backends.zarr.engine import ZarrEngine
from skelstore.backends.zarr.groups import ZarrGroup

__all__ = ["ZarrArray", "ZarrEngine", "ZarrGroup"]
