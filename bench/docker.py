#!/usr/bin/env python3
"""Privileged builds: the guarded Docker API against the raw socket (and a daemon in the build
container, where this machine can run one), measured in one run.

Usage: bench/docker.py [--rounds N]   (LOCALBUILD_BIN=path measures a given binary; default
target/release/localbuild, else target/debug/localbuild)

Each figure is the median of N rounds of a real `localbuild run -d`:
  start      a build whose one command is `docker version` (the daemon answers): wall time
  build      `docker build --no-cache` of one context (a 32 MB file, 3 RUN steps), from the
             log's timestamps around the command
  cached     the same `docker build` again, layer cache warm
for three ways of giving the build Docker:
  guarded    -d (the default): the guarded Docker API, an unprivileged build container
  raw        -d --docker-host-access on localbuild-test/docker:1: this machine's socket
  dind       -d --docker-host-access on localbuild-bench/dind:1 (bench/dind-image.sh): the
             image's own dockerd in a privileged container, as CodeBuild's images; its layer
             cache starts empty in every build and the base image is `docker load`ed first
             (offline, its stand-in for the pull). Skipped, with the reason, when this
             machine's daemon cannot start privileged containers.
"""
import argparse, os, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE = "localbuild-test/busybox:1"
TS = re.compile(r"^\[Container\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+) (.*)$")


def binary():
    if os.environ.get("LOCALBUILD_BIN"):
        return os.environ["LOCALBUILD_BIN"]
    for kind in ("release", "debug"):
        p = os.path.join(ROOT, "target", kind, "localbuild")
        if os.path.exists(p):
            return p
    sys.exit("no localbuild binary: cargo build --release first")


def context(src, dind):
    with open(os.path.join(src, "Dockerfile"), "w") as f:
        f.write("FROM %s\nCOPY big.bin /big.bin\nRUN md5sum /big.bin > /sum\n"
                "RUN for i in 1 2 3 4 5; do echo $i >> /n; done\nRUN cat /sum /n\n" % BASE)
    with open(os.path.join(src, "big.bin"), "wb") as f:
        f.write(os.urandom(32 << 20))
    if dind:
        subprocess.run(["docker", "save", BASE, "-o", os.path.join(src, "base.tar")], check=True)


def run(bin, src, commands, args, home):
    with open(os.path.join(src, "buildspec.yml"), "w") as f:
        f.write("version: 0.2\nphases:\n  build:\n    commands:\n")
        for c in commands:
            f.write("      - '%s'\n" % c.replace("'", "''"))
    env = dict(os.environ, LOCALBUILD_HOME=home, NO_COLOR="1",
               XDG_CONFIG_HOME=os.path.join(home, "config"))
    start = time.perf_counter()
    p = subprocess.run([bin, "run", "-d", "--project", "bench", "-s", src] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - start
    out = p.stdout.decode(errors="replace")
    return p.returncode, wall, out


def seconds(stamp):
    return time.mktime(time.strptime(stamp[:19], "%Y/%m/%d %H:%M:%S")) + float("0" + stamp[19:])


def command_time(out, command):
    """Seconds from `Running command COMMAND` to the next agent line."""
    lines = [TS.match(l) for l in out.splitlines()]
    lines = [m for m in lines if m]
    for i, m in enumerate(lines):
        if m.group(2) == "Running command " + command and i + 1 < len(lines):
            return seconds(lines[i + 1].group(1)) - seconds(m.group(1))
    raise SystemExit("no timing for %r in:\n%s" % (command, out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    bin = binary()
    subprocess.run([os.path.join(ROOT, "bench", "dind-image.sh")], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    modes = {
        "guarded": ["-i", "localbuild-test/docker:1"],
        "raw": ["-i", "localbuild-test/docker:1", "--docker-host-access"],
        "dind": ["-i", "localbuild-bench/dind:1", "--docker-host-access"],
    }
    home = tempfile.mkdtemp(prefix="lb-bench-home-")
    results, notes = {}, {}
    print("binary: %s, %d rounds, median" % (bin, a.rounds))
    for mode, args in modes.items():
        dind = mode == "dind"
        src = tempfile.mkdtemp(prefix="lb-bench-docker-")
        context(src, dind)
        tag = "lb-bench-%s-%d" % (mode, os.getpid())
        build = "docker build -q --no-cache -t %s ." % tag
        cached = "docker build -q -t %s ." % tag
        starts, builds, caches = [], [], []
        for _ in range(a.rounds):
            code, wall, out = run(bin, src, ["docker version -f {{.Server.Version}}"], args, home)
            if code != 0 or "cannot start privileged containers" in out:
                notes[mode] = ("this machine's daemon cannot start privileged containers "
                               "(it runs without all capabilities)" if "privileged" in out
                               else "failed:\n" + out[-2000:])
                break
            starts.append(wall)
            cmds = (["docker load -q -i base.tar"] if dind else []) + [build, cached]
            code, wall, out = run(bin, src, cmds, args, home)
            if code != 0:
                notes[mode] = "docker build failed:\n" + out[-2000:]
                break
            builds.append(command_time(out, build))
            caches.append(command_time(out, cached))
        subprocess.run(["docker", "rmi", "-f", tag], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(src, ignore_errors=True)
        if starts and builds:
            results[mode] = (statistics.median(starts), statistics.median(builds),
                             statistics.median(caches))
    shutil.rmtree(home, ignore_errors=True)
    print("%-8s %10s %14s %14s" % ("mode", "start (s)", "build (s)", "cached (s)"))
    for mode in modes:
        if mode in results:
            s, b, c = results[mode]
            print("%-8s %10.2f %14.2f %14.2f" % (mode, s, b, c))
        else:
            print("%-8s %s" % (mode, "not measured: " + notes.get(mode, "?")))
    if "guarded" in results and "raw" in results:
        g, r = results["guarded"], results["raw"]
        print("guarded/raw: start %.2fx, build %.2fx, cached %.2fx"
              % (g[0] / r[0], g[1] / r[1], g[2] / r[2]))


if __name__ == "__main__":
    main()
