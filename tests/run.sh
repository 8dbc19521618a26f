#!/usr/bin/env bash
# The one command for a fresh Debian bookworm machine: install the servers the tests start (mosquitto,
# influxd 1.6.7) and the night report's renderers (chromium, poppler-utils), create .venv, then run ruff,
# mypy and pytest, stopping at the first failure.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -m "not integration" -x`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1 || [[ -x "/usr/sbin/$1" ]]; }

# Python: python3.11 if present, else python3; must be >= 3.11 and able to create a venv.
python=""
if [[ ! -x .venv/bin/python ]]; then
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then python="$candidate"; break; fi
    done
fi

# apt packages that are missing.
missing=()
have mosquitto || missing+=(mosquitto)
have influxd || missing+=(influxdb)
# The night report's tests render it in headless Chromium and convert its PDF with pdftoppm.
have chromium || missing+=(chromium fonts-dejavu-core)
have pdftoppm || missing+=(poppler-utils)
if [[ ! -x .venv/bin/python ]]; then
    if [[ -z "$python" ]]; then
        missing+=(python3 python3-venv)
        python=python3
    elif ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
fi

if ((${#missing[@]})); then
    step "installing with apt-get: ${missing[*]}"
    install=(apt-get install -y --no-install-recommends "${missing[@]}")
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive "${install[@]}"
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update
        sudo env DEBIAN_FRONTEND=noninteractive "${install[@]}"
    else
        echo "error: missing ${missing[*]} and not root (no sudo). As root, run:" >&2
        echo "  apt-get update && DEBIAN_FRONTEND=noninteractive ${install[*]}" >&2
        exit 1
    fi
fi

if [[ ! -x .venv/bin/python ]]; then
    if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        echo "error: Python >= 3.11 required, but $python is $("$python" -V 2>&1)." >&2
        echo "  Install python3.11 (Debian bookworm: apt-get install python3 python3-venv)." >&2
        exit 1
    fi
    step "creating .venv with $("$python" -V 2>&1)"
    "$python" -m venv .venv
fi

step "pip install -e '.[test]'"
.venv/bin/pip install -q -e '.[test]'

step "ruff check ."
.venv/bin/ruff check .

step "ruff format --check ."
.venv/bin/ruff format --check .

step "mypy"
.venv/bin/mypy

rc=0
if (($#)); then
    step "pytest $*"
    .venv/bin/pytest "$@" || rc=$?
else
    # Unit tests on both cores (pure code, no shared servers); the integration tests one at a time, since
    # they start real servers and some measure what a real broker and database do under a fault.
    step "pytest -m 'not integration' -n 2"
    .venv/bin/pytest -m "not integration" -n 2 || rc=$?
    if ((rc == 0)); then
        step "pytest -m integration"
        .venv/bin/pytest -m integration || rc=$?
    fi
fi
if ((rc == 5)); then
    echo "error: pytest collected no tests (exit code 5); that counts as a failure." >&2
fi
exit "$rc"
