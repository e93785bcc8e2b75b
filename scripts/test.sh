#!/usr/bin/env bash
# Set up, then run the whole test suite: unit tests and the integrations against real engines
# (subprocesses, an IPython kernel, JupyterLab in headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_venv.sh test
bash scripts/install_system_deps.sh
bash scripts/docker_engine.sh  # never fails: without an engine the Docker tests skip and say why
mkdir -p test-artifacts
.venv/bin/lint-imports  # the layers point one way (pyproject.toml, [tool.importlinter])
.venv/bin/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider "$@"  # loadgroup: the Ray tests share one worker and one cluster
