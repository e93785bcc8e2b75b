#!/usr/bin/env bash
# Set up (a venv installed the way Binder installs), then run the quickstart demo notebook headless:
# prep -> train -> evaluate recorded with %%step, submitted on the embedded store and local compute,
# resubmitted (every step reused, with the reason), and resubmitted with a new parameter.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 scripts/run_notebooks.py --show quickstart.ipynb
