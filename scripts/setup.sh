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
# The browser test drives the web UI in Chromium with Debian's chromedriver (selenium uses them as they are;
# nothing downloads a browser of its own). Installed with apt when we are root; otherwise that test skips.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "setup: Chromium/chromedriver not found and not root: the browser test will skip" >&2
  fi
fi
