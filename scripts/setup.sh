#!/usr/bin/env bash
# Create .venv and install saganet with its dev extras. Idempotent: a second run is fast.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch and torchvision must come as this exact pair in one command (see README).
if ! .venv/bin/python -c "import torch, torchvision" >/dev/null 2>&1; then
  .venv/bin/pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
fi
.venv/bin/pip install --quiet -e ".[dev]"
