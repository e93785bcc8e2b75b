#!/usr/bin/env bash
# Installs what the browser tests need: Debian's chromium (the browser Playwright drives)
# and the Python packages. Browsers come from apt only, never from `playwright install`.
set -euo pipefail

if [ ! -x /usr/bin/chromium ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium
fi
/usr/bin/chromium --headless --no-sandbox --version 2>/dev/null || /usr/bin/chromium --version

PYTHON="${PYTHON:-python}"
"$PYTHON" -m pip install --quiet playwright jupyterlab ipywidgets ipykernel
