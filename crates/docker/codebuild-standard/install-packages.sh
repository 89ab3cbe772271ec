#!/bin/sh
# Install the packages of localbuild/codebuild-standard into a Debian bookworm root: the
# runtimes and tools of CodeBuild's standard images, from Debian's own packages only.
#
# Runs in two places (same script, embedded by crates/docker/src/image.rs):
#  * offline path: in a chroot of a fresh `debootstrap --variant=minbase` root, in a private
#    mount namespace (`unshare --mount`), using the host's network;
#  * in the Dockerfile (`RUN`), where it is a no-op when the base already has everything
#    (debootstrap base) and installs the rest on a pulled debian:bookworm-slim (then build
#    containers need network).
set -eu
export DEBIAN_FRONTEND=noninteractive

PACKAGES="git curl ca-certificates zip unzip less procps awscli jq make build-essential wget openssh-client xz-utils python3 python3-pip python3-venv python3-pytest python-is-python3 nodejs npm default-jdk-headless maven gradle golang ruby ruby-dev bundler php-cli composer"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ] || [ ! -x /usr/bin/docker ]; then
    # Java's package scripts need /proc; in the chroot it is mounted in a private namespace.
    [ -e /proc/self ] || mount -t proc proc /proc
    # No documentation, manual pages or translations (about 130 MB), and no fsync per file
    # (dpkg's unpacking is most of the build time otherwise).
    cat > /etc/dpkg/dpkg.cfg.d/localbuild-nodoc <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
CFG
    echo force-unsafe-io > /etc/dpkg/dpkg.cfg.d/localbuild-unsafe-io
    cp /usr/local/lib/localbuild/sources.list /etc/apt/sources.list 2>/dev/null || cat > /etc/apt/sources.list <<'SRC'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
    rm -f /etc/apt/sources.list.d/debian.sources
    apt-get update -q
    if [ -n "$missing" ]; then
        echo "install-packages: installing:$missing"
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing
    fi
    if [ ! -x /usr/bin/docker ]; then
        # bookworm has no docker-cli package: only /usr/bin/docker out of docker.io.
        echo "install-packages: extracting /usr/bin/docker from docker.io"
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root docker.io)
        dpkg-deb --fsys-tarfile "$tmp"/docker.io_*.deb | tar -x -C / ./usr/bin/docker
        rm -rf "$tmp"
    fi
    rm -f /etc/dpkg/dpkg.cfg.d/localbuild-unsafe-io
fi

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/* /var/tmp/*
