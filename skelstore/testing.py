"""A conformance suite for storage engines, shipped with skelstore.

Every engine, built-in or third-party, must keep the contract of
:mod:`skelstore.storage` (paths, natural child order, normalised attributes,
child lookups (``Group.child``), arrays and growable arrays, batch reads and
writes, read-only roots, close hooks, h5py's open modes and the errors each case
raises). :class:`EngineTests` checks it the way
``zarr.testing.store.StoreTests`` checks zarr stores: subclass it in a test module,
say which engine and suffix to use, and pytest collects every test::

    from skelstore.testing import EngineTests

    class TestMyEngine(EngineTests):
        engine = "myengine"
        suffix = ".mine"

Override :meth:`EngineTests.new_target` for targets that are not local paths (a
bucket, a server). The module needs pytest, which skelstore itself does not: install
``skelstore[test]`` or pytest alongside.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import skelstore
from skelstore.compression import Encoding
from skelstore.storage import ArraySpec, GroupSpec

__all__ = ["EngineTests"]

_names = itertools.count()


def basename(url: str) -> str:
    """The last part of a path or URL (error messages must name it)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


class EngineTests:
    """The storage contract, one test per clause; subclass it to test an engine.

    Class attributes to set: :attr:`engine` (the registered name) and
    :attr:`suffix` (a suffix the engine claims, used for new targets);
    :attr:`open_kwargs` are passed to every :func:`skelstore.open` that creates a
    target (e.g. ``{"zarr_format": 2}``).
    """

    #: The registered engine name.
    engine: ClassVar[str]
    #: A suffix of the engine's targets, e.g. ``".h5"``.
    suffix: ClassVar[str]
    #: Keywords for :func:`skelstore.open` when creating a target.
    open_kwargs: ClassVar[dict[str, Any]] = {}

    def new_target(self, tmp_path: Path, name: str = "x") -> str:
        """A target that does not exist yet; every call gives a new one."""
        return str(tmp_path / f"{name}{next(_names)}{self.suffix}")

    def create_kwargs(self) -> dict[str, Any]:
        """Keywords for :func:`skelstore.open` when creating a target."""
        return {"engine": self.engine, **self.open_kwargs}

    @pytest.fixture
    def store(self, tmp_path: Path) -> tuple[str, dict[str, Any], str]:
        """``(url, open_kwargs, engine_name)`` of a fresh target."""
        return self.new_target(tmp_path), self.create_kwargs(), self.engine

    # ------------------------------------------------------------ attributes

    def test_attrs_are_normalised(self, store):
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

    def test_attr_delete_and_missing(self, store):
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

    def test_natural_child_order(self, store):
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

    def test_child_is_the_named_child_or_none(self, store):
        url, kw, _ = store
        with skelstore.open(url, "w", **kw) as root:
            root.create_group("g").create_array("a", data=np.arange(3))
        with skelstore.open(url) as root:
            g = root.child("g")
            assert isinstance(g, skelstore.Group) and g.path == "/g"
            a = g.child("a")
            assert isinstance(a, skelstore.Array) and a.path == "/g/a"
            assert root.child("nope") is None and g.child("b") is None

    def test_groups_create_require_and_paths(self, store):
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

    def test_missing_path_raises_not_found_naming_the_file(self, store):
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

    def test_create_array_from_data(self, store):
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

    def test_growable_append(self, store):
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
            np.testing.assert_array_equal(
                g.read(), np.vstack([np.ones((3, 3)), np.full((6, 3), 2)])
            )
            np.testing.assert_array_equal(root["i"].read(), np.arange(5))
            assert root["i"].read().dtype == np.uint32

    @pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr")
    def test_write_many_creates_a_batch(self, store):
        """One batch: nested groups with attrs, arrays of every pose dtype (empty, tiny,
        compressed, larger than one Zarr shard), exactly as create_group/create_array."""
        url, kw, _ = store
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

    def test_read_many_keeps_request_order(self, store):
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

    def test_read_at_reads_as_read_many(self, store):
        url, kw, _ = store
        with skelstore.open(url, "w", **kw) as root:
            root.create_array("g/a", data=np.arange(6, dtype=np.uint16).reshape(3, 2))
            root.create_array("g/h/b", data=np.linspace(0, 1, 5, dtype=np.float32))
            root.create_array("c", data=np.array(3.5))
        with skelstore.open(url) as root:
            paths = ["g/h/b", "c", "g/a", "g/h/b"]
            got = root.read_at(paths)
            want = root.read_many(root.arrays_at(paths))
            assert [(a.dtype, a.shape) for a in got] == [(b.dtype, b.shape) for b in want]
            for a, b in zip(got, want, strict=True):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(root["g"].read_at(["h/b"])[0], want[0])
            assert root.read_at([]) == []
            with pytest.raises(skelstore.NotFoundError, match=basename(url)):
                root.read_at(["g/a", "g/missing"])
            with pytest.raises(skelstore.FormatError, match="expected an array"):
                root.read_at(["g/h"])

    def test_read_nodes_say_what_list_tree_says(self, store):
        url, kw, _ = store
        with skelstore.open(url, "w", **kw) as root:
            a = root.create_array("g/a", data=np.arange(6, dtype=np.uint16).reshape(3, 2))
            a.attrs.update({"unit": "px", "scale": 2})
            root.create_array("g/b", data=np.linspace(0, 1, 5, dtype=np.float32))
        with skelstore.open(url) as root:
            tree = root.list_tree(2)
            got = root.read_nodes(["g/b", "g/a"])
            assert [info for info, _ in got] == [tree["/g/b"], tree["/g/a"]]
            np.testing.assert_array_equal(got[1][1], np.arange(6).reshape(3, 2))
            assert got[1][0].attrs == {"unit": "px", "scale": 2}
            with pytest.raises(skelstore.NotFoundError, match=basename(url)):
                root.read_nodes(["g/missing"])

    def test_set_many_and_start_set_many_write_slices(self, store):
        url, kw, _ = store
        with skelstore.open(url, "w", **kw) as root:
            a = root.create_array("a", shape=(10,), dtype=np.int32)
            b = root.create_array("b", shape=(6, 3), dtype=np.float32)
            root.set_many([(a, 0, np.arange(4, dtype=np.int32)), (b, 2, np.ones((2, 3)))])
            values = np.full(6, 9, np.int32)
            finish = root.start_set_many([(a, 4, values), (b, 4, np.full((2, 3), 2.0))])
            finish()  # after this the caller may change the values again
            values[:] = -1
            finish = root.start_set_many([])
            finish()
        with skelstore.open(url) as root:
            np.testing.assert_array_equal(root["a"].read(), [0, 1, 2, 3, 9, 9, 9, 9, 9, 9])
            np.testing.assert_array_equal(
                root["b"].read(), np.repeat([[0], [0], [1], [1], [2], [2]], 3, axis=1)
            )

    def test_list_tree_agrees_with_the_interface(self, store):
        url, kw, _ = store
        with skelstore.open(url, "w", **kw) as root:
            shot = root.create_group("t/shot10", {"start_frame": 3, "end_frame": 9})
            root.create_group("t/shot2", {"start_frame": 0, "end_frame": 3, "name": "x"})
            pose = shot.create_group("pose1", {"start_frame": 4, "end_frame": 6})
            pose.create_array("data", data=np.ones((5, 3), np.float32))
            arr = pose.create_array("indptr", data=np.arange(3, dtype=np.uint32))
            arr.attrs["unit"] = "rows"
            root["t"].attrs.update({"list": [1, 2], "none": None, "f": 1.5})
        with skelstore.open(url) as root:
            timeline = root["t"]
            tree = timeline.list_tree(3)
            # the default walk, through the interface, says the same
            assert tree == skelstore.Group.list_tree(timeline, 3)
            assert list(tree) == [
                "/t", "/t/shot2", "/t/shot10", "/t/shot10/pose1",
                "/t/shot10/pose1/data", "/t/shot10/pose1/indptr",
            ]  # fmt: skip
            assert tree["/t"].attrs == {"list": [1, 2], "none": None, "f": 1.5}
            assert tree["/t"].members == ("shot2", "shot10")
            assert tree["/t/shot2"].attrs == {"start_frame": 0, "end_frame": 3, "name": "x"}
            data = tree["/t/shot10/pose1/data"]
            assert (data.shape, data.dtype, data.members) == ((5, 3), np.float32, None)
            assert tree["/t/shot10/pose1/indptr"].attrs == {"unit": "rows"}
            assert set(timeline.list_tree(1)) == {"/t", "/t/shot2", "/t/shot10"}
            got = timeline.arrays_at(["shot10/pose1/indptr", "shot10/pose1/data"])
            assert [a.path for a in got] == ["/t/shot10/pose1/indptr", "/t/shot10/pose1/data"]
            np.testing.assert_array_equal(got[0][...], [0, 1, 2])
            with pytest.raises(skelstore.NotFoundError, match=basename(url)):
                timeline.arrays_at(["shot10/pose1/indices"])
            with pytest.raises(skelstore.FormatError, match="expected an array"):
                timeline.arrays_at(["shot10/pose1"])

    # ------------------------------------------------------------ read only

    def test_writes_in_read_mode_raise_read_only(self, store):
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

    # ------------------------------------------------------------ closing

    def test_close_runs_hooks_once_with_how_the_block_ended(self, store):
        url, kw, _ = store
        calls: list[bool] = []
        with skelstore.open(url, "w", **kw) as root:
            assert root.add_close_hook(calls.append)
            assert not root.create_group("g").add_close_hook(calls.append)  # roots only
        root.close()
        assert calls == [True]
        with pytest.raises(RuntimeError), skelstore.open(url, "r+", **kw) as root:
            root.add_close_hook(calls.append)
            raise RuntimeError("the block failed")
        assert calls == [True, False]
        root = skelstore.open(url, "r+", **kw)
        root.add_close_hook(calls.append)
        root.abort()  # releases the target without running hooks
        assert calls == [True, False]

    # ------------------------------------------------------------ open modes

    def test_open_modes(self, store):
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

    def test_exclusive_create_on_fresh_target(self, tmp_path):
        for mode in ("w-", "x"):
            fresh = self.new_target(tmp_path, f"fresh{mode.replace('-', 'm')}")
            with skelstore.open(fresh, mode, **self.create_kwargs()) as root:
                root.attrs["ok"] = True
            with skelstore.open(fresh) as root:
                assert root.attrs["ok"] is True
