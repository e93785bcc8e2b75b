#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium (the browser Playwright drives)
# and the Python packages. Browsers come from apt only, never from `playwright install`.
set -euo pipefail

bash "$(dirname "$0")/install_system_deps.sh"
/usr/bin/chromium --headless --no-sandbox --version 2>/dev/null || /usr/bin/chromium --version

PYTHON="${PYTHON:-python}"
"$PYTHON" -m pip install --quiet playwright jupyterlab ipywidgets ipykernel
