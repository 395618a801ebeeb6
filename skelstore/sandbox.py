"""Opening files from elsewhere: walk a dump's metadata in a watchdog child process.

skelstore's own checks turn damaged input into typed errors, but some damage is
met inside libhdf5 before skelstore sees anything: fuzzing found files on which
libhdf5 2.0 loops forever (a global heap collection whose free-space entry has
size 0) or allocates gigabytes (a damaged variable-length string length) while
reading an attribute. No Python code can interrupt a C loop, so for files that
may be hostile :func:`check_untrusted` first reads every group, attribute and
array header of the target in a child process with a time and memory limit.
Metadata is read the same way every time, so once the child got through it the
parent's reads of the same structures are safe. ``skelstore.open(...,
untrusted=True)`` (or ``SKELSTORE_UNTRUSTED=1``) does this before opening, as do
the CLI's ``--untrusted`` options.

Run as ``python -m skelstore.sandbox``, this module is the child: it reads one
JSON request on stdin and writes one JSON result on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from skelstore import errors
from skelstore.errors import EngineError, FormatError, SkelstoreError

__all__ = ["DEFAULT_MEMORY_BYTES", "DEFAULT_TIMEOUT", "check_untrusted", "walk_metadata"]

#: Seconds the child may take to read all metadata (remote files included).
DEFAULT_TIMEOUT = 60.0
#: Address-space limit of the child (``RLIMIT_AS``): the interpreter with h5py and
#: zarr loaded maps about 1.5 GB of virtual memory before reading anything.
DEFAULT_MEMORY_BYTES = 6 * 2**30


def check_untrusted(
    url: str,
    *,
    engine: str | None = None,
    storage_options: dict[str, Any] | None = None,
    allow_external: bool = False,
    timeout: float | None = None,
    memory_bytes: int | None = None,
) -> None:
    """Read all of ``url``'s metadata in a child process; return if that worked.

    ``timeout`` and ``memory_bytes`` default to :data:`DEFAULT_TIMEOUT` and
    :data:`DEFAULT_MEMORY_BYTES` (read at call time).

    Raises:
        FormatError: the child did not finish within ``timeout`` seconds, ran out
            of memory, or died (a crash in a C library); the file is damaged or
            hostile and should not be opened in this process.
        SkelstoreError: what opening and walking the file raised in the child, with
            its class (``NotFoundError``, ``FormatError``, ...) and message.
        EngineError: ``storage_options`` cannot be sent to the child (not JSON).
    """
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    memory_bytes = DEFAULT_MEMORY_BYTES if memory_bytes is None else memory_bytes
    request = {
        "url": url,
        "engine": engine,
        "storage_options": storage_options,
        "allow_external": allow_external,
        "memory_bytes": memory_bytes,
    }
    try:
        payload = json.dumps(request)
    except (TypeError, ValueError) as exc:
        raise EngineError(
            f"{url}: storage_options must be JSON data to check an untrusted file ({exc})"
        ) from exc
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "skelstore.sandbox"],
            input=payload.encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FormatError(
            f"{url}: reading its metadata did not finish within {timeout:g} s; the file "
            "is damaged or hostile (libhdf5 loops forever on some damaged structures)"
        ) from None
    result = _parse(proc.stdout)
    if result.get("ok"):
        return
    if "type" in result:
        cls = getattr(errors, str(result["type"]), None)
        if not (isinstance(cls, type) and issubclass(cls, SkelstoreError)):
            cls = SkelstoreError
        raise cls(str(result.get("message", "")))
    if proc.returncode < 0:
        what = f"was killed by signal {-proc.returncode}"
    else:
        what = f"exited with status {proc.returncode}"
    tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
    raise FormatError(
        f"{url}: reading its metadata crashed the reader (the child process {what}); "
        f"the file is damaged or hostile {tail[0][:200]}".rstrip()
    )


def _parse(stdout: bytes) -> dict[str, Any]:
    try:
        out = json.loads(stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}
    return out if isinstance(out, dict) else {}


def walk_metadata(root: Any) -> int:
    """Touch every group's members and attributes and every array's header and
    first element below ``root`` (a :class:`~skelstore.storage.Group`); the number
    of nodes seen."""
    from skelstore.storage import Group

    seen = 0
    stack = [root]
    while stack:
        node = stack.pop()
        seen += 1
        dict(node.attrs)
        if isinstance(node, Group):
            stack.extend(child for _, child in node.items())
        else:
            _ = (node.shape, node.dtype, node.chunks, node.encoding)
            if node.shape and node.shape[0]:
                node[0:1]
    return seen


def _child() -> int:
    """The child's side: one request on stdin, one JSON line on stdout."""
    request = json.loads(sys.stdin.read())
    try:
        import resource

        limit = int(request.get("memory_bytes") or DEFAULT_MEMORY_BYTES)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not POSIX, or a lower hard limit
        pass
    import skelstore

    try:
        with skelstore.open(
            request["url"],
            engine=request.get("engine"),
            storage_options=request.get("storage_options"),
            allow_incomplete=True,
            allow_external=bool(request.get("allow_external")),
            untrusted=False,
        ) as root:
            nodes = walk_metadata(root)
        result: dict[str, Any] = {"ok": True, "nodes": nodes}
    except SkelstoreError as exc:
        result = {"type": type(exc).__name__, "message": str(exc)}
    except MemoryError:
        result = {
            "type": "FormatError",
            "message": f"{request['url']}: reading its metadata needs more than "
            f"{int(request.get('memory_bytes') or DEFAULT_MEMORY_BYTES) >> 20} MiB; "
            "the file is damaged or hostile",
        }
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: nothing left to flush


if __name__ == "__main__":
    sys.exit(_child())
