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

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
stamp=.venv/.skelstore-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    echo "sample.sh: installing skelstore into .venv (the first time takes a minute)" >&2
    .venv/bin/python -m pip install --quiet --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet --quiet -e .
    touch "$stamp"
fi

venv_python=$PWD/.venv/bin/python
# Run from the caller's directory, so that a relative OUTDIR means what it says.
cd "$caller_dir"
exec "$venv_python" -m skelstore.sample "$@"
