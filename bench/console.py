#!/usr/bin/env python3
"""localbuild console benchmark: the builds page with 10,000 builds in the history.

Usage: bench/console.py [--bin PATH] [--builds N] [--requests R] [--image IMAGE]

Starts `localbuild serve` (default target/release/localbuild) on 127.0.0.1 with a temporary
LOCALBUILD_HOME, runs one real build (Docker, the busybox test image) to have a genuine record,
then copies that record into the history database until it holds N builds (default 10,000)
over several projects and statuses, and requests the console's pages R times each:
  1. /builds                      the newest page, no filter
  2. /builds?status=FAILED        a status filter
  3. /builds?project=bench-3      a project filter
  4. /builds?next=...             the 40th page (keyset paging, no OFFSET)
For each it reports the server's own time (its `Server-Timing: render;dur=` header: the SQLite
page query plus the HTML rendering) and the client's wall time, median / p99 / max.
Target: server time p99 < 100 ms. The server and its folder are removed on any exit.
"""
import argparse, json, os, re, shutil, signal, sqlite3, statistics, subprocess, sys, tempfile
import time, urllib.request, uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "localbuild")
TARGET_MS = 100.0
DEADLINE = 120  # seconds: the bound of every wait


def api(addr, target, body):
    req = urllib.request.Request(
        "http://%s/" % addr, data=json.dumps(body).encode(), method="POST",
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"})
    with urllib.request.urlopen(req, timeout=DEADLINE) as r:
        return json.loads(r.read() or b"{}")


def get(addr, path):
    start = time.perf_counter()
    with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=DEADLINE) as r:
        body = r.read().decode()
        timing = r.headers.get("Server-Timing", "")
    wall = (time.perf_counter() - start) * 1000
    m = re.search(r"dur=([0-9.]+)", timing)
    return body, (float(m.group(1)) if m else float("nan")), wall


def fill(db_path, template, n):
    """Copy the template row until the history holds n builds (several projects/statuses)."""
    con = sqlite3.connect(db_path, timeout=30)
    row = con.execute(
        "SELECT arn, start_time, json, log_path, owner_pid, owner_start FROM builds WHERE id = ?",
        (template,)).fetchone()
    arn, start, doc, log_path, pid, ostart = row
    record = json.loads(doc)
    statuses = ["SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED", "STOPPED"]
    numbers = {"bench-0": 1}  # the template is bench-0 number 1
    rows = []
    for i in range(n - 1):
        project = "bench-%d" % (i % 7)
        numbers[project] = numbers.get(project, 0) + 1
        bid = "%s:%s" % (project, uuid.uuid4())
        status = statuses[i % len(statuses)]
        t = start - 60 * (i + 1)
        record.update(id=bid, buildNumber=numbers[project], projectName=project,
                      buildStatus=status, startTime=t,
                      arn=arn.rsplit(":build/", 1)[0] + ":build/" + bid)
        if record.get("endTime"):
            record["endTime"] = t + 7
        rows.append((bid, project, numbers[project], record["arn"], t, status, 1,
                     json.dumps(record), log_path, pid, ostart))
    with con:
        con.executemany(
            "INSERT INTO builds (id, project, number, arn, start_time, status, complete, json, "
            "log_path, owner_pid, owner_start) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        for project, last in numbers.items():
            con.execute("INSERT OR REPLACE INTO build_counters (project, last_number) VALUES (?,?)",
                        (project, last))
    total = con.execute("SELECT count(*) FROM builds").fetchone()[0]
    con.close()
    return total


def summary(label, server, wall):
    server, wall = sorted(server), sorted(wall)
    p99 = lambda xs: xs[min(len(xs) - 1, int(len(xs) * 0.99))]
    ok = "ok" if p99(server) < TARGET_MS else "OVER TARGET"
    print("%-28s server ms: median %6.2f  p99 %6.2f  max %6.2f | wall ms: median %6.2f  p99 %6.2f  [%s]"
          % (label, statistics.median(server), p99(server), server[-1],
             statistics.median(wall), p99(wall), ok))
    return p99(server) < TARGET_MS


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=BIN)
    ap.add_argument("--builds", type=int, default=10_000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--image", default="localbuild-test/busybox:1")
    args = ap.parse_args()
    if not os.path.exists(args.bin):
        sys.exit("no %s: run `cargo build --release` first (or pass --bin)" % args.bin)
    home = tempfile.mkdtemp(prefix="lb-console-bench-")
    server = None
    try:
        server = subprocess.Popen(
            [args.bin, "serve", "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=dict(os.environ, LOCALBUILD_HOME=home), text=True)
        addr = None
        for line in server.stdout:
            if line.startswith("export AWS_ENDPOINT_URL=http://"):
                addr = line.strip().split("http://", 1)[1]
                break
        if not addr:
            sys.exit("localbuild serve did not start")
        spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hello\n"
        api(addr, "CodeBuild_20161006.CreateProject", {
            "name": "bench-0", "source": {"type": "NO_SOURCE", "buildspec": spec},
            "artifacts": {"type": "NO_ARTIFACTS"}, "serviceRole": "arn:aws:iam::0:role/x",
            "environment": {"type": "LINUX_CONTAINER", "image": args.image,
                            "computeType": "BUILD_GENERAL1_SMALL"}})
        bid = api(addr, "CodeBuild_20161006.StartBuild", {"projectName": "bench-0"})["build"]["id"]
        deadline = time.time() + DEADLINE
        while not api(addr, "CodeBuild_20161006.BatchGetBuilds", {"ids": [bid]})["builds"][0]["buildComplete"]:
            if time.time() > deadline:
                sys.exit("the template build did not finish")
            time.sleep(0.2)
        total = fill(os.path.join(home, "localbuild.db"), bid, args.builds)
        print("history: %d builds; %d requests per page" % (total, args.requests))

        # The 40th page's link, by following "Older" links.
        path = "/builds"
        for _ in range(39):
            body, _, _ = get(addr, path)
            m = re.search(r'href="(/builds\?[^"]*next=[^"]*)" rel="next"', body)
            path = m.group(1).replace("&amp;", "&")
        pages = [("/builds", "/builds"), ("status=FAILED", "/builds?status=FAILED"),
                 ("project=bench-3", "/builds?project=bench-3"), ("page 40 (keyset)", path)]
        ok = True
        for label, p in pages:
            get(addr, p)  # warm the statement cache
            server_ms, wall_ms = [], []
            for _ in range(args.requests):
                body, s, w = get(addr, p)
                server_ms.append(s)
                wall_ms.append(w)
            assert body.count("<tr>") >= 25, "a full page of builds"
            ok &= summary(label, server_ms, wall_ms)
        sys.exit(0 if ok else 1)
    finally:
        if server and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
