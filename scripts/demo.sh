#!/usr/bin/env bash
# Set up, then run the demo pipeline (prep -> train -> evaluate) on the embedded store and local
# compute, twice: the second run reuses every step and says why.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh
echo "== first run"
.venv/bin/python examples/demo/demo.py "$@"
echo
echo "== second run: nothing changed, so every step is reused"
.venv/bin/python examples/demo/demo.py "$@"
