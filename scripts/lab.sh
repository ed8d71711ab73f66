#!/usr/bin/env bash
# Start JupyterLab on this machine only (127.0.0.1), token auth on, opening the first notebook.
# Used by `make lab` and by tests/test_lab_browser.py, so both start the server the same way.
#
#   PORT=8890 bash scripts/lab.sh --no-browser
#   NOTEBOOK_DIR=/tmp/copy START_NOTEBOOK=00_start_here.ipynb bash scripts/lab.sh
#   LAB_DRY_RUN=1 bash scripts/lab.sh     # print MT_DEVICE and the command, one per line; run nothing
# Extra arguments go to `jupyter lab` as they are.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

VENV="${VENV:-.venv}"
PORT="${PORT:-8888}"
NOTEBOOK_DIR="$(cd "${NOTEBOOK_DIR:-notebooks}" && pwd)"
START_NOTEBOOK="${START_NOTEBOOK:-00_start_here.ipynb}"
# Classroom default: the CPU, unless the user chose (MT_DEVICE=cuda make lab).
export MT_DEVICE="${MT_DEVICE:-cpu}"

JUPYTER="$VENV/bin/jupyter"
if [ ! -x "$JUPYTER" ]; then
    JUPYTER="$(command -v jupyter || true)"
fi
if [ -z "$JUPYTER" ]; then
    echo "[lab] JupyterLab not found in $VENV; run 'make setup' first" >&2
    exit 1
fi

args=(lab --ip=127.0.0.1 --port="$PORT" --ServerApp.root_dir="$NOTEBOOK_DIR")
if [ "$(id -u)" = "0" ]; then
    args+=(--allow-root)
fi
if [ -f "$NOTEBOOK_DIR/$START_NOTEBOOK" ]; then
    args+=("$NOTEBOOK_DIR/$START_NOTEBOOK")
fi
args+=("$@")

echo "[lab] MT_DEVICE=$MT_DEVICE; JupyterLab on http://127.0.0.1:$PORT (Ctrl+C to stop)" >&2
if [ -n "${LAB_DRY_RUN:-}" ]; then
    printf '%s\n' "MT_DEVICE=$MT_DEVICE" "$JUPYTER" "${args[@]}"
    exit 0
fi
exec "$JUPYTER" "${args[@]}"
