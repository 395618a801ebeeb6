"""Face embeddings (skelstore.face): skelshop's API and layout on every engine.

Round trips through the writers and readers on every storage kind, dense and
sparse, with and without boxes and chips; files written directly with h5py in
skelshop's layout (``create_face_grp`` + ``grow_ds``) read back; conversion and
``skelstore info`` on face data.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import skelstore
import skelstore.face as face_mod
from skelstore.cli import cli
from skelstore.conversion import compare_dumps, convert
from skelstore.dump import add_basic_metadata, add_fmt_metadata, add_metadata, write_shots
from skelstore.face import (
    FaceReader,
    FaceReaderAdapter,
    FaceWriter,
    SparseFaceReader,
    SparseFaceReaderAdapter,
    describe_faces,
    get_dense_face_reader,
    get_sparse_face_reader,
    write_faces,
)
from skelstore.sample import sample_frames

EXTRAS = {
    "plain": (False, False, False),
    "bboxes": (True, True, False),
    "all": (True, True, True),
}


def make_frames(n_frames: int = 40, seed: int = 0, chips: bool = True) -> list[dict[str, Any]]:
    """Per frame: embeddings, boxes, chip boxes ((box, value) pairs), chips, persons.
    Frame f has f % 4 faces (so frames without faces occur), persons 0, 2, 3, ..."""
    rng = np.random.default_rng(seed)
    frames = []
    for f in range(n_frames):
        n = f % 4
        frames.append(
            {
                "embeddings": rng.standard_normal((n, 128)).astype(np.float32),
                "fod_bboxes": rng.uniform(0, 640, (n, 4)).astype(np.float32),
                "chip_bboxes": [
                    (list(rng.uniform(0, 640, 4)), float(rng.uniform(0.5, 2))) for _ in range(n)
                ],
                "chips": rng.integers(0, 256, (n, 150, 150, 3), dtype=np.uint8) if chips else None,
                "persons": [0, 2, 3][:n] if n < 3 else [0, 2, 3, 7][:n],
            }
        )
    return frames


def flat_chip_bboxes(frame: dict[str, Any]) -> np.ndarray:
    return np.array([[*box, v] for box, v in frame["chip_bboxes"]], dtype=np.float32).reshape(-1, 5)


def expected_rows(frame: dict[str, Any], extras: tuple[bool, bool, bool]) -> dict[str, np.ndarray]:
    fod, cbb, chip = extras
    out = {"embed": frame["embeddings"]}
    if fod:
        out["fod_bbox"] = frame["fod_bboxes"]
    if cbb:
        out["chip_bbox"] = flat_chip_bboxes(frame)
    if chip:
        out["chip"] = frame["chips"]
    return out


def write_with_skelstore(
    root: Any, frames: list[dict[str, Any]], sparse: bool, extras: tuple[bool, bool, bool]
) -> FaceWriter:
    fod, cbb, chip = extras
    writer = FaceWriter(
        root, sparse=sparse, write_fod_bbox=fod, write_chip_bbox=cbb, write_chip=chip
    )
    for f, fr in enumerate(frames):
        writer.write_frame_faces(
            fr["embeddings"],
            targets=[(f, p) for p in fr["persons"]] if sparse else None,
            fod_bboxes=fr["fod_bboxes"],
            chip_bboxes=fr["chip_bboxes"],
            face_chips=fr["chips"],
        )
    return writer


def write_with_h5py(
    path: Path, frames: list[dict[str, Any]], sparse: bool, extras: tuple[bool, bool, bool]
) -> None:
    """skelshop's create_face_grp and FaceWriter, spelt out in h5py (one resize per frame)."""
    fod, cbb, chip = extras
    with h5py.File(path, "w") as f:
        f.attrs["video"] = "video.mp4"
        f.attrs["num_frames"] = len(frames)
        g = f.create_group("/faces")
        if sparse:
            g.create_dataset("frame_pers", (0, 2), dtype=np.uint32, maxshape=(None, 2))
        else:
            g.create_dataset("indices", (0,), dtype=np.uint32, maxshape=(None,))
        g.create_dataset("embed", (0, 128), dtype=np.float32, maxshape=(None, 128))
        if fod:
            g.create_dataset("fod_bbox", (0, 4), dtype=np.float32, maxshape=(None, 4))
        if cbb:
            g.create_dataset("chip_bbox", (0, 5), dtype=np.float32, maxshape=(None, 5))
        if chip:
            g.create_dataset("chip", (0, 150, 150, 3), dtype=np.uint8, maxshape=(None, 150, 150, 3))

        def grow(name: str, values: Any) -> None:
            ds = g[name]
            n = len(values)
            ds.resize(len(ds) + n, axis=0)
            ds[-n:] = values

        total = 0
        for i, fr in enumerate(frames):
            n = len(fr["embeddings"])
            total += n
            if sparse:
                if n:
                    grow("frame_pers", [(i, p) for p in fr["persons"]])
            else:
                grow("indices", [total])
            if n:
                grow("embed", fr["embeddings"])
                if fod:
                    grow("fod_bbox", fr["fod_bboxes"])
                if cbb:
                    grow("chip_bbox", flat_chip_bboxes(fr))
                if chip:
                    grow("chip", fr["chips"])


def check_dense(
    reader: Any, frames: list[dict[str, Any]], extras: tuple[bool, bool, bool], start: int = 0
) -> None:
    got = list(reader.iter_from(start)) if start else list(reader)
    assert len(got) == len(frames) - start
    for fr, rows in zip(frames[start:], got, strict=True):
        exp = expected_rows(fr, extras)
        assert sorted(rows) == sorted(exp)
        for k, v in exp.items():
            assert rows[k].dtype == v.dtype
            np.testing.assert_array_equal(rows[k], v)


def check_sparse(
    reader: SparseFaceReader, frames: list[dict[str, Any]], extras: tuple[bool, bool, bool]
) -> None:
    expected = []
    for f, fr in enumerate(frames):
        exp = expected_rows(fr, extras)
        for i, p in enumerate(fr["persons"]):
            expected.append(((f, p), {k: v[i] for k, v in exp.items()}))
    got = list(reader)
    assert len(reader) == len(got) == len(expected)
    for (key, rows), (ekey, erows) in zip(got, expected, strict=True):
        assert key == ekey and all(isinstance(x, int) for x in key)
        assert sorted(rows) == sorted(erows)
        for k, v in erows.items():
            np.testing.assert_array_equal(rows[k], v)
    # random access by (frame, person), and by row
    (f, p), erows = expected[len(expected) // 2]
    hit = reader[f, p]
    np.testing.assert_array_equal(hit["embed"], erows["embed"][None])
    key, rows = reader.entry_at(len(expected) - 1)
    assert key == expected[-1][0]
    np.testing.assert_array_equal(rows["embed"], expected[-1][1]["embed"])
    np.testing.assert_array_equal(reader.embedding_at(0), expected[0][1]["embed"])


def check_adapter(
    adapter: SparseFaceReaderAdapter,
    frames: list[dict[str, Any]],
    extras: tuple[bool, bool, bool],
    start: int,
) -> None:
    it = adapter.iter_from(start)
    for f in range(start, len(frames) + 5):  # the iterator goes on past the last face
        result = next(it)
        fr = frames[f] if f < len(frames) else None
        if fr is None or not fr["persons"]:
            assert result == {}
            continue
        exp = expected_rows(fr, extras)
        assert sorted(result) == sorted(exp)
        for k, v in exp.items():
            lst = result[k]
            assert len(lst) == max(fr["persons"]) + 1
            for i, p in enumerate(fr["persons"]):
                np.testing.assert_array_equal(lst[p], v[i])
            assert [i for i, x in enumerate(lst) if x is None] == [
                i for i in range(len(lst)) if i not in fr["persons"]
            ]


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("extras", list(EXTRAS), ids=str)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_round_trip_every_engine(target: Any, sparse: bool, extras: str) -> None:
    flags = EXTRAS[extras]
    frames = make_frames(30, chips=flags[2])
    url, kwargs = target()
    with skelstore.open(url, "w", **kwargs) as root:
        add_basic_metadata(root, "video.mp4", len(frames))
        write_with_skelstore(root, frames, sparse, flags)
    with skelstore.open(url) as root:
        grp = root["faces"]
        names = {"embed", "frame_pers" if sparse else "indices"}
        names |= {n for n, on in zip(("fod_bbox", "chip_bbox", "chip"), flags, strict=True) if on}
        assert set(grp.keys()) == names
        # skelshop's dtypes and row shapes, growable, chunked by whole rows
        for name in names:
            arr = grp[name]
            trailing, dtype = face_mod.FACE_ARRAYS[name]
            assert arr.dtype == dtype and arr.shape[1:] == trailing and arr.growable
            assert arr.chunks is not None and arr.chunks[1:] == trailing
        if sparse:
            check_sparse(SparseFaceReader(root), frames, flags)
            check_adapter(get_dense_face_reader(root), frames, flags, start=0)
            assert isinstance(get_sparse_face_reader(root), SparseFaceReader)
        else:
            reader = get_dense_face_reader(root)
            assert isinstance(reader, FaceReader) and len(reader) == len(frames)
            check_dense(reader, frames, flags)
            check_dense(reader, frames, flags, start=17)
            assert isinstance(get_sparse_face_reader(root), FaceReaderAdapter)


@pytest.mark.parametrize("extras", list(EXTRAS), ids=str)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_reads_h5py_files_in_skelshop_layout(tmp_path: Path, sparse: bool, extras: str) -> None:
    flags = EXTRAS[extras]
    frames = make_frames(25, seed=3, chips=flags[2])
    path = tmp_path / "faces.h5"
    write_with_h5py(path, frames, sparse, flags)
    with skelstore.open(path) as root:
        if sparse:
            check_sparse(SparseFaceReader(root), frames, flags)
            for start in (0, 1, 6, 13, 24):
                check_adapter(SparseFaceReaderAdapter(SparseFaceReader(root)), frames, flags, start)
        else:
            check_dense(FaceReader(root), frames, flags)
            check_dense(FaceReader(root), frames, flags, start=9)
    with h5py.File(path) as f:  # an h5py object of the caller's works the same
        if sparse:
            check_sparse(SparseFaceReader(f), frames, flags)
        else:
            check_dense(get_dense_face_reader(f), frames, flags)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_skelstore_hdf5_matches_skelshop_file_bytes_for_values(
    tmp_path: Path, sparse: bool
) -> None:
    """What skelstore writes to HDF5 holds, array for array, what skelshop's writer wrote:
    same names, dtypes, shapes, growability and values (chunks differ by design)."""
    flags = EXTRAS["all"]
    frames = make_frames(20, seed=5)
    ref, ours = tmp_path / "ref.h5", tmp_path / "ours.h5"
    write_with_h5py(ref, frames, sparse, flags)
    with skelstore.open(ours, "w") as root:
        add_basic_metadata(root, "video.mp4", len(frames))
        write_with_skelstore(root, frames, sparse, flags)
    with h5py.File(ref) as a, h5py.File(ours) as b:
        assert sorted(a["faces"]) == sorted(b["faces"])
        for name in a["faces"]:
            da, db = a["faces"][name], b["faces"][name]
            assert (da.dtype, da.shape, da.maxshape) == (db.dtype, db.shape, db.maxshape)
            np.testing.assert_array_equal(da[()], db[()])
        assert dict(a.attrs) == dict(b.attrs)


def test_write_faces_and_iteration_from_frame(target: Any) -> None:
    frames = make_frames(12, seed=9)
    url, kwargs = target()
    with skelstore.open(url, "w", **kwargs) as root:
        writer = FaceWriter(root, write_fod_bbox=True, write_chip_bbox=True, write_chip=True)
        write_faces(frames, writer)
    with skelstore.open(url) as root:
        check_dense(FaceReader(root), frames, EXTRAS["all"])
        pairs = list(get_sparse_face_reader(root))
    # FaceReaderAdapter: the n-th face of each frame, in frame order
    assert [k for k, _ in pairs] == [
        (f, i) for f, fr in enumerate(frames) for i in range(len(fr["persons"]))
    ]
    np.testing.assert_array_equal(pairs[-1][1]["embed"], frames[-1]["embeddings"][-1])


# ---------------------------------------------------------------- writer behaviour


class _CountingArray:
    def __init__(self, arr: Any, calls: list[str]) -> None:
        self.arr, self.calls = arr, calls

    def append(self, values: np.ndarray) -> None:
        self.calls.append(self.arr.name)
        self.arr.append(values)


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_writer_appends_in_blocks(
    tmp_path: Path, sparse: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(face_mod, "WRITE_BLOCK_FRAMES", 400)
    rng = np.random.default_rng(1)
    calls: list[str] = []
    with skelstore.open(tmp_path / "f.zarr", "w") as root:
        writer = FaceWriter(root, sparse=sparse)
        writer._arrays = {k: _CountingArray(v, calls) for k, v in writer._arrays.items()}
        for f in range(1000):
            writer.write_frame_faces(
                rng.standard_normal((2, 128)), targets=[(f, 0), (f, 1)] if sparse else None
            )
        assert len(calls) == 2 * 2  # two blocks of 400 frames so far, two arrays each
    assert len(calls) == 3 * 2  # the rest on close
    index = "frame_pers" if sparse else "indices"
    assert calls[:2] == ["embed", index]  # row data first, then the index
    with skelstore.open(tmp_path / "f.zarr") as root:
        assert len(root["faces/embed"]) == 2000
        reader = get_dense_face_reader(root)
        got = next(iter(reader.iter_from(999)))
        assert len(got["embed"]) == 2


def test_writer_on_callers_h5py_file_writes_every_frame(tmp_path: Path) -> None:
    """skelstore cannot see the caller close an h5py.File: nothing may stay buffered."""
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        writer = FaceWriter(f, write_fod_bbox=True)
        writer.write_frame_faces(np.ones((3, 128)), fod_bboxes=np.zeros((3, 4)))
        writer.write_frame_faces(np.ones((0, 128)))
        assert f["faces/indices"][()].tolist() == [3, 3]
        assert f["faces/embed"].shape == (3, 128) and f["faces/fod_bbox"].shape == (3, 4)


def test_writer_errors() -> None:
    with skelstore.open("memory://w.zarr", "w") as root:
        sparse = FaceWriter(root, sparse=True)
        with pytest.raises(skelstore.InputError, match="targets must be passed"):
            sparse.write_frame_faces(np.zeros((1, 128)))
        with pytest.raises(ValueError, match="same length"):
            sparse.write_frame_faces(np.zeros((2, 128)), targets=[(0, 0)])
        sparse.write_frame_faces(np.zeros((1, 128)), targets=[(5, 1)])
        with pytest.raises(skelstore.InputError, match=r"\(5, 0\) after \(5, 1\)"):
            sparse.write_frame_faces(np.zeros((1, 128)), targets=[(5, 0)])
        with pytest.raises(skelstore.InputError, match="shape"):
            sparse.write_frame_faces(np.zeros((1, 64)), targets=[(6, 0)])
        with pytest.raises(skelstore.FormatError):
            FaceWriter(root)  # /faces exists already
    with skelstore.open("memory://x.zarr", "w") as root:
        dense = FaceWriter(root, write_chip=True)
        with pytest.raises(skelstore.InputError, match="face_chips missing"):
            dense.write_frame_faces(np.zeros((1, 128)))
        dense.write_frame_faces(np.zeros((0, 128)))  # no faces: no chips needed
        with pytest.raises(skelstore.InputError, match=r"\(1, 150, 150, 3\)"):
            dense.write_frame_faces(np.zeros((1, 128)), face_chips=np.zeros((1, 10, 10, 3)))
    with skelstore.open("memory://x.zarr") as root:
        assert root["faces/indices"][()].tolist() == [0]  # failed frames left no trace


# ---------------------------------------------------------------- readers


def test_sparse_lookup_and_adapter_binary_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = make_frames(60, seed=2, chips=False)
    path = tmp_path / "s.h5"
    write_with_h5py(path, frames, True, EXTRAS["plain"])
    with skelstore.open(path) as root:
        reader = SparseFaceReader(root)
        assert reader[1, 0]["embed"].shape == (1, 128)  # frame 1: person 0 only
        with pytest.raises(skelstore.NoSuchFaceError) as info:
            reader[4, 0]  # frame 4 has no face
        assert isinstance(info.value, IndexError)
        with pytest.raises(IndexError):
            reader[2, 1]
        with pytest.raises(ValueError):
            reader[(1, 2, 3)]  # type: ignore[index]
        # the adapter starts reading at the first face of the frame, found by bisection
        starts: list[int] = []
        orig = SparseFaceReader.iter_entries

        def spy(self: SparseFaceReader, start_idx: int = 0) -> Any:
            starts.append(start_idx)
            return orig(self, start_idx)

        monkeypatch.setattr(SparseFaceReader, "iter_entries", spy)
        for start in (0, 5, 33, 59, 61):
            check_adapter(SparseFaceReaderAdapter(reader), frames, EXTRAS["plain"], start)
        skipped = [sum(len(fr["persons"]) for fr in frames[:s]) for s in (0, 5, 33, 59, 61)]
        assert starts == skipped


def test_small_read_blocks_give_the_same_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(face_mod, "READ_BLOCK_BYTES", 3000)  # a few rows a block
    monkeypatch.setattr(face_mod, "READ_BLOCK_FRAMES", 7)
    frames = make_frames(50, seed=4, chips=False)
    for sparse in (False, True):
        path = tmp_path / f"{sparse}.zarr"
        with skelstore.open(path, "w") as root:
            write_with_skelstore(root, frames, sparse, EXTRAS["bboxes"])
        with skelstore.open(path) as root:
            if sparse:
                check_sparse(SparseFaceReader(root), frames, EXTRAS["bboxes"])
                check_adapter(get_dense_face_reader(root), frames, EXTRAS["bboxes"], 11)
            else:
                check_dense(FaceReader(root), frames, EXTRAS["bboxes"], start=11)


def test_damaged_face_files_raise_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f.create_group("timeline")
    with skelstore.open(path) as root, pytest.raises(skelstore.FormatError, match="no /faces"):
        FaceReader(root)
    with h5py.File(path, "w") as f:
        g = f.create_group("faces")
        g["indices"] = np.array([2, 5, 4], dtype=np.uint32)  # decreasing total
        g["embed"] = np.zeros((5, 128), dtype=np.float32)
    with skelstore.open(path) as root, pytest.raises(skelstore.FormatError, match="decrease"):
        list(FaceReader(root))
    with h5py.File(path, "w") as f:
        g = f.create_group("faces")
        g["indices"] = np.array([2, 9], dtype=np.uint32)  # more faces than rows
        g["embed"] = np.zeros((5, 128), dtype=np.float32)
    with skelstore.open(path) as root, pytest.raises(skelstore.FormatError, match="rows"):
        list(FaceReader(root))
    with h5py.File(path, "w") as f:
        g = f.create_group("faces")
        g["frame_pers"] = np.array([[3, 0], [1, 0]], dtype=np.uint32)  # not in frame order
        g["embed"] = np.zeros((2, 128), dtype=np.float32)
        g["fod_bbox"] = np.zeros((1, 4), dtype=np.float32)  # misaligned
    with skelstore.open(path) as root, pytest.raises(skelstore.FormatError, match="differ"):
        SparseFaceReader(root)


# ---------------------------------------------------------------- convert and info


def _dump_with_faces(url: str, sparse: bool, **kwargs: Any) -> list[dict[str, Any]]:
    frames = make_frames(30, seed=7)
    with skelstore.open(url, "w", **kwargs) as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "video.mp4", num_frames=300, mode="BODY_25", limbs=25)
        write_shots(root, 25, sample_frames(), compression="lossless")
        write_with_skelstore(root, frames, sparse, EXTRAS["all"])
    return frames


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_convert_carries_faces_exactly(tmp_path: Path, sparse: bool) -> None:
    frames = make_frames(30, seed=8)
    face_only = tmp_path / "faces.h5"
    write_with_h5py(face_only, frames, sparse, EXTRAS["all"])  # a skelshop face dump
    both = tmp_path / "both.zarr"
    _dump_with_faces(str(both), sparse, zarr_format=2)
    for src, mid, back in [(face_only, "f.zarr", "f.h5"), (both, "b.h5", "b.zarr")]:
        report = convert(src, tmp_path / mid, verify=True)
        assert report.verified
        convert(tmp_path / mid, tmp_path / back, verify=True)
        with (
            skelstore.open(src) as a,
            skelstore.open(tmp_path / mid) as b,
            skelstore.open(tmp_path / back) as c,
        ):
            assert compare_dumps(a, b) is None and compare_dumps(a, c) is None
            for name, arr in b["faces"].arrays():
                assert arr.chunks[1:] == arr.shape[1:]  # whole rows on the destination
                np.testing.assert_array_equal(arr.read(), a["faces"][name].read())
            if sparse:
                check_sparse(
                    SparseFaceReader(c),
                    frames if src == face_only else make_frames(30, seed=7),
                    EXTRAS["all"],
                )
            else:
                check_dense(
                    FaceReader(c),
                    frames if src == face_only else make_frames(30, seed=7),
                    EXTRAS["all"],
                )


def test_info_reports_faces(tmp_path: Path) -> None:
    frames = make_frames(30, seed=8, chips=False)
    face_only = tmp_path / "faces.h5"
    write_with_h5py(face_only, frames, True, EXTRAS["bboxes"])
    both = tmp_path / "both.zarr"
    _dump_with_faces(str(both), sparse=False)
    runner = CliRunner()
    res = runner.invoke(cli, ["info", "--json", str(face_only)])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    n_faces = sum(len(fr["persons"]) for fr in frames)
    assert info["fmt_type"] is None and info["pose_tracks"] == 0
    assert info["faces"] == {
        "layout": "sparse",
        "faces": n_faces,
        "frames": sum(1 for fr in frames if fr["persons"]),
        "embed_size": 128,
        "persons": len({p for fr in frames for p in fr["persons"]}),
        "arrays": ["fod_bbox", "chip_bbox"],
    }
    res = runner.invoke(cli, ["info", str(face_only)])
    assert res.exit_code == 0
    assert "face dump" in res.stdout
    assert re.search(rf"\nfaces +{n_faces} \(sparse, ", res.stdout)
    res = runner.invoke(cli, ["info", str(both)])
    assert res.exit_code == 0, res.output
    assert "trackshots" in res.stdout and re.search(r"\nfaces +\d+ \(dense", res.stdout)
    assert "dense, 30 frames" in res.stdout and "chip" in res.stdout
    with skelstore.open(both) as root:
        assert describe_faces(root).faces == sum(len(fr["persons"]) for fr in make_frames(30, 7))


# ---------------------------------------------------------------- validate


def test_validate_checks_face_data(tmp_path: Path) -> None:
    runner = CliRunner()
    good = []
    for sparse in (False, True):
        path = tmp_path / f"faces-{sparse}.h5"
        write_with_h5py(path, make_frames(20, seed=1, chips=False), sparse, EXTRAS["bboxes"])
        good.append(str(path))
    both = tmp_path / "both.zarr"
    _dump_with_faces(str(both), sparse=True)
    res = runner.invoke(cli, ["validate", "--deep", *good, str(both)])
    assert res.exit_code == 0, res.output
    n = sum(len(fr["persons"]) for fr in make_frames(20, seed=1, chips=False))
    assert f"faces-False.h5: ok (0 shots, 0 tracks, {n} faces)" in res.stdout
    assert "both.zarr: ok (3 shots" in res.stdout and "faces)" in res.stdout

    def damaged(name: str, build: Any) -> str:
        path = tmp_path / name
        with h5py.File(path, "w") as f:
            build(f.create_group("faces"))
        return str(path)

    def decreasing(g: Any) -> None:
        g["indices"] = np.array([2, 1, 3], np.uint32)
        g["embed"] = np.zeros((3, 128), np.float32)

    def short_total(g: Any) -> None:
        g["indices"] = np.array([1, 2], np.uint32)
        g["embed"] = np.zeros((3, 128), np.float32)

    def unordered(g: Any) -> None:
        g["frame_pers"] = np.array([[0, 1], [0, 0]], np.uint32)
        g["embed"] = np.zeros((2, 128), np.float32)

    def misaligned(g: Any) -> None:
        g["frame_pers"] = np.array([[0, 0]], np.uint32)
        g["embed"] = np.zeros((1, 128), np.float32)
        g["chip_bbox"] = np.zeros((2, 5), np.float32)

    def wrong_dtype(g: Any) -> None:
        g["indices"] = np.array([1], np.int64)
        g["embed"] = np.zeros((1, 128), np.float64)

    def both_indexes(g: Any) -> None:
        g["indices"] = np.array([1], np.uint32)
        g["frame_pers"] = np.array([[0, 0]], np.uint32)

    def nan(g: Any) -> None:
        g["indices"] = np.array([1], np.uint32)
        g["embed"] = np.full((1, 128), np.nan, np.float32)

    cases = {
        "decreasing": (decreasing, "running total decreases at frame 1"),
        "short_total": (short_total, "last total 2 != 3 rows"),
        "unordered": (unordered, "row 1 out of (frame, person) order"),
        "misaligned": (misaligned, "differ in length"),
        "wrong_dtype": (wrong_dtype, "/faces/embed: float64 (1, 128), expected float32"),
        "both_indexes": (both_indexes, "both of 'indices' (dense) and 'frame_pers'"),
        "nan": (nan, "non-finite values"),
    }
    for name, (build, message) in cases.items():
        path = damaged(f"{name}.h5", build)
        res = runner.invoke(cli, ["validate", "--deep", path])
        assert res.exit_code == 1, (name, res.output)
        assert message in res.stdout, (name, res.stdout)
    res = runner.invoke(cli, ["validate", damaged("nan2.h5", nan)])  # not --deep
    assert res.exit_code == 0
