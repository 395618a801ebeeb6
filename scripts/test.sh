#!/usr/bin/env bash
# Run every check: ruff (lint and format), the documentation build (mkdocs --strict) and the tests (pytest).
#
#   bash scripts/test.sh [PYTEST ARGS...]
#
# Set-up included: needs only python3 (>= 3.11). Creates .venv in the repo if it is
# missing and installs skelstore with its test extras into it (again whenever
# pyproject.toml changes; about a minute and 0.6 GB). Exits non-zero on any failure,
# including when pytest collects no test at all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup-venv.sh

setup_venv .venv/.skelstore-test-installed '.[test]' .venv/.skelstore-installed
export PATH="$PWD/.venv/bin:$PATH" NO_MKDOCS_2_WARNING=1

echo "== ruff check . && ruff format --check ."
ruff check .
ruff format --check .

echo "== mkdocs build --strict"
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
mkdocs build --strict --site-dir "$site"  # not --quiet: it drops the warnings --strict counts

# pytest last, so that its summary line closes the output.
echo "== pytest"
status=0
pytest "$@" || status=$?
if [[ $status -eq 5 ]]; then
    echo "pytest collected no tests: counted as a failure" >&2
fi
exit "$status"
