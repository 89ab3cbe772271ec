#!/bin/sh
# Install the packages of localbuild/standard into a Debian bookworm root.
#
# Runs in two places (same script, embedded by src/docker/image.rs):
#  * offline path: `chroot <debootstrap dir> /bin/sh /tmp/install-packages.sh`
#    right after `debootstrap --include=<PACKAGES>`; the host has network,
#    only the docker CLI is left to do, from debootstrap's own package lists;
#  * in the Dockerfile (`RUN`), where it is a no-op when the base already has
#    everything (debootstrap base) and installs the rest when the base is a
#    pulled debian:bookworm-slim (then build containers need network).
#
# The docker client: bookworm has no docker-cli package, only docker.io
# (daemon + client + containerd/runc/iptables deps, ~150 MB installed), so
# only /usr/bin/docker is extracted from the docker.io .deb (~45 MB).
set -eu
export DEBIAN_FRONTEND=noninteractive

PACKAGES="git curl ca-certificates zip unzip python3 less procps awscli"

missing=""
for p in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ] || [ ! -x /usr/bin/docker ]; then
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        apt-get update -q
    fi
    if [ -n "$missing" ]; then
        echo "install-packages: installing:$missing"
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing
    fi
    if [ ! -x /usr/bin/docker ]; then
        echo "install-packages: extracting /usr/bin/docker from docker.io"
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root docker.io)
        dpkg-deb --fsys-tarfile "$tmp"/docker.io_*.deb | tar -x -C / ./usr/bin/docker
        rm -rf "$tmp"
    fi
fi

# Debian's aws CLI (2.9) predates AWS_ENDPOINT_URL (2.13): a wrapper in /usr/local/bin (first
# on PATH) passes it as --endpoint-url, so every build's local AWS answers (an explicit
# --endpoint-url on the command line still wins: the last one counts).
if [ -x /usr/bin/aws ]; then
    cat > /usr/local/bin/aws <<'AWS'
#!/bin/sh
if [ -n "${AWS_ENDPOINT_URL:-}" ]; then
    exec /usr/bin/aws --endpoint-url "$AWS_ENDPOINT_URL" "$@"
fi
exec /usr/bin/aws "$@"
AWS
    chmod 755 /usr/local/bin/aws
fi

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/* /var/tmp/*
