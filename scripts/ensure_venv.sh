#!/usr/bin/env bash
# Make sure $VENV (default .venv) holds Python >= 3.10 with PyTorch and this project installed
# (editable, with the extras in $EXTRAS). Safe to run again and again: it creates the venv only
# when absent, installs torch only when missing, and reinstalls the project only when
# pyproject.toml changed (a hash stamp inside the venv).
#
#   VENV=/tmp/venvcheck bash scripts/ensure_venv.sh     # check the fresh-machine path elsewhere
#   PYTHON=python3.12 make setup                         # pick the interpreter for a new venv
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${EXTRAS:-dev,text}"
# The pinned release first (a local CPU wheel on the project's machines); any recent one otherwise.
TORCH_PINNED="torch==2.13.0"
TORCH_FALLBACK="torch>=2.3"
STAMP="$VENV/.minitransformer-install-stamp"

say() { echo "[setup] $*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        say "no '$PYTHON' on PATH: install Python >= 3.10 or run with PYTHON=/path/to/python3"
        exit 1
    fi
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        say "Python >= 3.10 is needed; PYTHON=$PYTHON is $("$PYTHON" -V 2>&1)." \
            "Run with PYTHON=/path/to/python3.10-or-newer"
        exit 1
    fi
    say "creating $VENV with $("$PYTHON" -V 2>&1)"
    if ! "$PYTHON" -m venv "$VENV"; then
        say "could not create $VENV (on Debian/Ubuntu: apt-get install python3-venv)"
        exit 1
    fi
fi

PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install --disable-pip-version-check "$@"; }

if ! "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'
then
    say "installing PyTorch ($TORCH_PINNED)"
    if ! pip_install "$TORCH_PINNED"; then
        say "$TORCH_PINNED is not available for this Python/platform; trying '$TORCH_FALLBACK'"
        pip_install "$TORCH_FALLBACK"
    fi
fi

want="$("$PY" - "$EXTRAS" <<'PYEOF'
import hashlib, pathlib, sys
data = pathlib.Path("pyproject.toml").read_bytes() + b"\nextras=" + sys.argv[1].encode()
print(hashlib.sha256(data).hexdigest())
PYEOF
)"
have="$(cat "$STAMP" 2>/dev/null || true)"
if [ "$have" != "$want" ]; then
    say "installing minitransformer (editable) with extras [$EXTRAS]"
    pip_install -e ".[$EXTRAS]"
    echo "$want" > "$STAMP"
else
    say "$VENV is up to date (pyproject.toml unchanged since the last install)"
fi
