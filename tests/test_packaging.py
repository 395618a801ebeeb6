"""The wheel the README tells users to build holds the whole package (issue 14).

Built offline from a copy of the sources (``pip wheel --no-deps
--no-build-isolation``, with the setuptools of the test environment), not
installed: its file list and metadata are checked.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_holds_package_engines_types_and_extras(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("skelstore", "backends"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = out.glob("skelstore-*-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = zf.read(info).decode()
        entry_points = zf.read(info.replace("METADATA", "entry_points.txt")).decode()
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "skelstore").rglob("*.py")}
    assert shipped <= names  # every module, subpackages included
    engines = {
        f"skelstore/backends/{p.relative_to(ROOT / 'backends').as_posix()}"
        for p in (ROOT / "backends").rglob("*.py")
    }
    assert engines <= names  # every module of every engine package
    for name in ("skelstore/py.typed", "skelstore/backends/__init__.py",
                 "skelstore/backends/hdf5/__init__.py", "skelstore/backends/zarr/compat.py",
                 "skelstore/conversion.py", "skelstore/corpus/runner.py"):  # fmt: skip
        assert name in names, name
    assert not any(n.startswith(("backends/", "tests/", "benchmarks/")) for n in names)
    assert "hdf5 = skelstore.backends.hdf5:HDF5Engine" in entry_points
    assert "skelstore = skelstore.cli:main" in entry_points
    for extra in ("s3", "gcs", "http", "xarray", "export", "dask", "all"):
        assert f"Provides-Extra: {extra}" in metadata, extra
