"""The Group/Array contract of skelstore.storage, the same on every engine; open modes,
engine guessing and adapting already open h5py/zarr objects."""

from __future__ import annotations

import uuid
from pathlib import Path

import h5py
import numpy as np
import pytest
import zarr
from dumputil import make_target

import skelstore
from skelstore.compression import Encoding
from skelstore.engines import guess_engine, list_engines
from skelstore.storage import ArraySpec, GroupSpec
from skelstore.urls import split_suffix

ENGINE_KINDS = ["hdf5", "zarr3", "zarr2"]


@pytest.fixture(params=ENGINE_KINDS)
def store(request, tmp_path):
    """``(url, open_kwargs, engine_name)`` of a fresh local target."""
    url, kwargs = make_target(request.param, tmp_path)
    return url, kwargs, "hdf5" if request.param == "hdf5" else "zarr"


def basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


# ------------------------------------------------------------ attributes


def test_attrs_are_normalised(store):
    url, kw, _ = store
    values = {
        "i64": np.int64(7),
        "i32": np.int32(-3),
        "u16": np.uint16(9),
        "f32": np.float32(1.5),
        "f64": np.float64(0.25),
        "b": np.bool_(True),
        "pyb": False,
        "bytes": b"abc",
        "str": "héllo",
        "ints": [1, 2, 3],
        "floats": np.array([0.5, 1.5]),
        "strs": ["a", "bc"],
        "tuple": (4, 5),
    }
    want = {
        "i64": 7,
        "i32": -3,
        "u16": 9,
        "f32": 1.5,
        "f64": 0.25,
        "b": True,
        "pyb": False,
        "bytes": "abc",
        "str": "héllo",
        "ints": [1, 2, 3],
        "floats": [0.5, 1.5],
        "strs": ["a", "bc"],
        "tuple": [4, 5],
    }

    def check(attrs):
        for key, value in want.items():
            got = attrs[key]
            assert got == value, key
            assert type(got) is type(value), (key, type(got))
            if isinstance(got, list):
                assert all(type(v) is type(w) for v, w in zip(got, value, strict=True)), key
        assert not any(isinstance(v, (bytes, np.generic, np.ndarray)) for v in attrs.values())

    with skelstore.open(url, "w", **kw) as root:
        for key, value in values.items():
            root.attrs[key] = value
        grp = root.create_group("g")
        grp.attrs.update(values)
        arr = grp.create_array("a", data=np.arange(3))
        arr.attrs.update(values)
        check(root.attrs)
        check(grp.attrs)
        check(arr.attrs)
    with skelstore.open(url, "r") as root:
        check(root.attrs)
        check(root["g"].attrs)
        check(root["g/a"].attrs)
        assert set(root.attrs) == set(values)
        assert len(root.attrs) == len(values)
        assert "i64" in root.attrs and "nope" not in root.attrs
        assert root.attrs.get("nope", 5) == 5


def test_attr_delete_and_missing(store):
    url, kw, _ = store
    with skelstore.open(url, "w", **kw) as root:
        root.attrs["x"] = 1
        del root.attrs["x"]
        assert "x" not in root.attrs
        with pytest.raises(skelstore.NotFoundError, match=basename(url)):
            root.attrs["x"]
        with pytest.raises(skelstore.NotFoundError):
            del root.attrs["x"]


# ------------------------------------------------------------ children


def test_natural_child_order(store):
    url, kw, _ = store
    with skelstore.open(url, "w", **kw) as root:
        tl = root.create_group("timeline")
        for name in ("shot10", "shot2", "shot1", "shot100", "shot0"):
            tl.create_group(name)
        tl.create_array("pose3", data=np.zeros(1))
        expected = ["pose3", "shot0", "shot1", "shot2", "shot10", "shot100"]
        assert tl.keys() == expected
    with skelstore.open(url) as root:
        tl = root["timeline"]
        assert tl.keys() == expected
        assert list(tl) == expected
        assert [k for k, _ in tl.items()] == expected
        assert [k for k, _ in tl.groups()] == expected[1:]
        assert [k for k, _ in tl.arrays()] == ["pose3"]
        assert len(tl) == 6
        assert "shot10" in tl and "shot3" not in tl and 5 not in tl


def test_groups_create_require_and_paths(store):
    url, kw, _ = store
    with skelstore.open(url, "w", **kw) as root:
        assert root.path == "/"
        assert root.name == ""
        assert root.writable
        a = root.create_group("a")
        b = a.create_group("b")
        assert (a.path, b.path, b.name) == ("/a", "/a/b", "b")
        assert root["a/b"].path == "/a/b"
        assert root["/a/b"].path == "/a/b"
        with pytest.raises(skelstore.FormatError):
            root.create_group("a")
        again = root.require_group("a")
        assert isinstance(again, skelstore.Group) and again.path == "/a"
        new = root.require_group("c")
        assert new.path == "/c"
        a.create_array("arr", data=np.zeros(2))
        with pytest.raises(skelstore.FormatError):
            a.require_group("arr")
        with pytest.raises(skelstore.FormatError):
            a.create_array("arr", data=np.zeros(2))
        assert root.get("a/zzz") is None
        assert root.get("a/zzz", 3) == 3
    with skelstore.open(url) as root:
        assert root.keys() == ["a", "c"]
        assert root["a"].keys() == ["arr", "b"]
        assert isinstance(root["a/b"], skelstore.Group)
        assert isinstance(root["a/arr"], skelstore.Array)


def test_missing_path_raises_not_found_naming_the_file(store):
    url, kw, _ = store
    with skelstore.open(url, "w", **kw) as root:
        root.create_group("a")
    with skelstore.open(url) as root:
        for path in ("nope", "a/nope", "a/nope/deeper"):
            with pytest.raises(skelstore.NotFoundError) as info:
                root[path]
            assert isinstance(info.value, FileNotFoundError)
            assert isinstance(info.value, skelstore.SkelstoreError)
            assert basename(url) in str(info.value)
            assert "nope" in str(info.value)


# ------------------------------------------------------------ arrays


def test_create_array_from_data(store):
    url, kw, _ = store
    data = np.arange(30, dtype=np.float32).reshape(10, 3)
    with skelstore.open(url, "w", **kw) as root:
        a = root.create_array("data", data=data, chunks=(4, 3))
        b = root.create_array("idx", data=[1, 2, 3], dtype=np.uint16)
        c = root.create_array("empty", shape=(5,), dtype=np.uint32)
        z = root.create_array(
            "zero", data=np.zeros((0, 3), np.float32), chunks=(1, 3), encoding=Encoding(5)
        )
        assert a.shape == (10, 3) and a.dtype == np.float32 and a.chunks == (4, 3)
        assert b.dtype == np.uint16 and len(b) == 3
        assert c.shape == (5,) and c.dtype == np.uint32
        assert z.shape == (0, 3)
        c[1:3] = [7, 8]
    with skelstore.open(url) as root:
        a = root["data"]
        assert a.shape == (10, 3) and a.dtype == np.float32 and a.chunks == (4, 3)
        assert a.name == "data" and a.path == "/data"
        np.testing.assert_array_equal(a.read(), data)
        np.testing.assert_array_equal(a[2:5], data[2:5])
        np.testing.assert_array_equal(a[...], data)
        assert a.read().dtype == np.float32
        np.testing.assert_array_equal(root["idx"].read(), np.array([1, 2, 3], np.uint16))
        assert root["idx"].read().dtype == np.uint16
        np.testing.assert_array_equal(root["empty"].read(), [0, 7, 8, 0, 0])
        assert root["zero"].read().shape == (0, 3)
        assert root["zero"].encoding == Encoding(5)


def test_growable_append(store):
    url, kw, _ = store
    with skelstore.open(url, "w", **kw) as root:
        a = root.create_array("g", shape=(0, 3), dtype=np.float32, chunks=(4, 3), growable=True)
        assert a.growable and a.shape == (0, 3)
        a.append(np.ones((3, 3), np.float32))
        a.append(np.zeros((0, 3), np.float32))
        a.append(np.full((6, 3), 2, np.float32))
        assert a.shape == (9, 3)
        with pytest.raises(skelstore.FormatError):
            a.append(np.ones((2, 4), np.float32))
        # ``growable`` tells the truth: arrays not created growable either refuse
        # to grow (HDF5: fixed-size datasets, as skelshop writes them) or say they can.
        fixed = root.create_array("f", data=np.zeros(2))
        if root.engine_name == "hdf5":
            assert not fixed.growable
        if fixed.growable:
            fixed.append(np.ones(1))
            np.testing.assert_array_equal(fixed.read(), [0, 0, 1])
        else:
            with pytest.raises(skelstore.FormatError):
                fixed.append(np.zeros(1))
            assert fixed.shape == (2,)
        one = root.create_array("i", shape=(0,), dtype=np.uint32, growable=True)
        for i in range(5):
            one.append(np.array([i], np.uint32))
    with skelstore.open(url) as root:
        g = root["g"]
        assert g.growable and g.chunks == (4, 3)
        np.testing.assert_array_equal(g.read(), np.vstack([np.ones((3, 3)), np.full((6, 3), 2)]))
        np.testing.assert_array_equal(root["i"].read(), np.arange(5))
        assert root["i"].read().dtype == np.uint32


@pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr")
def test_write_many_creates_a_batch(store):
    """One batch: nested groups with attrs, arrays of every pose dtype (empty, tiny,
    compressed, larger than one Zarr shard), exactly as create_group/create_array."""
    url, kw, engine = store
    rng = np.random.default_rng(1)
    big = rng.normal(size=(800_000, 3)).astype(np.float32)  # 9.6 MB: one by one on Zarr
    data = rng.normal(size=(500, 3)).astype(np.float32)
    nodes = [
        GroupSpec("shot0", {"start_frame": 3, "end_frame": 9, "name": "s"}),
        GroupSpec("shot0/pose1", {"start_frame": 3, "end_frame": 5}),
        ArraySpec("shot0/pose1/data", data, chunks=(100, 3), encoding=Encoding(5)),
        ArraySpec("shot0/pose1/indices", np.arange(500, dtype=np.uint16) % 25),
        ArraySpec("shot0/pose1/indptr", np.array([0, 500, 500], np.uint32)),
        GroupSpec("shot0/pose2"),
        ArraySpec("shot0/pose2/data", np.zeros((0, 3), np.float32), encoding=Encoding(5)),
        ArraySpec("shot0/pose2/lossy", data, encoding=Encoding(5, 2)),
        ArraySpec("big", big, chunks=(65536, 3), encoding=Encoding(5)),
    ]
    with skelstore.open(url, "w", **kw) as root:
        root.create_group("timeline")
        root.write_many(nodes)
        with pytest.raises(skelstore.FormatError, match="shot0"):
            root.write_many([GroupSpec("shot0")])  # already there: refused, nothing lost
        with pytest.raises(skelstore.FormatError):
            root.write_many([GroupSpec("../x")])
        root["timeline"].write_many([GroupSpec("shot0", {"start_frame": 0})])
    with skelstore.open(url) as root:
        assert root.keys() == ["big", "shot0", "timeline"]
        assert dict(root["shot0"].attrs) == {"start_frame": 3, "end_frame": 9, "name": "s"}
        assert root["shot0"].keys() == ["pose1", "pose2"]
        pose1 = root["shot0/pose1"]
        assert dict(pose1.attrs) == {"start_frame": 3, "end_frame": 5}
        np.testing.assert_array_equal(pose1["data"].read(), data)
        assert pose1["data"].dtype == np.float32 and pose1["data"].encoding == Encoding(5)
        assert pose1["indices"].dtype == np.uint16
        np.testing.assert_array_equal(pose1["indices"].read(), np.arange(500) % 25)
        np.testing.assert_array_equal(pose1["indptr"].read(), [0, 500, 500])
        assert pose1["indptr"].dtype == np.uint32
        assert root["shot0/pose2/data"].shape == (0, 3)
        np.testing.assert_allclose(root["shot0/pose2/lossy"].read(), data, atol=0.0101)
        np.testing.assert_array_equal(root["big"].read(), big)
        assert dict(root["timeline/shot0"].attrs) == {"start_frame": 0}
    if engine == "zarr":  # zarr-python itself reads the batch, consolidated or not
        for consolidated in (True, False):
            z = zarr.open_group(url, mode="r", use_consolidated=consolidated)
            np.testing.assert_array_equal(z["shot0/pose1/data"][...], data)
            assert z["shot0"].attrs["end_frame"] == 9


def test_read_many_keeps_request_order(store):
    url, kw, _ = store
    with skelstore.open(url, "w", **kw) as root:
        for i in range(6):
            root.create_array(f"a{i}", data=np.arange(10) * (i + 1))
    with skelstore.open(url) as root:
        arrays = [root[f"a{i}"] for i in (5, 0, 3)]
        requests = [arrays[0], (arrays[1], slice(2, 5)), (arrays[2], slice(8, 10)), arrays[1]]
        out = root.read_many(requests)
        assert len(out) == 4
        np.testing.assert_array_equal(out[0], np.arange(10) * 6)
        np.testing.assert_array_equal(out[1], [2, 3, 4])
        np.testing.assert_array_equal(out[2], [32, 36])
        np.testing.assert_array_equal(out[3], np.arange(10))
        assert root.read_many([]) == []


# ------------------------------------------------------------ read only


def test_writes_in_read_mode_raise_read_only(store):
    url, kw, _ = store
    with skelstore.open(url, "w", **kw) as root:
        root.create_group("g")
        root.create_array("a", data=np.zeros(3))
        root.create_array("grow", shape=(0,), dtype=np.float64, growable=True)
        root.attrs["x"] = 1
    with skelstore.open(url, "r") as root:
        assert not root.writable
        attempts = [
            lambda: root.create_group("h"),
            lambda: root["g"].create_group("h"),
            lambda: root.create_array("b", data=np.zeros(1)),
            lambda: root.attrs.__setitem__("y", 2),
            lambda: root.attrs.update({"y": 2}),
            lambda: root.attrs.__delitem__("x"),
            lambda: root["g"].attrs.__setitem__("y", 2),
            lambda: root["a"].attrs.__setitem__("y", 2),
            lambda: root["a"].__setitem__(0, 5.0),
            lambda: root["grow"].append(np.zeros(1)),
            lambda: root.require_group("new"),
        ]
        for attempt in attempts:
            with pytest.raises(skelstore.ReadOnlyError) as info:
                attempt()
            assert isinstance(info.value, PermissionError)
            assert basename(url) in str(info.value)
        assert root.attrs["x"] == 1
        np.testing.assert_array_equal(root["a"].read(), np.zeros(3))


# ------------------------------------------------------------ open modes


def test_open_modes(store):
    url, kw, engine = store
    with pytest.raises(skelstore.NotFoundError) as info:
        skelstore.open(url, "r")
    assert basename(url) in str(info.value)
    with pytest.raises(skelstore.NotFoundError):
        skelstore.open(url, "r+", **kw)
    with skelstore.open(url, "a", **kw) as root:  # a creates
        assert root.engine_name == engine
        root.attrs["v"] = 1
    for mode in ("w-", "x"):
        with pytest.raises(skelstore.SkelstoreError):
            skelstore.open(url, mode, **kw)
    with skelstore.open(url, "a", **kw) as root:  # a keeps
        assert root.attrs["v"] == 1
        root.attrs["v"] = 2
    with skelstore.open(url, "r+", **kw) as root:
        assert root.attrs["v"] == 2
        root.create_group("g")
    with skelstore.open(url, "r") as root:
        assert root.keys() == ["g"] and root.attrs["v"] == 2
    with skelstore.open(url, "w", **kw) as root:  # w truncates
        assert root.keys() == [] and "v" not in root.attrs
    with skelstore.open(url) as root:
        assert root.keys() == [] and dict(root.attrs) == {}


def test_exclusive_create_on_fresh_target(store):
    url, kw, _ = store
    for mode in ("w-", "x"):
        fresh = str(Path(url).with_name(f"fresh{mode.replace('-', 'm')}_{Path(url).name}"))
        with skelstore.open(fresh, mode, **kw) as root:
            root.attrs["ok"] = True
        with skelstore.open(fresh) as root:
            assert root.attrs["ok"] is True


def test_invalid_mode_and_engine(tmp_path):
    with pytest.raises(skelstore.EngineError):
        skelstore.open(tmp_path / "x.h5", "rw")
    with pytest.raises(skelstore.EngineError) as info:
        skelstore.open(tmp_path / "x.h5", "w", engine="netcdf9")
    assert "hdf5" in str(info.value) and "zarr" in str(info.value)
    with pytest.raises(skelstore.EngineError):
        skelstore.get_engine("nope")
    with pytest.raises(skelstore.EngineError):
        skelstore.open(tmp_path / "y.h5", "w", zarr_format=3)
    with pytest.raises(skelstore.EngineError):
        skelstore.open(tmp_path / "y.zarr", "w", zarr_format=4)
    assert {"hdf5", "zarr"} <= set(list_engines())


def test_explicit_engine_and_aliases(tmp_path):
    with skelstore.open(tmp_path / "plain", "w", engine="h5") as root:
        assert root.engine_name == "hdf5"
    assert h5py.is_hdf5(tmp_path / "plain")
    with skelstore.open(tmp_path / "zdir", "w", engine="zarr2") as root:
        assert root.engine_name == "zarr"
        root.attrs["a"] = 1
    with skelstore.open(tmp_path / "zdir", engine="zarr") as root:
        assert root.attrs["a"] == 1


# ------------------------------------------------------------ engine guessing


@pytest.mark.parametrize(
    ("name", "engine"),
    [
        ("a.h5", "hdf5"),
        ("a.HDF5", "hdf5"),
        ("a.hdf", "hdf5"),
        ("a.zarr", "zarr"),
        ("a.zarr.zip", "zarr"),
        ("a.zarr/", "zarr"),
    ],
)
def test_guess_engine_by_suffix(tmp_path, name, engine):
    assert guess_engine(str(tmp_path / name), "w").name == engine


@pytest.mark.parametrize(
    ("url", "suffix"),
    [
        ("s3://bucket/dir/video.h5", ".h5"),
        ("x.zarr.zip", ".zarr.zip"),
        ("zip::file:///tmp/x.zarr.zip", ".zarr.zip"),
        ("/tmp/x.zarr/", ".zarr"),
        ("memory://abc/video.h5", ".h5"),
        ("memory://video.h5", ".h5"),
        ("memory://store.zarr", ".zarr"),
    ],
)
def test_split_suffix(url, suffix):
    assert split_suffix(url) == suffix


def test_guess_engine_by_sniffing(tmp_path):
    dat = tmp_path / "x.dat"
    with h5py.File(dat, "w") as f:
        f.attrs["k"] = 1
    with skelstore.open(dat) as root:
        assert root.engine_name == "hdf5"
        assert root.attrs["k"] == 1
    for fmt in (2, 3):
        store = tmp_path / f"x{fmt}.store"
        zarr.open_group(str(store), mode="w", zarr_format=fmt).attrs["k"] = fmt
        with skelstore.open(store) as root:
            assert root.engine_name == "zarr"
            assert root.attrs["k"] == fmt
        assert guess_engine(str(store), "r").name == "zarr"
    assert guess_engine(str(dat), "r+").name == "hdf5"


def test_unguessable_target_lists_engines(tmp_path):
    for target, mode in ((tmp_path / "x.bin", "w"), (tmp_path / "x", "w")):
        with pytest.raises(skelstore.EngineError) as info:
            skelstore.open(target, mode)
        assert "hdf5" in str(info.value) and "zarr" in str(info.value)
        assert "x" in str(info.value)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a dump at all" * 10)
    with pytest.raises(skelstore.EngineError) as info:
        skelstore.open(junk)
    assert "junk.bin" in str(info.value)
    assert "hdf5" in str(info.value) and "zarr" in str(info.value)
    with pytest.raises(skelstore.NotFoundError):
        skelstore.open(tmp_path / "missing.bin")


# ------------------------------------------------------------ already open objects


def test_open_wraps_h5py_file_without_closing_it(tmp_path):
    path = tmp_path / "open.h5"
    with h5py.File(path, "w") as f:
        f.create_group("timeline/shot1")
        f.create_group("timeline/shot0")
        root = skelstore.open(f)
        assert root.engine_name == "hdf5"
        assert root.raw is f
        assert root.writable
        assert root["timeline"].keys() == ["shot0", "shot1"]
        root.attrs["via"] = "skelstore"
        root.close()
        assert f.id.valid  # still ours
        assert skelstore.as_group(f["timeline"]).path == "/timeline"
        assert skelstore.as_group(root) is root
    with h5py.File(path, "r") as f:
        assert f.attrs["via"] == "skelstore"
        ro = skelstore.open(f)
        assert not ro.writable
        with pytest.raises(skelstore.ReadOnlyError):
            ro.attrs["x"] = 1


@pytest.mark.parametrize("fmt", [2, 3])
def test_open_wraps_zarr_group(tmp_path, fmt):
    z = zarr.open_group(str(tmp_path / "open.zarr"), mode="w", zarr_format=fmt)
    z.create_group("shot10")
    z.create_group("shot2")
    root = skelstore.open(z)
    assert root.engine_name == "zarr"
    assert root.keys() == ["shot2", "shot10"]
    root.attrs["via"] = np.int64(3)
    root.close()
    assert z.attrs["via"] == 3
    assert skelstore.as_group(z["shot2"]).name == "shot2"


def test_as_group_rejects_other_objects():
    with pytest.raises(skelstore.EngineError):
        skelstore.as_group({"timeline": {}})
    with pytest.raises(skelstore.EngineError):
        skelstore.open(12345)


# ------------------------------------------------------------ remote targets


@pytest.mark.parametrize("suffix", [".h5", ".zarr"])
def test_memory_target_in_a_directory(suffix):
    """fsspec URLs (here ``memory://dir/name``): the HDF5 engine uploads a temporary
    file on close; the Zarr engine writes through fsspec."""
    url = f"memory://{uuid.uuid4().hex}/dump{suffix}"
    with skelstore.open(url, "w") as root:
        root.create_group("g").create_array("a", data=np.arange(5, dtype=np.uint16))
        root.attrs["k"] = "v"
    with skelstore.open(url) as root:
        assert root.attrs["k"] == "v"
        np.testing.assert_array_equal(root["g/a"].read(), np.arange(5))
        with pytest.raises(skelstore.ReadOnlyError):
            root.attrs["k"] = "w"
    with pytest.raises(skelstore.NotFoundError):
        skelstore.open(url.replace("dump", "other"))


def test_memory_hdf5_is_uploaded_whole_on_close():
    """Readers never see a partial remote HDF5 file: nothing exists at the URL until
    the root is closed, then the whole file does; ``a`` downloads and re-uploads."""
    import fsspec

    fs = fsspec.filesystem("memory")
    url = f"memory://{uuid.uuid4().hex}/up.h5"
    root = skelstore.open(url, "w")
    root.create_array("a", data=np.arange(3))
    root.flush()
    assert not fs.exists(url)
    root.close()
    assert fs.exists(url)
    with fs.open(url, "rb") as f:
        assert f.read(8) == b"\x89HDF\r\n\x1a\n"
    root.close()  # twice is fine
    with skelstore.open(url, "a") as root:
        root.attrs["more"] = 1
    with skelstore.open(url) as root:
        assert root.attrs["more"] == 1
        np.testing.assert_array_equal(root["a"].read(), np.arange(3))
