#!/usr/bin/env bash
# Make sure a Docker daemon answers `docker info`.
#
# Idempotent: if the daemon already answers, do nothing. Otherwise install
# Debian's docker.io (only if dockerd is missing), start dockerd detached
# (log: /var/log/dockerd.log) and wait up to 60 s for it to answer.
# Works as root without a TTY or stdin.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
LOG=/var/log/dockerd.log
WAIT_SECS=${ENSURE_DOCKER_WAIT_SECS:-60}

say() { printf 'ensure-docker: %s\n' "$*" >&2; }

docker_answers() { docker info >/dev/null 2>&1 </dev/null; }

if ! command -v docker >/dev/null 2>&1; then
    say "no docker CLI on PATH (expected /usr/local/bin/docker)"
fi

if command -v docker >/dev/null 2>&1 && docker_answers; then
    say "daemon already answers"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "daemon not answering and not root: cannot install or start dockerd"
    exit 1
fi

if ! command -v dockerd >/dev/null 2>&1; then
    say "dockerd missing: installing docker.io"
    apt-get update -q </dev/null
    apt-get install -y -q --no-install-recommends docker.io </dev/null
fi

if ! command -v docker >/dev/null 2>&1; then
    say "still no docker CLI on PATH after installing docker.io"
    exit 1
fi

if pgrep -x dockerd >/dev/null 2>&1; then
    say "dockerd process exists but does not answer yet; waiting for it"
else
    say "starting dockerd (log: $LOG)"
    mkdir -p "$(dirname "$LOG")"
    # setsid + nohup: own session, ignores SIGHUP, survives this script.
    setsid nohup dockerd >>"$LOG" 2>&1 </dev/null &
fi

for _ in $(seq 1 "$WAIT_SECS"); do
    if docker_answers; then
        say "daemon answers"
        exit 0
    fi
    sleep 1
done

say "dockerd did not answer within ${WAIT_SECS}s; last lines of $LOG:"
tail -n 20 "$LOG" >&2 || true
exit 1
