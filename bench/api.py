#!/usr/bin/env python3
"""localbuild serve benchmark: the CodeBuild API against ministack, and against `localbuild run`, in one run.

Usage: .venv/bin/python3 bench/api.py [--bin PATH] [--image IMAGE] [--requests N]
                                      [--threads T] [--per-thread M] [--rounds R] [--venv DIR]

Needs boto3 in the interpreter that runs it (the repository's .venv has it), a release build
of localbuild (`cargo build --release`; --bin to use another binary), Docker and the test image.
ministack (PyPI `ministack`) is installed into the venv DIR (default /tmp/bench-venv) on
first use. Both servers listen on 127.0.0.1 only and are driven by the same boto3 client code.

Measures:
  1. BatchGetBuilds of one existing build, localbuild serve vs ministack: req/s, p50/p99 latency
     and server CPU per request, with 1 client thread x N requests and with T threads x M
     requests (one boto3 client per thread)                               (target >= 2x req/s)
  2. StartBuild to the first `[Container]` line readable through logs.GetLogEvents (polled
     every 10 ms), vs `localbuild run` of the same one-command build until its first
     `[Container]` line on stdout, median of R rounds                     (target <= 1.3x)
The boto3 client shares the machine's cores with the servers and costs several times what
either server does per request, so req/s and latency are bounded by the client; the rows
"server CPU per request" (from /proc) compare the two servers' own work.
ministack's CodeBuild records builds without running them (its StartBuild returns a SUCCEEDED
record at once, with no log events), so (2) is localbuild's alone.
Every server and build this starts is stopped, and its temporary folders removed, on any exit.
"""
import argparse, os, queue, shutil, signal, socket, statistics, subprocess, sys, tempfile
import threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "localbuild")
BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands:\n      - 'true'\n"
DEADLINE = 60  # seconds: the bound of every wait on a server or a build

# The client never reads a profile, a credentials file or instance metadata: loopback only.
for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CA_BUNDLE"):
    os.environ.pop(k, None)
os.environ.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                  AWS_EC2_METADATA_DISABLED="true")
try:
    import boto3, botocore.config
except ImportError:
    sys.exit("boto3 is missing: run this with the repository's .venv/bin/python3")


class Cleanup:
    """Processes and folders to remove on exit, whatever the exit."""

    def __init__(self):
        self.procs, self.dirs = [], []

    def mkdtemp(self, prefix):
        d = tempfile.mkdtemp(prefix=prefix)
        self.dirs.append(d)
        return d

    def spawn(self, argv, stop=signal.SIGTERM, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append((p, stop))
        return p

    def close(self):
        for p, stop in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(stop)  # serve stops its builds on SIGINT, as on Ctrl-C
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for d in reversed(self.dirs):
            shutil.rmtree(d, ignore_errors=True)


def client(service, endpoint, pool=2):
    cfg = botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"},
                                 connect_timeout=5, read_timeout=30, max_pool_connections=pool)
    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test", config=cfg)


def cpu_seconds(pid):
    """user + system CPU time of a process, all its threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_localbuild(cl, binary, home):
    err = open(os.path.join(home, "serve.stderr"), "w")
    p = cl.spawn([binary, "serve", "--listen", "127.0.0.1:0"], stop=signal.SIGINT,
                 env=dict(os.environ, LOCALBUILD_HOME=home, NO_COLOR="1"),
                 stdout=subprocess.PIPE, stderr=err, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in p.stdout], daemon=True).start()
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            if p.poll() is not None:
                break
            continue
        if line.startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:"):
            return p, line.split("=", 1)[1].strip()
    sys.exit("localbuild serve did not start; its stderr:\n" + open(err.name).read())


def start_ministack(cl, venv, tmp):
    exe = os.path.join(venv, "bin", "ministack")
    if not os.path.exists(exe):
        print("installing ministack into %s" % venv, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "ministack"], check=True)
    port = free_port()
    # GATEWAY_PORT and BIND_HOST are ministack's own settings; its PID file goes to TMPDIR.
    # No persistence, no MQTT/SFTP listeners; WARNING keeps per-request INFO lines off.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "TMPDIR": tmp,
           "GATEWAY_PORT": str(port), "BIND_HOST": "127.0.0.1", "LOG_LEVEL": "WARNING",
           "IOT_MTLS_ENABLED": "0", "SFTP_ENABLED": "0"}
    log = open(os.path.join(tmp, "ministack.log"), "w")
    p = cl.spawn([exe], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with urllib.request.urlopen(url + "/_ministack/ready", timeout=2) as r:
                if r.status == 200:
                    return p, url
        except OSError:
            time.sleep(0.05)
    sys.exit("ministack did not start; its log:\n" + open(log.name).read())


def create_project(cb, name, image):
    cb.create_project(name=name, source={"type": "NO_SOURCE", "buildspec": BUILDSPEC},
                      artifacts={"type": "NO_ARTIFACTS"}, serviceRole="arn:aws:iam::000000000000:role/any",
                      environment={"type": "LINUX_CONTAINER", "image": image,
                                   "computeType": "BUILD_GENERAL1_SMALL"})


def wait_done(cb, build_id):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        b = cb.batch_get_builds(ids=[build_id])["builds"][0]
        if b["buildStatus"] != "IN_PROGRESS":
            return b
        time.sleep(0.05)
    sys.exit("build %s did not finish within %d s" % (build_id, DEADLINE))


def hammer(endpoint, pid, build_id, threads, per_thread):
    """threads clients x per_thread BatchGetBuilds: req/s, sorted latencies, and the server's and
    this client's CPU seconds per request."""
    clients = [client("codebuild", endpoint) for _ in range(threads)]
    for c in clients:  # warm-up: connections, the client's model, the server's lazy paths
        for _ in range(max(5, 50 // threads)):
            c.batch_get_builds(ids=[build_id])
    lat = [[] for _ in clients]
    errors = []
    gate = threading.Barrier(threads + 1)

    def work(c, out):
        try:
            gate.wait()
            for _ in range(per_thread):
                t = time.perf_counter()
                r = c.batch_get_builds(ids=[build_id])
                out.append(time.perf_counter() - t)
                if len(r["builds"]) != 1:
                    raise RuntimeError("BatchGetBuilds lost the build: %r" % r)
        except Exception as e:  # reported below, in the main thread
            errors.append(e)

    ts = [threading.Thread(target=work, args=(c, out), daemon=True) for c, out in zip(clients, lat)]
    for t in ts:
        t.start()
    cpu0, client0 = cpu_seconds(pid), time.process_time()
    gate.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join(DEADLINE * 2)
    wall = time.perf_counter() - t0
    cpu, client_cpu = cpu_seconds(pid) - cpu0, time.process_time() - client0
    if errors or any(t.is_alive() for t in ts):
        sys.exit("BatchGetBuilds failed: %r" % (errors[:1] or "timeout"))
    all_lat = sorted(x for out in lat for x in out)
    n = len(all_lat)
    return n / wall, all_lat, cpu / n, client_cpu / n


def pct(sorted_xs, q):
    return sorted_xs[min(len(sorted_xs) - 1, int(round(q * (len(sorted_xs) - 1))))]


def api_first_line(cb, logs, project):
    """Seconds from StartBuild's return to the first [Container] event; StartBuild's own time."""
    t = time.perf_counter()
    b = cb.start_build(projectName=project)["build"]
    t0 = time.perf_counter()
    call = t0 - t
    group, stream = b["logs"]["groupName"], b["logs"]["streamName"]
    first = None
    while first is None and time.perf_counter() - t0 < DEADLINE:
        try:
            ev = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)["events"]
        except logs.exceptions.ResourceNotFoundException:
            ev = []
        if any(e["message"].startswith("[Container]") for e in ev):
            first = time.perf_counter() - t0
        else:
            time.sleep(0.01)
    if first is None:
        sys.exit("no [Container] line in %s/%s within %d s" % (group, stream, DEADLINE))
    done = wait_done(cb, b["id"])
    if done["buildStatus"] != "SUCCEEDED":
        sys.exit("API build %s ended %s" % (b["id"], done["buildStatus"]))
    return first, call


def cli_first_line(cl, binary, image, src, home):
    """Seconds from spawning `localbuild run` to its first [Container] line on stdout."""
    t0 = time.perf_counter()
    p = cl.spawn([binary, "run", "-i", image, "-s", src, "--project", "bench-cli"],
                 env=dict(os.environ, LOCALBUILD_HOME=home, NO_COLOR="1"),
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    timer = threading.Timer(DEADLINE, p.kill)  # bounds the blocking reads below
    timer.start()
    first = None
    try:
        for line in p.stdout:
            if first is None and line.startswith("[Container]"):
                first = time.perf_counter() - t0
        rc = p.wait()
    finally:
        timer.cancel()
    if first is None or rc != 0:
        sys.exit("localbuild run failed (exit %s, first line %s)" % (rc, first))
    return first


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=BIN)
    ap.add_argument("--image", default="localbuild-test/busybox:1")
    ap.add_argument("--requests", type=int, default=2000, help="sequential BatchGetBuilds")
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--per-thread", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--venv", default="/tmp/bench-venv", help="where ministack is (or gets) installed")
    a = ap.parse_args()
    if subprocess.run([a.bin, "serve", "--help"], capture_output=True).returncode != 0:
        sys.exit("%s has no `serve`: build it (cargo build --release) or pass --bin" % a.bin)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that cleanup runs
    cl = Cleanup()
    try:
        run(a, cl)
    finally:
        cl.close()


def run(a, cl):
    lb_home = cl.mkdtemp("lb-api-home-")
    ms_tmp = cl.mkdtemp("lb-api-ministack-")
    lb_proc, lb_url = start_localbuild(cl, a.bin, lb_home)
    ms_proc, ms_url = start_ministack(cl, a.venv, ms_tmp)
    ms_version = subprocess.run(
        [os.path.join(a.venv, "bin", "python3"), "-c",
         "import importlib.metadata as m; print(m.version('ministack'))"],
        capture_output=True, text=True).stdout.strip()

    ids = {}
    for name, url in (("localbuild", lb_url), ("ministack", ms_url)):
        cb = client("codebuild", url)
        create_project(cb, "bench-api", a.image)
        b = wait_done(cb, cb.start_build(projectName="bench-api")["build"]["id"])
        if b["buildStatus"] != "SUCCEEDED":
            sys.exit("%s: the build %s ended %s" % (name, b["id"], b["buildStatus"]))
        ids[name] = b["id"]
    servers = (("localbuild", lb_url, lb_proc.pid), ("ministack", ms_url, ms_proc.pid))

    res = {}
    for label, threads, n in (("seq", 1, a.requests), ("conc", a.threads, a.per_thread)):
        for name, url, pid in servers:
            res[label, name] = hammer(url, pid, ids[name], threads, n)

    # StartBuild-to-first-line vs `localbuild run`, alternating which goes first.
    cb, logs = client("codebuild", lb_url), client("logs", lb_url)
    create_project(cb, "bench-first-line", a.image)
    src = cl.mkdtemp("lb-api-src-")
    with open(os.path.join(src, "buildspec.yml"), "w") as f:
        f.write(BUILDSPEC)
    cli_home = cl.mkdtemp("lb-api-cli-home-")
    api_first_line(cb, logs, "bench-first-line")  # warm-up
    cli_first_line(cl, a.bin, a.image, src, cli_home)
    api, calls, cli = [], [], []
    for i in range(a.rounds):
        for which in ((0, 1) if i % 2 == 0 else (1, 0)):
            if which == 0:
                first, call = api_first_line(cb, logs, "bench-first-line")
                api.append(first)
                calls.append(call)
            else:
                cli.append(cli_first_line(cl, a.bin, a.image, src, cli_home))

    rows = []
    for label, what in (("seq", "1 thread x %d" % a.requests),
                        ("conc", "%d threads x %d" % (a.threads, a.per_thread))):
        (lr, ll, lc, lk), (mr, ml, mc, mk) = res[label, "localbuild"], res[label, "ministack"]
        rows += [
            ("BatchGetBuilds, " + what, "%.0f vs %.0f req/s" % (lr, mr), "%.2fx" % (lr / mr), ">= 2x"),
            ("  p50 latency", "%.2f vs %.2f ms" % (pct(ll, .5) * 1e3, pct(ml, .5) * 1e3),
             "%.2fx" % (pct(ll, .5) / pct(ml, .5)), ""),
            ("  p99 latency", "%.2f vs %.2f ms" % (pct(ll, .99) * 1e3, pct(ml, .99) * 1e3),
             "%.2fx" % (pct(ll, .99) / pct(ml, .99)), ""),
            ("  server CPU per request", "%.3f vs %.3f ms" % (lc * 1e3, mc * 1e3),
             "%.2fx" % (lc / mc) if mc else "-", ""),
            ("  boto3 client CPU per request", "%.3f vs %.3f ms" % (lk * 1e3, mk * 1e3), "", ""),
        ]
    ma, mcli = statistics.median(api), statistics.median(cli)
    rows += [
        ("StartBuild to first [Container] line", "%.2f s vs %.2f s" % (ma, mcli), "%.2fx" % (ma / mcli),
         "<= 1.3x"),
        ("  StartBuild call itself", "", "%.1f ms" % (statistics.median(calls) * 1e3), ""),
    ]
    print("localbuild API benchmark, %s; boto3 %s, the same client for both" % (a.bin, boto3.__version__))
    print("BatchGetBuilds: localbuild serve vs ministack %s (its builds are records only, never run);"
          % ms_version)
    print("first line: GetLogEvents polled every 10 ms vs `localbuild run`, image %s, median of %d rounds"
          % (a.image, a.rounds))
    for name, raw, value, target in rows:
        print("  %-38s %-26s %-8s %s" % (name, raw, value, "target " + target if target else ""))


if __name__ == "__main__":
    main()
