#!/usr/bin/env bash
# Create .venv (if missing) and install the package from this work tree with the given extras.
# pip's own chatter goes to .venv/pip.log; it is shown only when an install fails.
# Usage: scripts/setup_venv.sh [EXTRAS]     e.g. scripts/setup_venv.sh test
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
# under CI a designer canvas that does not build fails the set-up instead of warning
[ "${CI:-}" = "true" ] && export MLPIPE_REQUIRE_LABEXTENSION=1
target="."
[ -n "$extras" ] && target=".[$extras]"
echo "setup: installing mlpipe-jupyter${extras:+[$extras]} into .venv (log: .venv/pip.log)"
if ! { .venv/bin/python -m pip install --quiet --upgrade pip \
       && .venv/bin/python -m pip install --quiet -e "$target"; } > .venv/pip.log 2>&1; then
    tail -n 40 .venv/pip.log >&2
    echo "setup: pip install failed; the whole log is .venv/pip.log" >&2
    exit 1
fi
