"""The HDF5 engine's batch writes: Blosc chunks compressed on a thread pool and
written with ``write_direct_chunk`` give the file h5py's filter would have given."""

from __future__ import annotations

import multiprocessing
import sys

import h5py
import hdf5plugin
import numpy as np
import pytest
from numcodecs import blosc

import skelstore
from skelstore.backends.hdf5 import direct as hdf5_direct
from skelstore.compression import Encoding
from skelstore.storage import ArraySpec, GroupSpec

RNG = np.random.default_rng(7)
DATA = RNG.normal(size=(5000, 3)).astype(np.float32)  # 2070-row chunks: the last partial
INDICES = (np.arange(5000) % 138).astype(np.uint16)


def _filters(ds: h5py.Dataset) -> list[tuple]:
    dcpl = ds.id.get_create_plist()
    return [dcpl.get_filter(i)[:3] for i in range(dcpl.get_nfilters())]


def _write(path, nodes, how):
    with skelstore.open(path, "w") as root:
        if how == "batch":
            root.write_many(nodes)
            return
        for node in nodes:  # one by one: h5py's own filter compresses
            if isinstance(node, GroupSpec):
                root.create_group(node.path, node.attrs)
            else:
                root.create_array(
                    node.path,
                    data=node.data,
                    chunks=node.chunks,
                    encoding=node.encoding,
                    engine_options=node.engine_options,
                )


NODES = [
    GroupSpec("shot0", {"start_frame": 0, "end_frame": 5000}),
    GroupSpec("shot0/pose0", {"start_frame": 0, "end_frame": 5000}),
    ArraySpec("shot0/pose0/data", DATA, chunks=(2070, 3), encoding=Encoding(5)),
    ArraySpec("shot0/pose0/indices", INDICES, chunks=(2070,), encoding=Encoding(9)),
    ArraySpec("shot0/pose0/indptr", np.arange(5001, dtype=np.uint32), chunks=(1024,)),
    ArraySpec("shot0/pose0/lossy", DATA, chunks=(2070, 3), encoding=Encoding(5, 2)),
    ArraySpec("shot0/pose0/one", DATA[:7], chunks=(7, 3), encoding=Encoding(5)),
]


@pytest.mark.parametrize("threads", ["1", "2", "3"])
@pytest.mark.parametrize("pool_from_bytes", [0, 2**40])
def test_batch_writes_the_file_h5py_writes(tmp_path, monkeypatch, threads, pool_from_bytes):
    skelstore.set_options(threads=int(threads))
    monkeypatch.setattr(hdf5_direct, "PARALLEL_MIN_BYTES", pool_from_bytes)
    _write(tmp_path / "batch.h5", NODES, "batch")
    _write(tmp_path / "plain.h5", NODES, "plain")
    with h5py.File(tmp_path / "batch.h5", "r") as b, h5py.File(tmp_path / "plain.h5", "r") as p:
        for name in ("data", "indices", "indptr", "lossy", "one"):
            bd, pd = b[f"shot0/pose0/{name}"], p[f"shot0/pose0/{name}"]
            assert (bd.shape, bd.dtype, bd.chunks, bd.maxshape) == (
                pd.shape,
                pd.dtype,
                pd.chunks,
                pd.maxshape,
            ), name
            assert _filters(bd) == _filters(pd), name
            np.testing.assert_array_equal(bd[()], pd[()], err_msg=name)
            assert bd.id.get_num_chunks() == pd.id.get_num_chunks(), name
        np.testing.assert_array_equal(b["shot0/pose0/data"][()], DATA)
        np.testing.assert_array_equal(b["shot0/pose0/indices"][()], INDICES)
        np.testing.assert_array_equal(b["shot0/pose0/data"][4000:4100], DATA[4000:4100])
        assert dict(b["shot0/pose0"].attrs) == {"start_frame": 0, "end_frame": 5000}
        # the chunks really are Blosc buffers with the filter's settings
        mask, raw = b["shot0/pose0/indices"].id.read_direct_chunk((2070,))
        assert mask == 0 and blosc.cbuffer_complib(raw) == "Zstd"
        last = np.frombuffer(
            blosc.decompress(b["shot0/pose0/data"].id.read_direct_chunk((4140, 0))[1]), np.float32
        ).reshape(-1, 3)
        assert last.shape == (2070, 3)  # an edge chunk is stored whole, zero-padded
        np.testing.assert_array_equal(last[:860], DATA[4140:])
        assert not last[860:].any()


def test_batch_follows_the_filter_settings_given(tmp_path):
    """skelshop's raw h5py options (here LZ4 with byte shuffle) decide the chunks'
    compressor and shuffle, not skelstore's preset."""
    opts = {
        "compression": hdf5plugin.Blosc(cname="lz4", clevel=3, shuffle=hdf5plugin.Blosc.SHUFFLE)
    }
    with skelstore.open(tmp_path / "lz4.h5", "w") as root:
        root.write_many([ArraySpec("data", DATA, chunks=(1000, 3), engine_options=opts)])
    with h5py.File(tmp_path / "lz4.h5", "r") as f:
        ds = f["data"]
        assert hdf5_direct.blosc_settings(ds).cname == "lz4"
        _, raw = ds.id.read_direct_chunk((0, 0))
        assert blosc.cbuffer_complib(raw) == "LZ4"
        assert blosc._cbuffer_metainfo(raw)[:2] == (4, 1)  # typesize 4, byte shuffle
        np.testing.assert_array_equal(ds[()], DATA)


def test_settings_only_for_a_lone_blosc_filter(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        blosc_ds = f.create_dataset(
            "b",
            data=DATA,
            chunks=(100, 3),
            compression=hdf5plugin.Blosc(
                cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.BITSHUFFLE
            ),
        )
        lossy = f.create_dataset(
            "l", data=DATA, chunks=(100, 3), scaleoffset=2, compression=hdf5plugin.Blosc()
        )
        gz = f.create_dataset("g", data=DATA, chunks=(100, 3), compression="gzip")
        split = f.create_dataset("s", data=DATA, chunks=(100, 1), compression=hdf5plugin.Blosc())
        plain = f.create_dataset("p", data=DATA, chunks=(100, 3))
        s = hdf5_direct.blosc_settings(blosc_ds)
        assert (s.cname, s.clevel, s.shuffle) == ("zstd", 5, 2)
        for ds in (lossy, gz, split, plain):
            assert hdf5_direct.blosc_settings(ds) is None, ds.name


def test_failed_compression_is_a_typed_error(tmp_path, monkeypatch):
    def broken(self, chunk):
        raise RuntimeError("compressor exploded")

    monkeypatch.setattr(hdf5_direct.BloscSettings, "compress", broken)
    with skelstore.open(tmp_path / "x.h5", "w") as root:
        root.create_group("kept", {"a": 1})
        with pytest.raises(skelstore.EngineError, match="compressor exploded"):
            root.write_many(
                [GroupSpec("g"), ArraySpec("g/data", DATA, chunks=(100, 3), encoding=Encoding(5))]
            )
    with skelstore.open(tmp_path / "x.h5") as root:
        assert dict(root["kept"].attrs) == {"a": 1}


def _write_in_child(path: str, queue) -> None:
    with skelstore.open(path, "w") as root:
        root.write_many([ArraySpec("data", DATA, chunks=(100, 3), encoding=Encoding(5))])
    queue.put("done")


@pytest.mark.skipif(sys.platform != "linux", reason="fork start method")
def test_pool_works_in_a_forked_child(tmp_path, monkeypatch):
    """A child forked after the parent used the pool must not wait on the parent's
    (absent) threads."""
    skelstore.set_options(threads=2)
    monkeypatch.setattr(hdf5_direct, "PARALLEL_MIN_BYTES", 0)
    _write(tmp_path / "parent.h5", NODES, "batch")
    assert hdf5_direct._POOL is not None
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_write_in_child, args=(str(tmp_path / "child.h5"), queue))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung writing through the pool")
    assert child.exitcode == 0 and queue.get(timeout=5) == "done"
    with h5py.File(tmp_path / "child.h5", "r") as f:
        np.testing.assert_array_equal(f["data"][()], DATA)
