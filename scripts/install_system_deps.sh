#!/usr/bin/env bash
# Debian packages the integration tests drive. Installed only when missing; without root (and no
# sudo) nothing is installed and the tests that need them say so when they skip.
set -uo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null; then sudo="sudo -n"; else
    echo "install_system_deps: not root; skipping ${need[*]}" >&2; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "${need[@]}" >/dev/null \
    || echo "install_system_deps: could not install ${need[*]}" >&2
exit 0
