#!/usr/bin/env bash
# Make a Docker engine answer and the test base image exist, for the Docker compute tests.
#
# Installs Debian's docker.io and debootstrap when missing, starts dockerd in the background when no
# engine answers, and builds the base image (Debian minbase with python3, pip and venv) from Debian's
# packages when it is missing, since no image registry may be reachable. Every step is skipped when
# already done, so a second run on the same machine takes a second. Never fails its caller: where no
# engine can start, the Docker tests skip and say why.
set -uo pipefail

BASE_IMAGE="${MLPIPE_DOCKER_BASE_IMAGE:-mlpipe/base:bookworm}"
SUITE="${MLPIPE_DOCKER_BASE_SUITE:-bookworm}"
LOG_DIR="${MLPIPE_DOCKER_LOG_DIR:-/var/log}"

say() { echo "docker_engine: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then sudo=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo="sudo -n"; else sudo=""; fi
can_admin() { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }

install_missing() {
    local need=()
    command -v dockerd >/dev/null || need+=(docker.io)
    command -v docker >/dev/null || need+=(docker.io)
    command -v debootstrap >/dev/null || need+=(debootstrap)
    [ ${#need[@]} -eq 0 ] && return 0
    if ! can_admin; then say "not root; cannot install ${need[*]}"; return 1; fi
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq >/dev/null \
        && $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || { say "could not install ${need[*]}"; return 1; }
}

start_engine() {
    engine_answers && return 0
    if ! command -v dockerd >/dev/null; then say "no dockerd to start"; return 1; fi
    if ! can_admin; then say "no engine answers and starting one needs root"; return 1; fi
    if pgrep -x dockerd >/dev/null; then
        say "a dockerd is running but does not answer yet; waiting for it"
    else
        say "starting dockerd (log: $LOG_DIR/mlpipe-dockerd.log)"
        # setsid: the engine outlives this script and the test run, and later runs reuse it.
        $sudo setsid dockerd >"$LOG_DIR/mlpipe-dockerd.log" 2>&1 </dev/null &
    fi
    for _ in $(seq 1 60); do
        engine_answers && { say "engine is up"; return 0; }
        sleep 1
    done
    say "dockerd did not answer within 60 s; last lines of its log:"
    tail -n 5 "$LOG_DIR/mlpipe-dockerd.log" >&2 2>/dev/null
    return 1
}

build_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
    if ! command -v debootstrap >/dev/null; then say "no debootstrap; cannot build $BASE_IMAGE"; return 1; fi
    local mirror root
    mirror="$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list.d/*.sources \
        /etc/apt/sources.list 2>/dev/null | head -n1 | grep -oE 'https?://[^ ]+')"
    mirror="${mirror:-http://deb.debian.org/debian}"
    root="$(mktemp -d /tmp/mlpipe-rootfs.XXXXXX)"
    say "building $BASE_IMAGE from $mirror (about a minute)"
    if ! $sudo debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
            "$SUITE" "$root" "$mirror" >"$root.log" 2>&1; then
        say "debootstrap failed; last lines:"; tail -n 5 "$root.log" >&2
        $sudo rm -rf "$root" "$root.log"; return 1
    fi
    # Trim what a step never needs: documentation, locales, package lists, caches.
    $sudo rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
        "$root"/usr/share/locale/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old
    if $sudo tar -C "$root" -c . | docker import -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' - "$BASE_IMAGE" >/dev/null; then
        say "built $BASE_IMAGE"
    else
        say "docker import failed"
    fi
    $sudo rm -rf "$root" "$root.log"
    docker image inspect "$BASE_IMAGE" >/dev/null 2>&1
}

install_missing
start_engine && build_base_image
exit 0
