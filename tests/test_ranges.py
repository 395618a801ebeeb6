"""Frame ranges (issue 14): one parser and one check for ``cat``, ``export`` and the
dense readers; ``cat`` reads only the shots that overlap its range."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import skelstore
from skelstore.cli import cli
from skelstore.dense import read_poses, to_xarray
from skelstore.dump import SHOT_CHANGE, add_fmt_metadata, add_metadata, write_shots
from skelstore.errors import FrameRangeError
from skelstore.export import export_movement
from skelstore.framerange import check_frames, dump_frames, parse_frames
from skelstore.io import ShotSegmentedReader, UnsegmentedWriter

GOLDEN = Path(__file__).parent / "data" / "golden"
UNSEG = GOLDEN / "unseg_body25.h5"  # frames 0:300
OFFSET = GOLDEN / "trackshots_offset_face.h5"  # first shot starts after frame 0


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def refused(*args: str) -> str:
    """A command refused with exit code 2, one line on stderr and nothing on stdout."""
    code, out, err = run(*args)
    assert (code, out) == (2, ""), (code, out, err)
    assert err.count("\n") == 1 and err.startswith("skelstore: error: "), err
    return err


# ---------------------------------------------------------------- the parser


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3:7", slice(3, 7)),
        ("3", slice(3, 4)),
        ("3:", slice(3, None)),
        (":7", slice(None, 7)),
        (":", slice(None, None)),
        (" 0 : 1 ", slice(0, 1)),
    ],
)
def test_parse_frames(text: str, expected: slice) -> None:
    assert parse_frames(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("10:5", "reversed"),
        ("5:5", "empty"),
        ("a:b", "expected A:B"),
        ("1:x", "expected A:B"),
        ("-1:3", "start at 0"),
        ("", "expected A:B"),
    ],
)
def test_parse_frames_refuses(text: str, match: str) -> None:
    with pytest.raises(FrameRangeError, match=match) as info:
        parse_frames(text)
    assert isinstance(info.value, ValueError) and isinstance(info.value, skelstore.SkelstoreError)


def test_check_frames_against_dumps() -> None:
    with skelstore.open(UNSEG) as root:
        assert dump_frames(root) == (0, 300)
        assert check_frames(root, None) == (0, 300)
        assert check_frames(root, slice(299, None)) == (299, 300)
        assert check_frames(root, slice(250, 420)) == (250, 420)  # overlaps: accepted
        for bad in (slice(300, 400), slice(10, 5), slice(5, 5), slice(None, 0), slice(-9, -1)):
            with pytest.raises(FrameRangeError, match=r"unseg_body25\.h5: frames"):
                check_frames(root, bad)
    with skelstore.open(OFFSET) as root:
        first_shot = ShotSegmentedReader(root).shots[0].start_frame
        assert first_shot > 0
        assert dump_frames(root)[0] == 0  # the gap before the first shot is the dump's
        assert check_frames(root, slice(0, 1)) == (0, 1)


def test_non_dump_is_a_format_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    with skelstore.open(plain) as root, pytest.raises(skelstore.FormatError, match=r"plain\.h5"):
        dump_frames(root)


# ---------------------------------------------------------------- cat


@pytest.mark.parametrize("frames", ["10:5", "5:5", "300:400", "1000", ":0", "x"])
def test_cat_refuses_bad_ranges_before_any_output(frames: str) -> None:
    err = refused("cat", str(UNSEG), "--frames", frames)
    assert "frames" in err


def test_cat_on_non_dump_prints_no_header(tmp_path: Path) -> None:
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    assert "not a skeleton dump" in refused("cat", str(plain))


def test_cat_range_running_past_the_end() -> None:
    code, out, _ = run("cat", str(UNSEG), "--frames", "299:")
    assert code == 0
    rows = out.strip().splitlines()[1:]
    assert rows and {r.split()[0] for r in rows} == {"299"}
    expected = int(np.count_nonzero(read_poses(UNSEG, frames=slice(299, 300)).keypoints[..., 2]))
    assert len(rows) == expected


# ---------------------------------------------------------------- export, dense


@pytest.mark.parametrize("frames", ["400:500", "10:5", "7:7"])
def test_export_refuses_bad_ranges_and_writes_nothing(tmp_path: Path, frames: str) -> None:
    dst = tmp_path / "o.nc"
    assert "frames" in refused(
        "export", str(UNSEG), str(dst), "--to", "movement", "--frames", frames
    )
    assert not dst.exists()
    a, _, b = frames.partition(":")
    with pytest.raises(FrameRangeError):
        export_movement(UNSEG, dst, frames=slice(int(a), int(b)))
    assert not dst.exists()
    with pytest.raises(FrameRangeError):
        to_xarray(UNSEG, frames=slice(int(a), int(b)))


def test_export_frames_and_shot_are_one_choice(tmp_path: Path) -> None:
    code, _, err = run(
        "export",
        str(OFFSET),
        str(tmp_path / "o.nc"),
        "--to",
        "movement",
        "--frames",
        "0:10",
        "--shot",
        "1",
    )
    assert code == 2 and "give one" in err


def test_export_frames_uses_the_same_parser(tmp_path: Path) -> None:
    dst = tmp_path / "o.nc"
    code, out, err = run("export", str(UNSEG), str(dst), "--to", "movement", "--frames", "298:")
    assert code == 0, err
    assert "time 2" in out


# ---------------------------------------------------------------- what cat reads


def _record_zarr_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every key read from local Zarr stores, in order."""
    from zarr.storage import LocalStore

    keys: list[str] = []
    get, get_partial = LocalStore.get, LocalStore.get_partial_values

    async def recording_get(self, key, *args, **kwargs):
        keys.append(key)
        return await get(self, key, *args, **kwargs)

    async def recording_partial(self, prototype, key_ranges):
        key_ranges = list(key_ranges)
        keys.extend(k for k, _ in key_ranges)
        return await get_partial(self, prototype, key_ranges)

    monkeypatch.setattr(LocalStore, "get", recording_get)
    monkeypatch.setattr(LocalStore, "get_partial_values", recording_partial)
    return keys


def _kps(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(1, 100, (25, 3)).astype(np.float32)


def test_cat_reads_only_the_shots_in_its_range(tmp_path: Path, monkeypatch) -> None:
    # issue 14: cat --frames 0:1 read every shot from frame 0 to the end of the dump
    rng = np.random.default_rng(0)
    frames: list = []
    for shot in range(30):  # 30 shots of 40 frames, two tracks each
        if shot:
            frames.append(SHOT_CHANGE)
        frames += [[(2 * shot, _kps(rng)), (2 * shot + 1, _kps(rng))] for _ in range(40)]
    dump = tmp_path / "shots.zarr"
    with skelstore.open(dump, "w", layout="skelshop") as root:
        add_fmt_metadata(root, "trackshots")
        add_metadata(root, "v.mp4", 1200, "BODY_25", 25)
        write_shots(root, 25, frames)
    keys = _record_zarr_reads(monkeypatch)
    for rng_text, shots in (
        ("0:1", {"shot0"}),
        ("615:616", {"shot15"}),
        ("1199", {"shot29"}),
        ("79:81", {"shot1", "shot2"}),
    ):
        keys.clear()
        code, out, _ = run("cat", str(dump), "--frames", rng_text)
        assert code == 0 and len(out.splitlines()) > 1
        read = {k.split("/")[1] for k in keys if k.startswith("timeline/") and "/c/" in k}
        assert read == shots, rng_text


def test_cat_reads_only_the_blocks_of_an_unsegmented_range(tmp_path: Path, monkeypatch) -> None:
    from skelstore.layout import WHOLE_TRACK_BYTES

    frames = 30000  # one track of 30000 * 25 keypoints: over WHOLE_TRACK_BYTES
    assert frames * 25 * (12 + 2) > WHOLE_TRACK_BYTES
    kps = _kps(np.random.default_rng(1))
    dump = tmp_path / "unseg.zarr"
    with skelstore.open(dump, "w", layout="skelshop") as root:
        add_fmt_metadata(root, "unseg")
        add_metadata(root, "v.mp4", frames, "BODY_25", 25)
        writer = UnsegmentedWriter(root, num_kps=25)
        writer.start_shot(0)
        for frame in range(frames):
            writer.add_pose(frame, 0, kps)
        writer.end_shot()
    chunks = {
        p.relative_to(dump).as_posix()
        for p in (dump / "timeline" / "pose0" / "data" / "c").rglob("*")
        if p.is_file()
    }
    assert len(chunks) > 4
    keys = _record_zarr_reads(monkeypatch)
    last = max(chunks, key=lambda k: int(k.split("/")[-2])).split("/data/")[1]
    for text, chunk in (("0:1", "c/0/0"), (f"{frames - 1}:", last)):
        keys.clear()
        code, out, _ = run("cat", str(dump), "--frames", text)
        assert code == 0 and len(out.splitlines()) == 26  # header + 25 keypoints
        read = {k for k in keys if k.startswith("timeline/pose0/data/c/")}
        assert read == {f"timeline/pose0/data/{chunk}"}, text


@pytest.mark.parametrize(
    ("to", "name", "extra"),
    [
        ("movement", "o.nc", {}),
        ("sleap", "o.slp", {}),
        ("nwb", "o.nwb", {"fps": 25.0}),
        ("pose", "o.pose", {"fps": 25.0}),
    ],
)
def test_every_export_target_refuses_ranges_outside_the_dump(
    tmp_path: Path, to: str, name: str, extra: dict
) -> None:
    from skelstore.export import TARGETS, export

    assert "frames" in TARGETS[to].options
    dst = tmp_path / name
    args = [f"--{k}={v}" for k, v in extra.items()]
    for frames in ("400:500", "10:5"):
        refused("export", str(UNSEG), str(dst), "--to", to, "--frames", frames, *args)
        a, _, b = frames.partition(":")
        with pytest.raises(FrameRangeError):
            export(UNSEG, str(dst), to=to, frames=slice(int(a), int(b)), **extra)
    assert list(tmp_path.iterdir()) == []
    # and the ones that overlap it work, through the same parser
    code, _, err = run("export", str(UNSEG), str(dst), "--to", to, "--frames", "290:", *args)
    assert code == 0, err


def test_interop_segments_check_ranges_themselves() -> None:
    from skelstore.interop.common import segments

    with skelstore.open(UNSEG) as root, pytest.raises(FrameRangeError):
        list(segments(root, frames=slice(400, 500)))
