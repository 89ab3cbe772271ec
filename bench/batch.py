#!/usr/bin/env python3
"""localbuild batch benchmark: an 8-task build-list of `sleep 1` builds against the ideal.

Usage: bench/batch.py [--image IMAGE] [--rounds N] [--parallel P]   (builds target/release first)

(`$CARGO_TARGET_DIR` is honoured; `LOCALBUILD_BIN=path` measures that binary instead.)

The ideal is ceil(8 / P) seconds of sleeping plus one build's start overhead, the overhead
measured in the same run as the median time of a one-task batch of `true` (so it includes
what every batch pays: expanding the buildspec, recording the batch, starting one container).
Target: the 8-task batch finishes in <= 1.3x the ideal. P defaults to the number of CPUs, as
`run --batch` does.
"""
import argparse, math, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("LOCALBUILD_BIN") or os.path.join(
    os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target"), "release", "localbuild")
TASKS = 8


def batch(image, tasks, command, home, parallel):
    src = tempfile.mkdtemp(prefix="lb-bench-")
    with open(os.path.join(src, "buildspec.yml"), "w") as f:
        f.write("version: 0.2\nbatch:\n  build-list:\n")
        for i in range(tasks):
            f.write("    - identifier: t%d\n" % (i + 1))
        f.write("phases:\n  build:\n    commands:\n      - %s\n" % command)
    env = dict(os.environ, LOCALBUILD_HOME=home, NO_COLOR="1")
    argv = [BIN, "run", "--batch", "--parallel", str(parallel), "-q",
            "-i", image, "-s", src, "--project", "bench"]
    return argv, env


def timed(argv, env):
    start = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit("benchmark command failed: %s\n%s" % (" ".join(argv), p.stderr.decode()))
    return elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="localbuild-test/busybox:1")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    home = tempfile.mkdtemp(prefix="lb-bench-home-")
    one, env = batch(a.image, 1, "true", home, a.parallel)
    eight, _ = batch(a.image, TASKS, "sleep 1", home, a.parallel)
    timed(one, env)  # warm-up
    overheads, totals = [], []
    for _ in range(a.rounds):
        overheads.append(timed(one, env))
        totals.append(timed(eight, env))
    overhead = statistics.median(overheads)
    total = statistics.median(totals)
    ideal = math.ceil(TASKS / a.parallel) * 1.0 + overhead
    ratio = total / ideal
    print("%d x sleep 1, parallel %d: %.2f s; one build's overhead %.2f s; ideal %.2f s"
          % (TASKS, a.parallel, total, overhead, ideal))
    print("ratio to the ideal: %.2fx (target <= 1.3x) %s" % (ratio, "ok" if ratio <= 1.3 else "MISSED"))


if __name__ == "__main__":
    main()
