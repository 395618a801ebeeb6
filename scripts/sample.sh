#!/usr/bin/env bash
# Write the bundled sample timeline to HDF5 and Zarr and print what reads back.
#
#   bash scripts/sample.sh [OUTDIR]      (OUTDIR: where to keep the files; without it they
#                                         go to a temporary directory removed at the end)
#
# Set-up included: needs only python3 (>= 3.11). Creates .venv in the repo if it is
# missing and installs skelstore into it (again whenever pyproject.toml changes).
set -euo pipefail

caller_dir=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup-venv.sh

setup_venv .venv/.skelstore-installed .   # (scripts/test.sh installs a superset)

venv_python=$PWD/.venv/bin/python
# Run from the caller's directory, so that a relative OUTDIR means what it says.
cd "$caller_dir"
exec "$venv_python" -m skelstore.sample "$@"
