#!/usr/bin/env bash
# Build the small test images used by the integration tests, from local files only:
#   localbuild-test/busybox:1  FROM scratch + Debian's static busybox + passwd/group + /tmp
#   localbuild-test/docker:1   the same + the host's static docker CLI at /usr/local/bin/docker
#   localbuild-test/bash:1     the same + the host's static bash
#   localbuild-test/runtimes:1 the same + docker/test-busybox/runtimes.yml at
#                              /codebuild/image/config/runtimes.yml (runtime-versions tests)
#   localbuild-test/awscli:1   the same + the test venv's Python and aws CLI (with the shared
#                              libraries they load), for the aws CLI inside builds
#   localbuild-test/docker-awscli:1  localbuild-test/awscli:1 + the static docker CLI (AWS's
#                              Docker sample: aws ecr get-login-password | docker login, push)
#
# Idempotent and fast: each image carries the label org.localbuild.recipe-hash
# (hash of its recipe files); an image whose label matches is not rebuilt.
# Binaries are copied into a temporary build context, never into the repository.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RECIPE="$ROOT/docker/test-busybox"
BUSYBOX_IMAGE=localbuild-test/busybox:1
DOCKER_IMAGE=localbuild-test/docker:1
LABEL=org.localbuild.recipe-hash

say() { printf 'build-test-images: %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

is_static() {
    # `file` is the primary check; fall back to ldd when `file` is not installed.
    if command -v file >/dev/null 2>&1; then
        file -L "$1" | grep -q 'statically linked'
    else
        ! ldd "$1" >/dev/null 2>&1
    fi
}

image_label() {
    docker image inspect -f "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null || true
}

command -v docker >/dev/null 2>&1 || die "no docker CLI on PATH"
docker info >/dev/null 2>&1 </dev/null || die "docker daemon not answering (run scripts/ensure-docker.sh)"

BUSYBOX=/bin/busybox
if ! [ -x "$BUSYBOX" ] || ! is_static "$BUSYBOX"; then
    [ "$(id -u)" -eq 0 ] || die "$BUSYBOX (static) missing; run: apt-get install busybox-static"
    say "installing busybox-static"
    apt-get update -q </dev/null
    apt-get install -y -q busybox-static </dev/null
fi
is_static "$BUSYBOX" || die "$BUSYBOX is not statically linked (install busybox-static, not busybox)"

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# --- localbuild-test/busybox:1 -------------------------------------------------
bb_hash=$(cat "$RECIPE/Dockerfile" "$RECIPE/passwd" "$RECIPE/group" | sha256sum | cut -c1-32)
rebuilt_busybox=0
if [ "$(image_label "$BUSYBOX_IMAGE")" = "$bb_hash" ]; then
    say "$BUSYBOX_IMAGE is up to date ($bb_hash)"
else
    say "building $BUSYBOX_IMAGE ($bb_hash)"
    mkdir "$TMP/busybox"
    cp "$RECIPE/Dockerfile" "$RECIPE/passwd" "$RECIPE/group" "$TMP/busybox/"
    cp "$BUSYBOX" "$TMP/busybox/busybox"
    docker build -q --label "$LABEL=$bb_hash" -t "$BUSYBOX_IMAGE" "$TMP/busybox" >/dev/null </dev/null
    rebuilt_busybox=1
fi

# --- images layered on the busybox image: one static binary each ------------------
# layer IMAGE NAME BINARY: IMAGE from $RECIPE/Dockerfile.NAME, whose context holds only BINARY
# (copied as NAME); rebuilt when the busybox image or that Dockerfile changed.
# EXTRA files (optional, after BINARY) also count in the recipe hash.
layer() {
    local image=$1 name=$2 binary=$3 hash
    shift 3
    hash=$(printf '%s\n' "$bb_hash" | cat - "$RECIPE/Dockerfile.$name" "$@" | sha256sum | cut -c1-32)
    if [ "$rebuilt_busybox" = 0 ] && [ "$(image_label "$image")" = "$hash" ]; then
        say "$image is up to date ($hash)"
        return
    fi
    say "building $image ($hash) with $binary"
    mkdir "$TMP/$name"
    cp "$RECIPE/Dockerfile.$name" "$TMP/$name/Dockerfile"
    cp "$binary" "$TMP/$name/$name"
    docker build -q --build-arg "BASE=$BUSYBOX_IMAGE" --label "$LABEL=$hash" \
        -t "$image" "$TMP/$name" >/dev/null </dev/null
}

DOCKER_CLI=$(command -v docker)
if ! is_static "$DOCKER_CLI"; then
    die "$DOCKER_CLI is dynamically linked; localbuild-test/docker:1 needs a statically linked docker CLI (e.g. the one from download.docker.com/linux/static) - refusing to copy it into a FROM-scratch image"
fi
layer "$DOCKER_IMAGE" docker "$DOCKER_CLI"

BASH_IMAGE=localbuild-test/bash:1
BASH_STATIC=/bin/bash-static
[ -x "$BASH_STATIC" ] || die "$BASH_STATIC is missing: apt-get install bash-static"
layer "$BASH_IMAGE" bash "$BASH_STATIC"

RUNTIMES_IMAGE=localbuild-test/runtimes:1
layer "$RUNTIMES_IMAGE" runtimes "$RECIPE/runtimes.yml" "$RECIPE/runtimes.yml"

# --- localbuild-test/awscli:1: the venv's interpreter and aws CLI, copied -------------
# The venv (scripts/setup.sh) names its interpreter in pyvenv.cfg; the image gets that
# interpreter's standard library (no tests, no tkinter), the packages the aws CLI imports, and
# every shared library `ldd` names, at the same paths. Copying takes seconds; no network.
AWSCLI_IMAGE=localbuild-test/awscli:1
VENV=${LOCALBUILD_VENV:-$ROOT/.venv}
[ -f "$VENV/pyvenv.cfg" ] || die "$VENV has no venv: run scripts/python-env.sh first (scripts/setup.sh does)"
stage_awscli() {
    local out=$1 py site prefix ver libpy
    py=$(sed -n 's/^executable = //p' "$VENV/pyvenv.cfg")
    [ -n "$py" ] || py=$(readlink -f "$VENV/bin/python3")
    [ -x "$py" ] || die "the venv's interpreter ($py, from $VENV/pyvenv.cfg) is missing"
    prefix=$(dirname "$(dirname "$py")")
    ver=$("$py" -c 'import sys; print(f"python{sys.version_info[0]}.{sys.version_info[1]}")')
    site="$VENV/lib/$ver/site-packages"
    # A shared libpython when the interpreter uses one (pyenv's does, Debian's does not).
    libpy="${prefix#/}/lib/lib$ver.so.1.0"
    [ -e "/$libpy" ] || libpy=""
    mkdir -p "$out/root/usr/local/bin" "$out/root$prefix/lib/$ver/site-packages"
    tar -C / -cf - --exclude='*/test' --exclude='*/tests' --exclude='*/idlelib' \
        --exclude='*/tkinter' --exclude='*/_tkinter*' --exclude='*/ensurepip' \
        --exclude='*/site-packages' --exclude='*/config-*' --exclude='*/__pycache__' \
        --exclude='*/turtledemo' \
        "${py#/}" $libpy "${prefix#/}/lib/$ver" | tar -C "$out/root" -xf -
    local pkg
    for pkg in awscli botocore s3transfer jmespath dateutil six.py urllib3 yaml _yaml docutils \
        colorama rsa pyasn1; do
        tar -C "$site" -cf - --exclude=__pycache__ --exclude=awscli/examples \
            --exclude=awscli/botocore "$pkg" | tar -C "$out/root$prefix/lib/$ver/site-packages" -xf -
    done
    find "$out/root" -type f \( -name '*.so*' -o -path "*$py" \) -print0 \
        | xargs -0 -n1 ldd 2>/dev/null | awk '/=> \//{print $3} /^[[:space:]]*\/lib64/{print $1}' \
        | sort -u | sed 's|^/||' | tar -C / -chf - -T - | tar -C "$out/root" -xf -
    printf '#!%s\nimport sys\nimport awscli.clidriver\nsys.exit(awscli.clidriver.main())\n' "$py" \
        > "$out/root/usr/local/bin/aws"
    chmod 755 "$out/root/usr/local/bin/aws"
}
aws_hash=$( { printf '%s\n' "$bb_hash"; cat "$RECIPE/Dockerfile.awscli" "$VENV/pyvenv.cfg"; \
    ls "$VENV/lib/"*/site-packages | grep -i dist-info; } | sha256sum | cut -c1-32)
rebuilt_awscli=0
if [ "$rebuilt_busybox" = 0 ] && [ "$(image_label "$AWSCLI_IMAGE")" = "$aws_hash" ]; then
    say "$AWSCLI_IMAGE is up to date ($aws_hash)"
else
    say "building $AWSCLI_IMAGE ($aws_hash) from $VENV"
    mkdir "$TMP/awscli"
    cp "$RECIPE/Dockerfile.awscli" "$TMP/awscli/Dockerfile"
    stage_awscli "$TMP/awscli"
    docker build -q --build-arg "BASE=$BUSYBOX_IMAGE" --label "$LABEL=$aws_hash" \
        -t "$AWSCLI_IMAGE" "$TMP/awscli" >/dev/null </dev/null
    rebuilt_awscli=1
fi

# --- localbuild-test/docker-awscli:1: the aws CLI image + the static docker CLI ---------------
DOCKER_AWSCLI_IMAGE=localbuild-test/docker-awscli:1
da_hash=$(printf '%s\n' "$aws_hash" | cat - "$RECIPE/Dockerfile.docker-awscli" \
    | sha256sum | cut -c1-32)
if [ "$rebuilt_awscli" = 0 ] && [ "$(image_label "$DOCKER_AWSCLI_IMAGE")" = "$da_hash" ]; then
    say "$DOCKER_AWSCLI_IMAGE is up to date ($da_hash)"
else
    say "building $DOCKER_AWSCLI_IMAGE ($da_hash) with $DOCKER_CLI"
    mkdir "$TMP/docker-awscli"
    cp "$RECIPE/Dockerfile.docker-awscli" "$TMP/docker-awscli/Dockerfile"
    cp "$DOCKER_CLI" "$TMP/docker-awscli/docker"
    docker build -q --build-arg "BASE=$AWSCLI_IMAGE" --label "$LABEL=$da_hash" \
        -t "$DOCKER_AWSCLI_IMAGE" "$TMP/docker-awscli" >/dev/null </dev/null
fi

# Smoke checks (cheap): the shell works, the users exist, /tmp is sticky.
docker run --rm "$BUSYBOX_IMAGE" sh -c 'id codebuild-user >/dev/null && [ -k /tmp ] && [ "$PATH" = /usr/local/bin:/usr/bin:/bin ]' \
    || die "$BUSYBOX_IMAGE smoke check failed"
docker run --rm "$DOCKER_IMAGE" docker --version >/dev/null || die "$DOCKER_IMAGE smoke check failed"
docker run --rm "$BASH_IMAGE" bash -c '[[ -n $BASH_VERSION ]]' || die "$BASH_IMAGE smoke check failed"
docker run --rm "$RUNTIMES_IMAGE" grep -q '^runtimes:' /codebuild/image/config/runtimes.yml \
    || die "$RUNTIMES_IMAGE smoke check failed"
docker run --rm "$AWSCLI_IMAGE" aws --version >/dev/null || die "$AWSCLI_IMAGE smoke check failed"
docker run --rm "$DOCKER_AWSCLI_IMAGE" sh -c 'aws --version && docker --version' >/dev/null \
    || die "$DOCKER_AWSCLI_IMAGE smoke check failed"
say "done"
