#!/usr/bin/env bash
# One-GPU check (under 4 minutes): CPU-vs-GPU loss curves, then paper_base/paper_big speed + MFU.
# Needs a Python with torch (CUDA build) and the project's dependencies; installs them if absent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch, safetensors, tqdm" 2>/dev/null; then
  "$PY" -m pip install -q torch safetensors tqdm numpy
fi
PYTHONUNBUFFERED=1 timeout 230 "$PY" benchmarks/gpu_check.py
