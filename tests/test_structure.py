"""The code's map holds: zarr's internals are touched in one compat module only, and
no library module grows past 800 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIBRARY = [*sorted((ROOT / "skelstore").rglob("*.py")), *sorted((ROOT / "backends").rglob("*.py"))]
ZARR_COMPAT = ROOT / "backends" / "zarr" / "compat.py"
#: What only the compat module may name: zarr.core, and private attributes of zarr objects.
ZARR_INTERNALS = re.compile(r"\bzarr\.core\b|\._async_group\b|\._getitem_consolidated\b|\._sync\b")


def test_only_the_compat_module_touches_zarr_internals():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in LIBRARY
        if path != ZARR_COMPAT
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ZARR_INTERNALS.search(line)
    ]
    assert offenders == []
    assert ZARR_INTERNALS.search(ZARR_COMPAT.read_text())  # the pattern finds what it should


#: The most lines a library module may have: past it, a module holds several concerns.
MAX_MODULE_LINES = 800


def test_no_library_module_is_over_800_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in LIBRARY}
    assert {p: n for p, n in sizes.items() if n > MAX_MODULE_LINES} == {}
    assert sizes["skelstore/io.py"] > 0  # the walk finds the library


def test_engine_options_are_declared_not_in_every_signature():
    """zarr_format is the Zarr engine's own option: declared by it, absent from the
    HDF5 engine's ``open``."""
    import inspect

    from skelstore.engines import get_engine

    hdf5, zarr = get_engine("hdf5"), get_engine("zarr")
    assert "zarr_format" not in inspect.signature(hdf5.open).parameters
    assert hdf5.open_options == frozenset()
    assert "zarr_format" in zarr.open_options
    assert set(zarr.open_options) <= set(inspect.signature(zarr.open).parameters)


def test_engines_use_the_public_extension_points():
    """Engines implement ``Group.child`` and close through ``run_close_hooks`` /
    ``drop_close_hooks`` / ``exit_ok``, never the base class's private state."""
    private = re.compile(r"\b(_child|_close_hooks|_close_ok|_run_close_hooks)\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "backends").rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert offenders == []


def test_the_registry_knows_nothing_of_dumps():
    """skelstore.engines does not reach up into the dump layer: the completeness
    check of interrupted dumps is registered with it (register_open_check)."""
    import skelstore
    from skelstore import engines, recovery

    tree = ast.parse((ROOT / "skelstore" / "engines.py").read_text())
    imported = {
        name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
        )
    }
    assert "skelstore.config" in imported  # the walk finds imports
    dump_layer = {"skelstore.recovery", "skelstore.io", "skelstore.dump", "skelstore.layout"}
    assert not imported & dump_layer
    assert recovery.check_complete in engines._OPEN_CHECKS
    assert skelstore.open is engines.open


def test_only_the_config_module_reads_skelstores_environment_variables():
    """skelstore's own environment variables are read in one place, the settings
    object (skelstore.config); everything else asks get_options()."""
    names = re.compile(r"""["'](SKELSTORE_[A-Z_]+|LEGACY_SKELS)["']""")
    readers = [str(p.relative_to(ROOT)) for p in LIBRARY if names.search(p.read_text())]
    assert readers == ["skelstore/config.py"]
