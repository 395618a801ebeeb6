"""Dumps on real servers: S3 (moto), GCS (fake-gcs-server) and plain HTTP (aiohttp).

Every server runs on 127.0.0.1 for the whole session (``servers.py``, fixtures in
``conftest.py``); each test gets a fresh bucket or served directory. Nothing of
fsspec or the engines is mocked: bytes really go through s3fs, gcsfs and fsspec's
HTTP filesystem.

What is checked:

* the golden skelshop dumps, uploaded as they are (HDF5, read through the HDF5
  engine's remote-read path) and as Zarr copies (formats 3 and 2, converted
  locally and uploaded as directories), decode exactly to their ``.expected.npz``;
* over HTTP, consolidated metadata is what lets a Zarr store be read where
  nothing can be listed;
* dumps written straight to S3 and GCS with the writers (both engines, Zarr 2
  and 3) read back as written; a remote HDF5 file appears only when closed;
* :func:`skelstore.convert` to and from buckets, verified;
* Zarr stores written to S3 carry consolidated metadata listing every node;
* errors: missing objects and buckets, unknown contents, writes over HTTP.

Moto answers slowly (~10-20 ms a request on this machine), so S3 gets the large
golden stores in Zarr format 3 only (the small ones in both formats).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import zarr
from dumputil import (
    GOLDEN_DIR,
    GOLDEN_FILES,
    UNSEG_GOLDEN,
    Rows,
    assert_rows_equal,
    decode_shots,
    decode_trackshots,
    decode_unseg,
    golden_shot_ranges,
    load_expected,
    rows_from_list,
    stored_shot_ranges,
)
from servers import HTTPServer
from test_face import EXTRAS, check_dense, check_sparse, make_frames, write_with_skelstore
from test_golden import golden_attrs, golden_limbs
from test_openpose import assert_same_json, read_json_files, write_json_dir
from test_roundtrip import fixed_tracked, random_pose, tracked_expectation, tracked_frames, visible

import skelstore
from skelstore.conversion import convert
from skelstore.dump import add_fmt_metadata, add_metadata, write_shots
from skelstore.face import FaceReader, SparseFaceReader
from skelstore.io import ShotSegmentedReader, ShotSegmentedWriter
from skelstore.openpose import export_openpose, import_openpose

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
LOSSY = "trackshots_lossy.h5"
#: Golden dumps small enough to send to moto in both Zarr formats.
SMALL_GOLDEN = ("trackshots_offset_face.h5", "unseg_body25.h5")
#: Root attributes every copy of a golden dump must carry unchanged.
ROOT_ATTRS = ("fmt_type", "mode", "limbs", "num_frames")


# ---------------------------------------------------------------- loopback only

_LOOPBACK = frozenset({"127.0.0.1", "::1"})


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse, and fail the test on, any connection not to 127.0.0.1: a client that
    reaches for real cloud endpoints or instance-metadata servers (as a missing
    ``storage_options`` makes s3fs and gcsfs do) must not go unnoticed, even where
    its own fallbacks would swallow the error."""
    attempts: list[Any] = []

    def guard(method: Any) -> Any:
        def connect(self: socket.socket, address: Any) -> Any:
            if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOOPBACK:
                attempts.append(address)
                raise ConnectionRefusedError(f"test_cloud: connecting to {address} refused")
            return method(self, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(socket.socket.connect_ex))
    yield
    assert not attempts, f"connections attempted outside 127.0.0.1: {attempts}"


# ---------------------------------------------------------------- places


@dataclass
class Place:
    """Where one test keeps its objects: a fresh bucket, or a fresh served directory."""

    kind: str  # "s3", "gs" or "http"
    base: str  # URL of the bucket or directory, no trailing slash
    storage_options: dict[str, Any] | None
    local_dir: Path | None = None  # the served directory (http only)

    def url(self, key: str) -> str:
        return f"{self.base}/{key}"

    @property
    def fs(self) -> Any:
        """The (cached) fsspec filesystem, its listing cache dropped."""
        fs = fsspec.core.url_to_fs(self.base, **(self.storage_options or {}))[0]
        fs.invalidate_cache()
        return fs

    def path(self, key: str) -> str:
        """The path of ``key`` inside :attr:`fs`."""
        return fsspec.core.url_to_fs(self.url(key), **(self.storage_options or {}))[1]

    def upload(self, local: Path, key: str) -> str:
        """Put a local file or directory tree at ``key``; return its URL."""
        if self.local_dir is not None:
            dest = self.local_dir / key
            if local.is_dir():
                shutil.copytree(local, dest)
            else:
                shutil.copyfile(local, dest)
        else:
            self.fs.put(str(local), self.path(key), recursive=local.is_dir())
        return self.url(key)

    def open(self, key: str, mode: str = "r", **kwargs: Any) -> skelstore.Group:
        return skelstore.open(self.url(key), mode, storage_options=self.storage_options, **kwargs)

    def exists(self, key: str) -> bool:
        return bool(self.fs.exists(self.path(key)))


@pytest.fixture
def place(request: pytest.FixtureRequest) -> Place:
    """A fresh :class:`Place` of the kind given by indirect parametrisation."""
    kind = request.param
    if kind == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = request.getfixturevalue("s3_bucket")
        return Place("s3", f"s3://{bucket}", server.storage_options())
    if kind == "gs":
        server = request.getfixturevalue("gcs_server")
        bucket = request.getfixturevalue("gcs_bucket")
        return Place("gs", f"gs://{bucket}", server.storage_options())
    if kind == "http":
        directory, url = request.getfixturevalue("http_dir")
        return Place("http", url, None, directory)
    raise ValueError(kind)


BUCKETS = ["s3", "gs"]
EVERYWHERE = ["s3", "gs", "http"]


@pytest.fixture(scope="session")
def golden_zarr(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``get(name, zarr_format, layout=None)``: a local Zarr copy of golden dump
    ``name`` (made once; packed unless ``layout="skelshop"``)."""
    root = tmp_path_factory.mktemp("golden-zarr")
    made: dict[tuple[str, int, str | None], Path] = {}

    def get(name: str, zarr_format: int, layout: str | None = None) -> Path:
        key = (name, zarr_format, layout)
        if key not in made:
            dst = root / f"v{zarr_format}-{layout}" / name.replace(".h5", ".zarr")
            convert(GOLDEN_DIR / name, dst, zarr_format=zarr_format, layout=layout)
            made[key] = dst
        return made[key]

    return get


def decode_golden(root: skelstore.Group, name: str) -> Rows:
    """Every row of a copy of golden dump ``name``, after checking its root attributes."""
    attrs = golden_attrs(name)
    for key in ROOT_ATTRS:
        assert root.attrs[key] == attrs[key], key
    limbs = golden_limbs(name)
    if name in UNSEG_GOLDEN:
        rows, start, n = decode_unseg(root, limbs)
        assert (start, n) == (0, int(attrs["num_frames"]))
        return rows
    return decode_trackshots(root, golden_shot_ranges(name), limbs)


# ---------------------------------------------------------------- golden dumps


@pytest.mark.parametrize("name", GOLDEN_FILES)
@pytest.mark.parametrize("place", EVERYWHERE, indirect=True)
def test_golden_hdf5_decodes_exactly_from_remote(place: Place, name: str):
    url = place.upload(GOLDEN_DIR / name, name)
    assert place.exists(name)
    with place.open(name) as root:
        assert root.engine_name == "hdf5"
        assert root.source == url
        got = decode_golden(root, name)
    assert_rows_equal(got, load_expected(name))


ZARR_GOLDEN = [
    pytest.param(kind, fmt, name, id=f"{kind}-v{fmt}-{name[:-3]}")
    for kind in EVERYWHERE
    for fmt in (3, 2)
    for name in GOLDEN_FILES
    if not (kind == "s3" and fmt == 2 and name not in SMALL_GOLDEN)
]


@pytest.mark.parametrize(("place", "fmt", "name"), ZARR_GOLDEN, indirect=["place"])
def test_golden_zarr_copy_decodes_exactly_from_remote(place: Place, fmt, name, golden_zarr):
    local = golden_zarr(name, fmt)
    key = f"{name[:-3]}.zarr"
    place.upload(local, key)
    with place.open(key) as root:
        assert root.engine_name == "zarr"
        assert root.format_info == {"zarr_format": fmt}
        got = decode_golden(root, name)
    if name == LOSSY:
        # the copy keeps the scale-offset filter, re-quantised from HDF5's: exactly
        # what the local copy decodes to, and within its precision of skelshop's
        with skelstore.open(local) as root:
            assert_rows_equal(got, decode_golden(root, name))
        assert_rows_equal(got, load_expected(name), atol=0.01)
    else:
        assert_rows_equal(got, load_expected(name))


def _strip_consolidated(store: Path, fmt: int) -> None:
    if fmt == 3:
        meta = json.loads((store / "zarr.json").read_text())
        del meta["consolidated_metadata"]
        (store / "zarr.json").write_text(json.dumps(meta))
    else:
        (store / ".zmetadata").unlink()


@pytest.mark.parametrize("fmt", [3, 2])
def test_http_zarr_needs_only_consolidated_metadata(tmp_path, golden_zarr, fmt):
    """On a server that cannot list directories (403), a consolidated store reads in
    full; the same store in skelshop's layout without its consolidated metadata
    cannot be read, with a skelstore error rather than the HTTP client's. A packed
    store names all its arrays itself: it reads without listing too."""
    name = "trackshots_offset_face.h5"
    served = tmp_path / "served"
    shutil.copytree(golden_zarr(name, fmt, "skelshop"), served / "with.zarr")
    shutil.copytree(golden_zarr(name, fmt, "skelshop"), served / "without.zarr")
    shutil.copytree(golden_zarr(name, fmt), served / "packed.zarr")
    _strip_consolidated(served / "without.zarr", fmt)
    _strip_consolidated(served / "packed.zarr", fmt)
    with HTTPServer(served, show_index=False) as server:
        fs = fsspec.filesystem("http", skip_instance_cache=True)
        with pytest.raises(Exception, match="403"):
            fs.ls(server.url_for("with.zarr/"))
        with skelstore.open(server.url_for("with.zarr")) as root:
            assert_rows_equal(decode_golden(root, name), load_expected(name))
        with (
            pytest.raises(skelstore.SkelstoreError, match="consolidated metadata"),
            skelstore.open(server.url_for("without.zarr")) as root,
        ):
            decode_golden(root, name)
        with skelstore.open(server.url_for("packed.zarr")) as root:
            assert root.attrs["layout"] == "packed"
            assert_rows_equal(decode_golden(root, name), load_expected(name))


# ---------------------------------------------------------------- writing to buckets

KINDS = {
    "zarr3": ("rt.zarr", {"zarr_format": 3}),
    "zarr2": ("rt.zarr", {"zarr_format": 2}),
    "hdf5": ("rt.h5", {}),
}


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("place", BUCKETS, indirect=True)
def test_write_shots_to_bucket_reads_back(place: Place, kind: str):
    key, kwargs = KINDS[kind]
    limbs = 25
    start_frame, shots = fixed_tracked(limbs, seed=17)
    expected, ranges = tracked_expectation(start_frame, shots, limbs)
    total = start_frame + sum(s.length for s in shots)
    root = place.open(key, "w", **kwargs)
    try:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "video.mp4", total, "BODY_25", limbs)
        write_shots(
            root, limbs, tracked_frames(shots), start_frame=start_frame, compression="lossless"
        )
        root.flush()
        if kind == "hdf5":  # built locally, uploaded whole on close
            assert not place.exists(key)
    finally:
        root.close()
    assert place.exists(key)
    if kind == "hdf5":
        assert place.fs.cat_file(place.path(key), start=0, end=8) == HDF5_MAGIC
    else:
        marker = "zarr.json" if kwargs["zarr_format"] == 3 else ".zgroup"
        assert place.exists(f"{key}/{marker}")

    with place.open(key) as root:
        assert root.engine_name == ("hdf5" if kind == "hdf5" else "zarr")
        if kind != "hdf5":
            assert root.format_info == {"zarr_format": kwargs["zarr_format"]}
        assert root.attrs["num_frames"] == total
        assert root.attrs.get("layout") == (None if kind == "hdf5" else "packed")
        assert stored_shot_ranges(root) == ranges
        got, _ = decode_shots(ShotSegmentedReader(root), ranges, limbs)
    assert_rows_equal(got, expected)


@pytest.mark.parametrize("kind", ["zarr3", "hdf5"])
@pytest.mark.parametrize("place", BUCKETS, indirect=True)
def test_frame_by_frame_writer_to_bucket(place: Place, kind: str):
    """skelshop's pipeline style: a ShotSegmentedWriter fed frame by frame."""
    key, kwargs = KINDS[kind]
    rng = np.random.default_rng(5)
    poses = {(f, pid): random_pose(rng, 25, 0.3) for f in range(10) for pid in (0, 2) if f >= pid}
    with place.open(key, "w", **kwargs) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "walk.mp4", 10, "BODY_25", 25)
        writer = ShotSegmentedWriter(root, num_kps=25, compression="lossless")
        writer.start_shot(0)
        for f in range(10):
            if f == 6:
                writer.end_shot()
                writer.start_shot()
            writer.register_frame(f)
            for pid in (0, 2):
                if (f, pid) in poses:
                    writer.add_pose(f, pid, poses[(f, pid)])
        writer.end_shot()
    expected = rows_from_list(
        [(f, int(f >= 6), pid, visible(p)) for (f, pid), p in poses.items()], 25
    )
    with place.open(key) as root:
        got, shots = decode_shots(ShotSegmentedReader(root), {0: (0, 6), 1: (6, 10)}, 25)
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 6), (6, 10)]
    assert_rows_equal(got, expected)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("kind", ["zarr3", "hdf5"])
@pytest.mark.parametrize("place", BUCKETS, indirect=True)
def test_faces_on_buckets(place: Place, kind: str, sparse: bool):
    """skelstore.face through object storage: written, read back, face by face."""
    key, kwargs = KINDS[kind]
    frames = make_frames(20, seed=11)
    with place.open(key, "w", **kwargs) as root:
        write_with_skelstore(root, frames, sparse, EXTRAS["all"])
    with place.open(key) as root:
        if sparse:
            check_sparse(SparseFaceReader(root), frames, EXTRAS["all"])
        else:
            check_dense(FaceReader(root), frames, EXTRAS["all"], start=3)


@pytest.mark.parametrize("place", BUCKETS, indirect=True)
def test_openpose_import_from_bucket_zip_and_export_to_bucket(place: Place, tmp_path: Path):
    src = tmp_path / "json"
    write_json_dir(src, "BODY_25_HANDS", 15, seed=12)
    local_zip = tmp_path / "clip.zip"
    with zipfile.ZipFile(local_zip, "w") as z:
        for p in sorted(src.iterdir()):
            z.write(p, p.name)
    zip_url = place.upload(local_zip, "clip.zip")
    dump = place.url("clip.zarr")
    import_openpose(zip_url, dump, mode="BODY_25_HANDS", storage_options=place.storage_options)
    out = place.url("json-out")
    export_openpose(dump, out, storage_options=place.storage_options)
    fs = place.fs
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls(place.path("json-out"), detail=False))
    original = read_json_files(src)
    assert names == sorted(original)
    base = place.path("json-out")
    for name in names:
        assert_same_json(original[name], json.loads(fs.cat_file(f"{base}/{name}")))


@pytest.mark.parametrize("place", BUCKETS, indirect=True)
def test_convert_local_hdf5_to_bucket_zarr_and_back(place: Place, tmp_path: Path):
    name = "trackshots_offset_face.h5"
    zarr_url = place.url("conv.zarr")
    there = convert(
        GOLDEN_DIR / name,
        zarr_url,
        compression="lossless",
        storage_options=place.storage_options,
        verify=True,
    )
    assert there.verified and there.dst_engine == "zarr"
    assert there.compression == "lossless"
    assert place.exists("conv.zarr/zarr.json")
    back = tmp_path / "back.h5"
    again = convert(zarr_url, back, storage_options=place.storage_options, verify=True)
    assert again.verified and (again.src_engine, again.dst_engine) == ("zarr", "hdf5")
    with skelstore.open(back) as root:
        assert root.engine_name == "hdf5"
        assert_rows_equal(decode_golden(root, name), load_expected(name))
    with pytest.raises(skelstore.EngineError, match="already exists"):
        convert(GOLDEN_DIR / name, zarr_url, storage_options=place.storage_options)


# ---------------------------------------------------------------- consolidated metadata


def _consolidated_nodes(place: Place, key: str, fmt: int) -> dict[str, dict]:
    """``{node path: attributes}`` from the consolidated metadata at the store's root."""
    fs = place.fs
    if fmt == 3:
        meta = json.loads(fs.cat_file(place.path(f"{key}/zarr.json")))
        cons = meta["consolidated_metadata"]
        assert cons["kind"] == "inline"
        return {p: m.get("attributes", {}) for p, m in cons["metadata"].items()}
    meta = json.loads(fs.cat_file(place.path(f"{key}/.zmetadata")))
    assert meta["zarr_consolidated_format"] == 1
    entries = meta["metadata"]
    return {
        k.rsplit("/", 1)[0]: entries.get(k.rsplit("/", 1)[0] + "/.zattrs", {})
        for k in entries
        if "/" in k and k.rsplit("/", 1)[1] in (".zgroup", ".zarray")
    }


def _stored_nodes(place: Place, key: str, fmt: int) -> set[str]:
    """Paths of every node actually stored under the store's root (the root excluded)."""
    fs = place.fs
    prefix = place.path(key) + "/"
    markers = ("zarr.json",) if fmt == 3 else (".zgroup", ".zarray")
    out = set()
    for p in fs.find(place.path(key)):
        rel = p[len(prefix) :]
        if "/" in rel and rel.rsplit("/", 1)[1] in markers:
            out.add(rel.rsplit("/", 1)[0])
    return out


@pytest.mark.parametrize("fmt", [3, 2])
@pytest.mark.parametrize("place", ["s3"], indirect=True)
def test_zarr_on_s3_is_consolidated_on_close(place: Place, fmt: int):
    rng = np.random.default_rng(9)
    frames = [[(0, random_pose(rng, 25, 0.2))] for _ in range(4)]
    with place.open("c.zarr", "w", zarr_format=fmt) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 4, "BODY_25", 25)
        write_shots(root, 25, frames)
    nodes = _consolidated_nodes(place, "c.zarr", fmt)
    stored = _stored_nodes(place, "c.zarr", fmt)
    assert set(nodes) == stored
    assert {"timeline/data", "timeline/indptr", "timeline/shots", "timeline/tracks"} <= stored
    assert nodes["timeline/shots"]["columns"] == ["start_frame", "end_frame"]
    # zarr itself reads the store through the consolidated metadata
    group = zarr.open_consolidated(
        place.url("c.zarr"), zarr_format=fmt, storage_options=place.storage_options
    )
    assert group.metadata.consolidated_metadata is not None

    # appending refreshes it: the new group is listed, with its attributes
    with place.open("c.zarr", "a") as root:
        root.create_group("extra").attrs["note"] = "added"
    nodes = _consolidated_nodes(place, "c.zarr", fmt)
    assert set(nodes) == _stored_nodes(place, "c.zarr", fmt) == stored | {"extra"}
    assert nodes["extra"] == {"note": "added"}


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("key", ["missing.h5", "missing.zarr", "missing"])
@pytest.mark.parametrize("place", EVERYWHERE, indirect=True)
def test_missing_object_is_not_found(place: Place, key: str):
    with pytest.raises(skelstore.NotFoundError, match=re.escape(place.url(key))):
        place.open(key)


@pytest.mark.parametrize("key", ["x.h5", "x.zarr", "x"])
@pytest.mark.parametrize("place", BUCKETS, indirect=True)
def test_missing_bucket_is_a_skelstore_error_naming_the_url(place: Place, key: str):
    url = f"{place.kind}://no-such-bucket-{uuid.uuid4().hex[:8]}/{key}"
    with pytest.raises(skelstore.NotFoundError, match=re.escape(url)):
        skelstore.open(url, storage_options=place.storage_options)


@pytest.mark.parametrize("key", ["x.h5", "x.zarr"])
@pytest.mark.parametrize("place", BUCKETS, indirect=True)
def test_writing_into_a_missing_bucket_fails_naming_the_url(place: Place, key: str):
    """Zarr fails at open; HDF5 (written locally first) when uploading on close,
    keeping the written file, whose path the message gives."""
    url = f"{place.kind}://no-such-bucket-{uuid.uuid4().hex[:8]}/{key}"
    with pytest.raises(skelstore.SkelstoreError, match=re.escape(url)) as info:  # noqa: SIM117
        with skelstore.open(url, "w", storage_options=place.storage_options) as root:
            root.attrs["k"] = 1
    kept = re.search(r"kept at (\S+)", str(info.value))
    if key.endswith(".h5"):
        assert kept is not None
        assert Path(kept.group(1)).is_file()
        shutil.rmtree(Path(kept.group(1)).parent)


@pytest.mark.parametrize("place", EVERYWHERE, indirect=True)
def test_unknown_suffix_and_contents_is_engine_error(place: Place, tmp_path: Path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"not a dump\n" * 400)
    url = place.upload(blob, "blob.bin")
    with pytest.raises(skelstore.EngineError, match=re.escape(url)) as info:
        place.open("blob.bin")
    assert "engine=" in str(info.value)
    # ...and the engine can still be named outright
    with pytest.raises(skelstore.FormatError, match=re.escape(url)):
        place.open("blob.bin", engine="hdf5")


@pytest.mark.parametrize("mode", ["w", "w-", "a", "r+"])
@pytest.mark.parametrize("key", ["new.h5", "new.zarr", "unseg_body25.h5"])
@pytest.mark.parametrize("place", ["http"], indirect=True)
def test_http_is_read_only(place: Place, key: str, mode: str):
    place.upload(GOLDEN_DIR / "unseg_body25.h5", "unseg_body25.h5")
    before = sorted(p.name for p in place.local_dir.iterdir())
    with pytest.raises(skelstore.ReadOnlyError, match=re.escape(place.url(key))):
        place.open(key, mode)
    assert sorted(p.name for p in place.local_dir.iterdir()) == before
    with place.open("unseg_body25.h5") as root:  # reading still works
        assert root.attrs["fmt_type"] == "unseg"


@pytest.mark.parametrize("place", ["http"], indirect=True)
def test_convert_into_http_is_refused(place: Place):
    with pytest.raises(skelstore.ReadOnlyError, match="read only"):
        convert(GOLDEN_DIR / "unseg_body25.h5", place.url("out.zarr"))
    assert list(place.local_dir.iterdir()) == []
