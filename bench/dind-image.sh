#!/bin/sh
# Builds localbuild-bench/dind:1 for bench/docker.py: the Debian base image plus this machine's
# own dockerd, containerd, runc and the static docker CLI (no network needed; the host must be
# Debian bookworm like the base, whose libraries these binaries use), with a
# dockerd-entrypoint.sh that starts the daemon as CodeBuild's images do. /var/lib/docker is a
# volume (overlay2 cannot sit on the container's own overlay).
set -eu
BASE=${BASE:-localbuild/debian-base:bookworm}
TAG=localbuild-bench/dind:1
CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/bin" "$CTX/lib"
for b in /usr/sbin/dockerd /usr/bin/containerd /usr/bin/containerd-shim-runc-v2 /usr/sbin/runc \
         /usr/bin/docker-init "$(command -v docker)"; do
    cp "$b" "$CTX/bin/"
done
for b in /usr/sbin/dockerd /usr/sbin/runc; do
    ldd "$b" | awk '/=> \//{print $3}' | while read -r l; do cp -L "$l" "$CTX/lib/"; done
done
cat > "$CTX/dockerd-entrypoint.sh" <<'SH'
#!/bin/sh
# No iptables in the image: the daemon's bridge without NAT (the benchmark builds offline).
dockerd --iptables=false --ip6tables=false >/tmp/dockerd.log 2>&1 &
exec "$@"
SH
cat > "$CTX/Dockerfile" <<'DF'
ARG BASE
FROM ${BASE}
COPY bin/ /usr/local/bin/
COPY lib/ /usr/local/lib/dind/
RUN echo /usr/local/lib/dind > /etc/ld.so.conf.d/dind.conf && ldconfig
COPY dockerd-entrypoint.sh /usr/local/bin/
RUN chmod +x /usr/local/bin/dockerd-entrypoint.sh
VOLUME /var/lib/docker
ENTRYPOINT ["/usr/local/bin/dockerd-entrypoint.sh"]
DF
docker build -q --build-arg "BASE=$BASE" -t "$TAG" "$CTX" >/dev/null
echo "$TAG"
