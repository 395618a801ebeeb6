"""Long tracks are read block by block (not whole): same decodings as whole reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from dumputil import (
    assert_rows_equal,
    decode_trackshots,
    decode_unseg,
    golden_shot_ranges,
    load_expected,
)

import skelstore
import skelstore.layout
import skelstore.readers
from skelstore.conversion import convert

GOLDEN = Path(__file__).parent / "data" / "golden"


@pytest.mark.parametrize("name", [p.name for p in sorted(GOLDEN.glob("*.h5"))])
@pytest.mark.parametrize("engine", ["hdf5", "zarr"])
def test_block_reads_decode_like_whole_reads(
    name: str, engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(skelstore.layout, "WHOLE_TRACK_BYTES", 0)  # stream every track
    monkeypatch.setattr(skelstore.readers, "READ_BLOCK_FRAMES", 7)  # many blocks, odd size
    src = GOLDEN / name
    if engine == "zarr":
        convert(src, tmp_path / "x.zarr")
        src = tmp_path / "x.zarr"
    atol = 0.01 if ("lossy" in name and engine == "zarr") else 0.0
    with skelstore.open(src) as root:
        limbs = int(root.attrs["limbs"])
        if root.attrs["fmt_type"] == "unseg":
            rows, _, _ = decode_unseg(root, limbs)
        else:
            rows = decode_trackshots(root, golden_shot_ranges(name), limbs)
    assert_rows_equal(rows, load_expected(name), atol=atol)
