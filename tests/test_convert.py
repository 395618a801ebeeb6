"""skelstore.convert (module skelstore.conversion): exact round trips, kept extras, staging,
refusals."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers Blosc for plain h5py
import numpy as np
import pytest

import skelstore
from skelstore.conversion import compare_dumps, convert
from skelstore.errors import EngineError, FormatError, SkelstoreError, VerificationError
from skelstore.storage import Array, Group

GOLDEN = Path(__file__).parent / "data" / "golden"
GOLDEN_FILES = sorted(GOLDEN.glob("*.h5"))


def _tree(group: Group) -> dict[str, object]:
    """Everything that must survive a conversion: attrs, dtypes, shapes, chunks, values."""
    out: dict[str, object] = {group.path: ("group", dict(group.attrs))}
    for _, node in group.items():
        if isinstance(node, Group):
            out.update(_tree(node))
        else:
            assert isinstance(node, Array)
            out[node.path] = (
                "array",
                dict(node.attrs),
                str(node.dtype),
                node.shape,
                node.chunks,
                node.encoding,
                node.read().tobytes(),
            )
    return out


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    if path.is_dir():
        for p in sorted(path.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(path)).encode())
                h.update(p.read_bytes())
    else:
        h.update(path.read_bytes())
    return h.hexdigest()


def _assert_same_trees(ta: dict, tb: dict, lossy: bool) -> None:
    """Equal trees; with ``lossy``, ``data`` values may differ by the preset's 0.01
    (HDF5's scale-offset keeps a per-chunk float minimum, Zarr's a fixed offset of 0,
    so each re-quantises the other's values) and everything else is bitwise."""
    assert ta.keys() == tb.keys()
    for k, va in ta.items():
        vb = tb[k]
        if lossy and k.endswith("/data"):
            assert va[:6] == vb[:6]
            x = np.frombuffer(va[6], "f4")
            y = np.frombuffer(vb[6], "f4")
            assert np.allclose(x, y, rtol=0, atol=0.01)
        else:
            assert va == vb, k


@pytest.mark.parametrize("golden", GOLDEN_FILES, ids=lambda p: p.stem)
def test_hdf5_zarr3_hdf5_round_trip_is_bitwise(golden: Path, tmp_path: Path) -> None:
    """Through a Zarr copy in skelshop's layout, which mirrors the HDF5 tree (the
    packed layout's round trips: tests/test_packed.py)."""
    z = tmp_path / "a.zarr"
    h = tmp_path / "b.h5"
    convert(golden, z, verify=True, layout="skelshop")
    convert(z, h, verify=True)
    with skelstore.open(golden) as a, skelstore.open(z) as mid, skelstore.open(h) as b:
        assert mid.format_info["zarr_format"] == 3
        ta, tb = _tree(a), _tree(b)
        _assert_same_trees(ta, tb, lossy="lossy" in golden.stem)
        # the zarr copy holds the same names, dtypes, attrs and values
        tm = _tree(mid)
        assert tm.keys() == ta.keys()
        for k, v in ta.items():
            assert tm[k][:2] == v[:2]
            if v[0] == "array":
                assert tm[k][2:4] == v[2:4]  # dtype, shape
                # Zarr chunks skelshop's chunks up to >= 1 MiB (or the whole array)
                (zc, *zt), (hc, *ht) = tm[k][4], v[4]
                assert zt == ht and (zc % hc == 0 or zc == v[3][0]), (k, tm[k][4], v[4])
                if not ("lossy" in golden.stem and k.endswith("/data")):
                    assert tm[k][6] == v[6]


@pytest.mark.parametrize("golden", GOLDEN_FILES, ids=lambda p: p.stem)
def test_hdf5_zarr2_zarr3_round_trip(golden: Path, tmp_path: Path) -> None:
    z2, z3 = tmp_path / "v2.zarr", tmp_path / "v3.zarr"
    convert(golden, z2, zarr_format=2, verify=True, layout="skelshop")
    convert(z2, z3, zarr_format=3, verify=True, layout="skelshop")
    with skelstore.open(z2) as a, skelstore.open(z3) as b, skelstore.open(golden) as g:
        assert a.format_info["zarr_format"] == 2 and b.format_info["zarr_format"] == 3
        assert compare_dumps(g, b) is None
        _assert_same_trees(_tree(a), _tree(b), lossy=False)  # zarr -> zarr is exact


def test_h5py_sees_skelshop_filters_after_round_trip(tmp_path: Path) -> None:
    src = GOLDEN / "trackshots_lossy.h5"
    convert(src, tmp_path / "x.zarr")
    convert(tmp_path / "x.zarr", tmp_path / "y.h5")
    with h5py.File(src) as a, h5py.File(tmp_path / "y.h5") as b:

        def walk(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                other = b[name]
                assert other.dtype == obj.dtype and other.chunks == obj.chunks
                assert other.maxshape == obj.maxshape
                assert other.scaleoffset == obj.scaleoffset
                assert other.compression_opts == obj.compression_opts
                assert np.allclose(other[()], obj[()], rtol=0, atol=0.01)

        a.visititems(walk)


def test_unknown_attributes_and_extra_groups_are_kept(tmp_path: Path) -> None:
    src = tmp_path / "src.h5"
    with h5py.File(GOLDEN / "unseg_body25.h5") as g, h5py.File(src, "w") as f:
        for k in g:
            g.copy(k, f)
        f.attrs.update(dict(g.attrs))
        f.attrs["my_note"] = "made by hand"
        f.attrs["scores"] = np.array([1.5, 2.5])
        f["timeline/pose0"].attrs["track_quality"] = 0.75
        faces = f.create_group("faces")
        faces.attrs["kind"] = "dense"
        faces.create_dataset("indices", data=np.arange(5, dtype=np.uint32))
        faces.create_dataset(
            "embed", data=np.random.default_rng(0).random((4, 128), "f4"), chunks=(2, 128)
        )
    for dst in (tmp_path / "a.zarr", tmp_path / "b.h5", tmp_path / "c.zarr.zip"):
        # a pose group's own attribute has no place in the packed layout: Zarr
        # copies keep skelshop's layout (asking for packed is refused)
        report = convert(src, dst, verify=True)
        assert report.layout == "skelshop"
        with skelstore.open(dst) as root:
            assert root.attrs["my_note"] == "made by hand"
            assert root.attrs["scores"] == [1.5, 2.5]
            assert root["timeline/pose0"].attrs["track_quality"] == 0.75
            assert root["faces"].attrs["kind"] == "dense"
            emb = root["faces/embed"]
            assert emb.dtype == np.float32 and emb.chunks == (2, 128)
            with h5py.File(src) as f:
                assert np.array_equal(emb.read(), f["faces/embed"][()])
                assert np.array_equal(root["faces/indices"].read(), f["faces/indices"][()])


def test_recompress_to_named_preset(tmp_path: Path) -> None:
    dst = tmp_path / "x.zarr"
    report = convert(GOLDEN / "trackshots_body25all.h5", dst, compression="lossy9", verify=True)
    assert report.compression == "lossy9"
    assert report.dst_bytes is not None and report.src_bytes is not None
    assert report.dst_bytes < report.src_bytes / 2
    with skelstore.open(dst) as root:
        from skelstore.summary import describe

        assert describe(root).compression == "lossy9"


def test_verify_reports_first_difference(tmp_path: Path) -> None:
    a = tmp_path / "a.h5"
    convert(GOLDEN / "trackshots_body25all.h5", a)
    with h5py.File(a, "r+") as f:
        f["timeline/shot1/pose2/data"][5, 0] += 1.0
    with skelstore.open(GOLDEN / "trackshots_body25all.h5") as g, skelstore.open(a) as b:
        msg = compare_dumps(g, b)
    assert msg is not None and "/timeline/shot1/pose2/data[5]" in msg and "frame 260" in msg


def test_verification_failure_leaves_destination_untouched(tmp_path: Path, monkeypatch) -> None:
    import skelstore.conversion as conv

    dst = tmp_path / "out.zarr"
    convert(GOLDEN / "unseg_body25.h5", dst)
    before = _digest(dst)
    monkeypatch.setattr(conv, "compare_dumps", lambda a, b: "forced difference")
    with pytest.raises(VerificationError, match="forced difference"):
        convert(GOLDEN / "unseg_body25.h5", dst, verify=True, overwrite=True)
    assert _digest(dst) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]  # no staging leftovers


def test_refuses_same_file_existing_dst_and_non_dump(tmp_path: Path) -> None:
    src = tmp_path / "a.h5"
    convert(GOLDEN / "unseg_body25.h5", src)
    dst = tmp_path / "b.zarr"
    convert(src, dst)
    digests = (_digest(src), _digest(dst))
    with pytest.raises(EngineError, match="same"):
        convert(src, src, overwrite=True)
    with pytest.raises(EngineError, match="same"):
        convert(src, tmp_path / "." / "a.h5", overwrite=True)
    with pytest.raises(EngineError, match="already exists"):
        convert(src, dst)
    not_dump = tmp_path / "plain.h5"
    with h5py.File(not_dump, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(FormatError, match=r"plain\.h5"):
        convert(not_dump, tmp_path / "never.zarr")
    assert not (tmp_path / "never.zarr").exists()
    assert (_digest(src), _digest(dst)) == digests
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.zarr", "plain.h5"]


@pytest.mark.parametrize("layout", ["skelshop", "packed"])
def test_interrupted_conversion_leaves_no_half_file(tmp_path: Path, monkeypatch, layout) -> None:
    import skelstore.conversion as conv
    import skelstore.packed_ops as ops

    calls = {"n": 0}
    cls, method = (
        (conv._Copier, "copy_array") if layout == "skelshop" else (ops.PackedStream, "add")
    )
    real = getattr(cls, method)

    def boom(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, boom)
    with pytest.raises(KeyboardInterrupt):
        convert(GOLDEN / "trackshots_body25all.h5", tmp_path / "x.zarr", layout=layout)
    assert calls["n"] == 10
    assert os.listdir(tmp_path) == []


def test_overwrite_replaces_atomically(tmp_path: Path) -> None:
    dst = tmp_path / "x.h5"
    convert(GOLDEN / "unseg_body25.h5", dst)
    convert(GOLDEN / "trackshots_offset_face.h5", dst, overwrite=True)
    with skelstore.open(dst) as root:
        assert root.attrs["mode"] == "FACE"
    assert os.listdir(tmp_path) == ["x.h5"]


def test_memory_url_destination(tmp_path: Path) -> None:
    report = convert(GOLDEN / "trackshots_offset_face.h5", "memory://conv/x.zarr", verify=True)
    assert report.dst_engine == "zarr"
    with (
        skelstore.open("memory://conv/x.zarr") as root,
        skelstore.open(GOLDEN / "trackshots_offset_face.h5") as g,
    ):
        assert compare_dumps(g, root) is None
    with pytest.raises(SkelstoreError):
        convert(GOLDEN / "trackshots_offset_face.h5", "memory://conv/x.zarr")


def test_skelstore_convert_is_the_function(tmp_path: Path) -> None:
    # issue 14: skelstore.convert was the module, so skelstore.convert(src, dst) failed
    import subprocess
    import sys

    assert skelstore.convert is convert and callable(skelstore.convert)
    assert skelstore.ConvertReport.__module__ == "skelstore.conversion"
    report = skelstore.convert(GOLDEN / "unseg_body25.h5", tmp_path / "o.zarr", verify=True)
    assert report.verified and report.dst_engine == "zarr"
    with skelstore.open(GOLDEN / "unseg_body25.h5") as a, skelstore.open(tmp_path / "o.zarr") as b:
        assert skelstore.compare_dumps(a, b) is None
    # and importing skelstore stays cheap: no engine library comes with it
    code = (
        "import sys, skelstore; f = skelstore.convert; "
        "print(callable(f), sorted(m for m in sys.modules if m.startswith(('h5py', 'zarr'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True []"
