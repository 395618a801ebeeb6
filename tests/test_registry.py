"""The engine registry: entry points, packaging, missing extras."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

import skelstore
from skelstore.engines import get_engine, list_engines


def test_engines_are_entry_points_inside_the_package() -> None:
    eps = {ep.name: ep.value for ep in entry_points(group="skelstore.backends")}
    assert eps["hdf5"] == "skelstore.backends.hdf5:HDF5Engine"
    assert eps["zarr"] == "skelstore.backends.zarr:ZarrEngine"
    assert {"hdf5", "zarr"} <= set(list_engines())
    for name in ("hdf5", "zarr"):
        engine = get_engine(name)
        assert type(engine).__module__.startswith(f"skelstore.backends.{name}.")  # a package
        assert engine is get_engine(name.upper())  # one instance, case-insensitive
    with pytest.raises(ModuleNotFoundError):
        __import__("backends")  # never shipped as a top-level package


def test_core_does_not_import_engines() -> None:
    import subprocess
    import sys

    code = (
        "import sys, skelstore, skelstore.io, skelstore.layout, skelstore.conversion, "
        "skelstore.dense, skelstore.cli, skelstore.face, skelstore.summary, "
        "skelstore.openpose, skelstore.export; "
        "print(sorted(m for m in sys.modules "
        "if m.startswith(('h5py', 'zarr', 'skelstore.backends'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_missing_filesystem_package_names_what_to_install() -> None:
    # adlfs (Azure) is not installed here: fsspec knows the protocol but cannot load it
    with pytest.raises(skelstore.MissingDependencyError, match="abfs"):
        skelstore.open("abfs://container/video.zarr")


def test_unknown_protocol_is_an_engine_error() -> None:
    with pytest.raises(skelstore.EngineError, match="nosuchproto"):
        skelstore.open("nosuchproto://x/video.h5")


def test_a_broken_engine_module_is_not_reported_as_a_missing_library(monkeypatch) -> None:
    """An ImportError inside skelstore's own modules is a bug and is raised as such;
    only a missing third-party library is a MissingDependencyError."""
    from skelstore import engines

    table = {
        "broken": {"class": "skelstore.no_such_module:Engine"},
        "absent": {"class": "no_such_lib_xyz:Engine"},
        "hinted": {"class": "no_such_lib_xyz:Engine", "err": "pip install xyz-engine"},
        "named": {"class": "no_such_lib_xyz:Engine", "err": "pip install a 'no-such-lib-xyz>=2'"},
    }
    monkeypatch.setattr(engines, "_engine_table", lambda: table)
    engines._load_engine.cache_clear()
    try:
        with pytest.raises(ModuleNotFoundError) as info:
            engines._load_engine("broken")
        assert not isinstance(info.value, skelstore.MissingDependencyError)
        with pytest.raises(skelstore.MissingDependencyError, match="no_such_lib_xyz"):
            engines._load_engine("absent")
        with pytest.raises(skelstore.MissingDependencyError, match=r"pip install xyz-engine$"):
            engines._load_engine("hinted")  # the hint of the registry's table
        with pytest.raises(skelstore.MissingDependencyError) as info:
            engines._load_engine("named")  # the hint's requirement for the missing module
        assert str(info.value).endswith(": pip install 'no-such-lib-xyz>=2'")
    finally:
        engines._load_engine.cache_clear()


def test_engine_options_go_only_to_engines_that_declare_them(tmp_path) -> None:
    with skelstore.open(tmp_path / "a.zarr", "w", open_options={"zarr_format": 2}) as root:
        assert root.format_info == {"zarr_format": 2}
    with skelstore.open(tmp_path / "b.h5", "w", zarr_format=None) as root:  # None: not given
        assert root.engine_name == "hdf5"
    for options in ({"zarr_format": 3}, {"nosuch": 1}):
        (name,) = options
        with pytest.raises(skelstore.EngineError) as info:
            skelstore.open(tmp_path / "c.h5", "w", open_options=options)
        assert str(info.value) == f"{tmp_path / 'c.h5'}: {name}= does not apply to the hdf5 engine"
    assert not (tmp_path / "c.h5").exists()
    with pytest.raises(skelstore.EngineError, match="nosuch= does not apply to the zarr engine"):
        skelstore.open(tmp_path / "c.zarr", "w", open_options={"nosuch": 1})
    assert not (tmp_path / "c.zarr").exists()
