#!/usr/bin/env python3
"""localbuild benchmark: ratios against `docker run --rm IMAGE sh -c ...`, measured in one run.

Usage: bench/run.py [--image IMAGE] [--rounds N]   (builds target/release/localbuild first)

Measures, each as the median of N rounds:
  1. start overhead: a one-command build vs `docker run --rm IMAGE sh -c true`  (target <= 1.5x);
     also with `-c` (the host's credentials: no local AWS endpoint), for comparison
  2. per-command overhead: (400-command build - 1-command build) / 399         (target <= 5 ms)
  3. 200 MB of output: a build printing it vs docker run printing it           (target <= 1.5x)
  4. localbuild's peak RSS during (3)                                           (target <= 64 MB)
"""
import argparse, os, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "localbuild")
OUTPUT_CMD = "yes %s | head -c 200000000" % ("x" * 99)


def timed(argv, env=None):
    """Wall time and the child's peak RSS (KiB); output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit("benchmark command failed: %s\n%s" % (" ".join(argv), p.stderr.decode()))
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, rss if rss > before else None


def build(image, commands, home):
    src = tempfile.mkdtemp(prefix="lb-bench-")
    with open(os.path.join(src, "buildspec.yml"), "w") as f:
        f.write("version: 0.2\nphases:\n  build:\n    commands:\n")
        for c in commands:
            f.write("      - '%s'\n" % c.replace("'", "''"))
    env = dict(os.environ, LOCALBUILD_HOME=home, NO_COLOR="1")
    return [BIN, "run", "-i", image, "-s", src, "--project", "bench"], env


def median(xs):
    return statistics.median(xs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="localbuild-test/busybox:1")
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    home = tempfile.mkdtemp(prefix="lb-bench-home-")

    one, env = build(a.image, ["true"], home)
    one_c = one + ["-c"]
    many, _ = build(a.image, ["true"] * 400, home)
    big, _ = build(a.image, [OUTPUT_CMD], home)
    docker_one = ["docker", "run", "--rm", a.image, "sh", "-c", "true"]
    docker_big = ["docker", "run", "--rm", a.image, "sh", "-c", OUTPUT_CMD]

    timed(docker_one)  # warm-up: page cache, image layers
    timed(one, env)
    r = {k: [] for k in ("d1", "l1", "l1c", "l400", "dbig", "lbig")}
    for _ in range(a.rounds):
        r["d1"].append(timed(docker_one)[0])
        r["l1"].append(timed(one, env)[0])
        r["l1c"].append(timed(one_c, env)[0])
        r["l400"].append(timed(many, env)[0])
        r["dbig"].append(timed(docker_big)[0])
        r["lbig"].append(timed(big, env)[0])
    # Peak RSS of localbuild alone during the 200 MB build (in a fresh child).
    rss = subprocess.run(
        [sys.executable, "-c",
         "import resource,subprocess,sys,os;"
         "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,env=dict(os.environ));"
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"] + big,
        env=env, capture_output=True, text=True, check=True).stdout.strip()
    rss_mb = int(rss) / 1024

    d1, l1, l400 = median(r["d1"]), median(r["l1"]), median(r["l400"])
    l1c = median(r["l1c"])
    dbig, lbig = median(r["dbig"]), median(r["lbig"])
    per_cmd_ms = (l400 - l1) / 399 * 1000
    rows = [
        ("start overhead (1 command)", "%.2f s vs %.2f s" % (l1, d1), "%.2fx" % (l1 / d1), "<= 1.5x (aim 1.2x)"),
        ("  the same with -c (no local AWS)", "%.2f s vs %.2f s" % (l1c, d1), "%.2fx" % (l1c / d1), "(for comparison)"),
        ("per-command overhead (400 commands)", "%.2f s total" % l400, "%.2f ms" % per_cmd_ms, "<= 5 ms (aim 2 ms)"),
        ("200 MB of output", "%.2f s vs %.2f s" % (lbig, dbig), "%.2fx" % (lbig / dbig), "<= 1.5x (aim 1.1x)"),
        ("peak RSS during 200 MB", "", "%.1f MB" % rss_mb, "<= 64 MB (aim 32 MB)"),
    ]
    print("localbuild benchmark, image %s, median of %d rounds, baseline: docker run --rm" % (a.image, a.rounds))
    for name, raw, value, target in rows:
        print("  %-38s %-24s %-10s target %s" % (name, raw, value, target))


if __name__ == "__main__":
    main()
