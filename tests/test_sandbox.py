"""Untrusted files: metadata walked in a watchdog child (skelstore.sandbox), and the
per-open ``allow_external`` keyword.

``data/hostile`` holds two mutated dumps found by fuzzing on which libhdf5 2.0 loops
forever while reading the root's attributes (a global heap collection whose
free-space entry has size 0); opened in-process they would hang the test run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import skelstore
from skelstore import sandbox
from skelstore.cli import cli
from skelstore.io import ShotSegmentedReader, UnsegmentedReader

HOSTILE = sorted((Path(__file__).parent / "data" / "hostile").glob("*.h5"))


@pytest.fixture
def short_timeout(monkeypatch):
    monkeypatch.setattr(sandbox, "DEFAULT_TIMEOUT", 4.0)


def test_hostile_files_exist():
    assert len(HOSTILE) == 2


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.name)
def test_hanging_file_is_refused_in_time(path, short_timeout):
    t0 = time.monotonic()
    with pytest.raises(skelstore.FormatError, match="did not finish within 4 s") as info:
        skelstore.open(path, untrusted=True)
    assert str(path) in str(info.value)
    assert time.monotonic() - t0 < 15


def test_setting_turns_it_on(short_timeout):
    skelstore.set_options(untrusted=True)  # what SKELSTORE_UNTRUSTED=1 starts with
    with pytest.raises(skelstore.FormatError, match="did not finish"):
        skelstore.open(HOSTILE[0])


def test_cli_untrusted_validate_reports_and_goes_on(short_timeout, golden_dir):
    good = golden_dir / "trackshots_lossless.h5"
    result = CliRunner().invoke(
        cli,
        ["--untrusted", "validate", "--workers", "0", str(HOSTILE[0]), str(good)],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output
    assert "did not finish" in result.output
    assert "trackshots_lossless.h5" in result.output


@pytest.mark.parametrize(
    "name", ["trackshots_lossless.h5", "trackshots_offset_face.h5", "unseg_body25.h5"]
)
def test_golden_files_open_untrusted_and_decode_the_same(golden_dir, name):
    path = golden_dir / name
    with skelstore.open(path) as a, skelstore.open(path, untrusted=True) as b:
        reader = UnsegmentedReader if a.attrs["fmt_type"] == "unseg" else ShotSegmentedReader
        if reader is ShotSegmentedReader:
            seq_a = [[dict(f.bundle) for f in s] for s in reader(a)]
            seq_b = [[dict(f.bundle) for f in s] for s in reader(b)]
            for sa, sb in zip(seq_a, seq_b, strict=True):
                for fa, fb in zip(sa, sb, strict=True):
                    assert fa.keys() == fb.keys()
                    for k in fa:
                        np.testing.assert_array_equal(fa[k], fb[k])
        else:
            assert sum(1 for _ in reader(a)) == sum(1 for _ in reader(b)) > 0


def test_zarr_store_opens_untrusted(tmp_path, golden_dir):
    dst = tmp_path / "c.zarr"
    skelstore.convert(golden_dir / "trackshots_lossless.h5", dst)
    with skelstore.open(dst, untrusted=True) as root:
        assert root.engine_name == "zarr" and root.attrs["mode"] == "BODY_25_ALL"


def test_child_errors_keep_their_type(tmp_path):
    with pytest.raises(skelstore.NotFoundError):
        skelstore.open(tmp_path / "missing.h5", untrusted=True)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(skelstore.SkelstoreError) as info:
        skelstore.open(bad, untrusted=True)
    assert "bad.h5" in str(info.value)


def test_out_of_memory_is_a_format_error(golden_dir):
    """An address-space limit far below what reading needs: refused, not a success."""
    with pytest.raises(skelstore.FormatError, match=r"needs more than 64 MiB|crashed"):
        sandbox.check_untrusted(str(golden_dir / "trackshots_lossless.h5"), memory_bytes=64 * 2**20)


def test_a_crashing_child_is_a_format_error(golden_dir, tmp_path, monkeypatch):
    """A child killed by a signal (as libhdf5 crashing would) is a FormatError."""
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nkill -SEGV $$\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake))
    with pytest.raises(skelstore.FormatError, match=r"crashed the reader.*signal 11"):
        sandbox.check_untrusted(str(golden_dir / "trackshots_lossless.h5"))


def test_child_protocol_reports_json(golden_dir):
    request = f'{{"url": "{golden_dir / "unseg_body25.h5"}"}}'
    out = subprocess.run(
        [sys.executable, "-m", "skelstore.sandbox"],
        input=request.encode(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert b'"ok": true' in out.stdout


# ------------------------------------------------------------- allow_external


def _with_external_link(tmp_path: Path) -> Path:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["secret"] = np.arange(4)
    main = tmp_path / "main.h5"
    with h5py.File(main, "w") as f:
        f["link"] = h5py.ExternalLink(str(other), "/secret")
        f.create_dataset("raw", shape=(4,), dtype="i8", external=[(str(other) + ".bin", 0, 32)])
    (tmp_path / "other.h5.bin").write_bytes(np.arange(4, dtype="i8").tobytes())
    return main


def test_external_data_refused_by_default_and_followed_when_allowed(tmp_path):
    main = _with_external_link(tmp_path)
    with skelstore.open(main) as root:
        with pytest.raises(skelstore.FormatError, match="allow_external=True"):
            root["link"]
        with pytest.raises(skelstore.FormatError, match="allow_external=True"):
            root["raw"].read()
    with skelstore.open(main, allow_external=True) as root:
        np.testing.assert_array_equal(root["link"].read(), np.arange(4))
        np.testing.assert_array_equal(root["raw"].read(), np.arange(4))
    # per file: the next open refuses again
    with skelstore.open(main) as root, pytest.raises(skelstore.FormatError):
        root["link"]
