#!/usr/bin/env bash
# Set up (if needed) and run the main job on the embedded default: `saganet demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1
.venv/bin/saganet demo -o "${1:-saganet_demo}" --overwrite
