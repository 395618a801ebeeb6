# Sourced by scripts/sample.sh and scripts/test.sh: the shared, quiet set-up of .venv.
#
#   setup_venv STAMP REQUIREMENT [STAMP...]
#
# Creates .venv (python3 -m venv) if it is missing and installs REQUIREMENT (e.g.
# '.[test]') into it, unless the file STAMP is newer than pyproject.toml; then
# touches STAMP and any further STAMPs (names of set-ups this one includes).
#
# pip runs quietly and does not precompile every module it installs (Python compiles
# the ones it imports, when it imports them: about 100 MB less in .venv); on
# failure its whole output is shown. A machine's pip
# configuration may list package locations that do not exist (pip then warns
# "Location '...' is ignored: it is neither a file nor a directory" for every
# package): those lines are the only ones left out of what pip prints.

setup_venv() {
    local stamp=$1 requirement=$2
    shift 2
    if [[ ! -x .venv/bin/python ]]; then
        python3 -m venv .venv
    fi
    if [[ -f $stamp && ! pyproject.toml -nt $stamp ]]; then
        return 0
    fi
    echo "setting up .venv: pip install -e '$requirement' (the first time takes a minute or two)" >&2
    local log
    log=$(mktemp)
    if ! PIP_DISABLE_PIP_VERSION_CHECK=1 .venv/bin/python -m pip install --quiet --no-compile \
        --progress-bar off -e "$requirement" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "setting up .venv failed (pip output above)" >&2
        return 1
    fi
    grep -Ev "^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory\.$" \
        "$log" >&2 || true
    rm -f "$log"
    touch "$stamp" "$@"
}
