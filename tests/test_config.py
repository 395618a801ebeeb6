"""skelstore's settings object: environment variables read in one place, set_options,
settings carried to corpus tasks in other processes, the CLI not leaking its flags."""

from __future__ import annotations

import multiprocessing
import operator
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import fsspec
import pytest
from click.testing import CliRunner

import skelstore
from skelstore.cli import cli
from skelstore.config import Settings
from skelstore.corpus.runner import _under_settings


def test_environment_variables_map_to_settings():
    env = {
        "SKELSTORE_UNTRUSTED": "1",
        "SKELSTORE_HDF5_ALLOW_EXTERNAL": "1",
        "SKELSTORE_THREADS": "3",
        "LEGACY_SKELS": "",
    }
    assert Settings.from_environ(env) == Settings(
        untrusted=True, allow_external=True, threads=3, legacy_skels=True
    )
    assert Settings.from_environ({}) == Settings()
    assert Settings.from_environ({"SKELSTORE_UNTRUSTED": "0", "SKELSTORE_THREADS": "x"}) == (
        Settings()
    )
    assert Settings.from_environ({"SKELSTORE_THREADS": "0"}).threads == 1


def test_a_new_process_starts_from_its_environment():
    env = dict(os.environ, SKELSTORE_THREADS="2", SKELSTORE_UNTRUSTED="1")
    env.pop("LEGACY_SKELS", None)
    out = subprocess.run(
        [sys.executable, "-c", "import skelstore; print(skelstore.get_options())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "untrusted=True" in out and "threads=2" in out and "legacy_skels=False" in out


def test_set_options_for_a_block_or_the_process():
    before = skelstore.get_options()
    with skelstore.set_options(threads=1, untrusted=True) as inside:
        assert inside.threads == 1 and inside.untrusted
        assert skelstore.get_options() == inside
    assert skelstore.get_options() == before
    skelstore.set_options(legacy_skels=True)
    assert skelstore.get_options().legacy_skels  # until changed (conftest restores it)


@pytest.mark.parametrize(
    "changes",
    [{"nope": 1}, {"threads": 0}, {"threads": "2"}, {"threads": True}, {"untrusted": "yes"}],
)
def test_bad_options_are_refused(changes):
    before = skelstore.get_options()
    with pytest.raises(skelstore.InputError):
        skelstore.set_options(**changes)
    assert skelstore.get_options() == before


def test_legacy_skels_setting_is_recorded(tmp_path):
    from skelstore.dump import add_fmt_metadata

    for legacy in (False, True):
        target = tmp_path / f"{legacy}.h5"
        with skelstore.set_options(legacy_skels=legacy), skelstore.open(target, "w") as root:
            add_fmt_metadata(root, "trackshots")
        with skelstore.open(tmp_path / f"{legacy}.h5") as root:
            assert root.attrs["legacy_skels"] is legacy


def test_corpus_tasks_carry_the_callers_settings_to_other_processes():
    """What the runner hands to a Dask worker: the task under the caller's settings,
    pickled and run in a fresh process whose environment asks for none of them."""
    wanted = Settings(untrusted=True, threads=2)
    task = partial(_under_settings, wanted, operator.call)  # task(job) -> job()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        got = pool.submit(task, skelstore.get_options).result(timeout=120)
    assert got == wanted


def test_cli_flag_does_not_outlive_its_command(golden_dir):
    result = CliRunner().invoke(
        cli, ["--untrusted", "info", str(golden_dir / "trackshots_lossless.h5")]
    )
    assert result.exit_code == 0, result.output
    assert not skelstore.get_options().untrusted


def test_remote_limits_are_settings(monkeypatch):
    """SKELSTORE_REMOTE_TIMEOUT/_ATTEMPTS are read by the settings object, and the
    retry policy of remote files and stores follows the settings in force."""
    from skelstore import rangefile

    env = {"SKELSTORE_REMOTE_TIMEOUT": "7.5", "SKELSTORE_REMOTE_ATTEMPTS": "5"}
    got = Settings.from_environ(env)
    assert (got.remote_timeout, got.remote_attempts) == (7.5, 5)
    assert Settings.from_environ({"SKELSTORE_REMOTE_TIMEOUT": "0"}).remote_timeout is None
    assert Settings.from_environ({}).remote_timeout == 30.0
    with pytest.raises(skelstore.InputError, match="SKELSTORE_REMOTE_ATTEMPTS='x'"):
        Settings.from_environ({"SKELSTORE_REMOTE_ATTEMPTS": "x"})
    before = rangefile.default_retry()
    with skelstore.set_options(remote_timeout=2.5, remote_attempts=4):
        policy = rangefile.default_retry()
        assert (policy.timeout, policy.attempts) == (2.5, 4)
        fs = fsspec.filesystem("memory")
        fs.pipe_file("/settings-test/x.bin", b"abc")
        remote = rangefile.RangeCacheFile(fs, "/settings-test/x.bin", size=3)
        assert remote.retry == policy  # read when a remote file is opened
        fs.rm("/settings-test", recursive=True)
    with skelstore.set_options(remote_timeout=None):
        assert rangefile.default_retry().timeout is None
    assert rangefile.default_retry() == before
    for bad in ({"remote_timeout": 0}, {"remote_timeout": "1"}, {"remote_attempts": 0}):
        with pytest.raises(skelstore.InputError):
            skelstore.set_options(**bad)


def test_zarr_thread_pool_sized_from_threads_unless_zarr_says(monkeypatch):
    """The Zarr engine sizes zarr's codec thread pool from the ``threads`` setting,
    only where zarr's own configuration leaves it unset."""
    import zarr

    from skelstore.backends.zarr.engine import size_zarr_thread_pool
    from skelstore.config import codec_threads

    with zarr.config.set({"threading.max_workers": None}), skelstore.set_options(threads=3):
        assert codec_threads() == 3
        size_zarr_thread_pool()
        assert zarr.config.get("threading.max_workers") == 3
    with zarr.config.set({"threading.max_workers": 7}):
        size_zarr_thread_pool()
        assert zarr.config.get("threading.max_workers") == 7
    with skelstore.set_options(threads=None):
        assert 1 <= codec_threads() <= 4
