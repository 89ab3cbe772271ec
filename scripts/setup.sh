#!/usr/bin/env bash
# Prepare this machine for localbuild (Debian/Ubuntu, as root): install the packages, start a
# Docker daemon if none answers, and build the tiny test images. `--tests` also installs what
# only the test suite needs (Chromium and chromedriver for the console's browser tests); CI
# (.ci/run) passes it. Idempotent; a second run does nothing but check.
#   scripts/setup.sh            # to run localbuild and the quick start (scripts/tutorial.sh)
#   scripts/setup.sh --tests    # also to run `cargo test`
set -euo pipefail
tests=false
for arg in "$@"; do
    case $arg in
        --tests) tests=true ;;
        *) echo "scripts/setup.sh: unknown argument $arg (usage: scripts/setup.sh [--tests])" >&2; exit 2 ;;
    esac
done
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/setup.sh: must run as root (installs packages, starts dockerd)" >&2
    exit 1
fi

# docker-registry: the local ECR (serve and run start it) and the registry tests; apache2-utils
# (htpasswd): the registry tests; busybox-static, bash-static
# and file: the test images; debootstrap: the offline base of localbuild/standard;
# docker.io only when no daemon answers (a static docker CLI may already be installed);
# with --tests, chromium + chromium-driver: the web console's browser tests (WebDriver).
packages=(docker-registry busybox-static bash-static apache2-utils debootstrap file)
if $tests; then
    packages+=(chromium chromium-driver)
fi
if ! docker info >/dev/null 2>&1 </dev/null && ! command -v dockerd >/dev/null 2>&1; then
    packages+=(docker.io)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -q </dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi

scripts/ensure-docker.sh </dev/null
# The venv first: localbuild-test/awscli:1 is made from its Python and aws CLI.
scripts/python-env.sh </dev/null
scripts/build-test-images.sh </dev/null
