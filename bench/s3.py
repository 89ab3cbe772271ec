#!/usr/bin/env python3
"""localbuild's S3 benchmark, in one run.

Usage: .venv/bin/python3 bench/s3.py [--bin PATH] [--mb N] [--rounds R] [--seconds S]
                                     [--connections C] [--size BYTES] [--venv DIR]

Needs a release build of localbuild (`cargo build --release`; --bin for another binary), Docker,
the test image localbuild-test/awscli:1 (scripts/build-test-images.sh), `wrk` (Debian's
package) and ministack (PyPI `ministack`, installed into the venv DIR, default
/tmp/bench-venv, on first use). Every server listens on 127.0.0.1 only.

Measures:
  1. `aws s3 cp` of an N MB file (default 200) inside a `localbuild run` build, to the build's
     own endpoint, timed in the build around the command alone, vs `docker cp` of a file of
     the same size into a running container; median of R rounds       (target <= 2x docker cp)
  2. PutObject and GetObject of one SIZE-byte object (default 4096) with wrk, C connections for
     S seconds, against `localbuild serve` and against ministack's S3: requests per second
     (both servers unauthenticated; the same signed-looking request replayed; the payload
     declared UNSIGNED-PAYLOAD so neither hashes it for a signature)     (reported side by side)
Every server, container and temporary folder this starts is removed on any exit.
"""
import argparse, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "localbuild")
IMAGE = "localbuild-test/awscli:1"
DEADLINE = 120


class Cleanup:
    def __init__(self):
        self.procs, self.dirs, self.containers = [], [], []

    def mkdtemp(self, prefix):
        d = tempfile.mkdtemp(prefix=prefix)
        self.dirs.append(d)
        return d

    def spawn(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
        for c in self.containers:
            subprocess.run(["docker", "rm", "-f", c], capture_output=True)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def aws_cp_in_build(binary, home, mb):
    """Seconds `aws s3 cp` of an mb-MB file takes inside a build (timed in the build)."""
    src = tempfile.mkdtemp(dir=home)
    now = "$(head -1 \"$(command -v aws)\" | cut -c3-) -c 'import time; print(time.time())'"
    spec = ("version: 0.2\nphases:\n  build:\n    commands:\n"
            "      - dd if=/dev/zero of=big.bin bs=1048576 count=%d 2>/dev/null\n"
            "      - aws s3 mb s3://bench >/dev/null 2>&1 || true\n"
            "      - echo x > tiny.txt\n"
            "      - a=$(%s); aws s3 cp --no-progress --only-show-errors tiny.txt s3://bench/tiny.txt; b=$(%s); echo \"tiny_seconds $a $b\"\n"
            "      - a=$(%s); aws s3 cp --no-progress --only-show-errors big.bin s3://bench/big.bin; b=$(%s); echo \"cp_seconds $a $b\"\n"
            % (mb, now, now, now, now))
    with open(os.path.join(src, "buildspec.yml"), "w") as f:
        f.write(spec)
    env = dict(os.environ, LOCALBUILD_HOME=home, NO_COLOR="1")
    out = subprocess.run([binary, "run", "-q", "-s", src, "-i", IMAGE, "--project", "bench"],
                         env=env, capture_output=True, text=True, timeout=DEADLINE * 5)
    m = re.search(r"^cp_seconds ([0-9.]+) ([0-9.]+)$", out.stdout, re.M)
    t = re.search(r"^tiny_seconds ([0-9.]+) ([0-9.]+)$", out.stdout, re.M)
    if out.returncode != 0 or not m or not t:
        sys.exit("the aws s3 cp build failed:\n" + out.stdout + out.stderr)
    return float(m.group(2)) - float(m.group(1)), float(t.group(2)) - float(t.group(1))


def docker_cp(cl, tmp, mb):
    """Seconds `docker cp` of an mb-MB file into a running container takes."""
    path = os.path.join(tmp, "big.bin")
    with open(path, "wb") as f:
        f.truncate(mb * 1024 * 1024)
    name = "localbuild-bench-cp-%d" % os.getpid()
    cl.containers.append(name)
    subprocess.run(["docker", "run", "-d", "--name", name, IMAGE, "sleep", "600"],
                   check=True, capture_output=True)
    t = time.perf_counter()
    subprocess.run(["docker", "cp", path, name + ":/tmp/big.bin"], check=True, capture_output=True)
    took = time.perf_counter() - t
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    cl.containers.remove(name)
    return took


def start_serve(cl, binary, home):
    port = free_port()
    err = open(os.path.join(home, "serve.err"), "w")
    p = cl.spawn([binary, "serve", "--listen", "127.0.0.1:%d" % port],
                 env=dict(os.environ, LOCALBUILD_HOME=home), stdout=subprocess.DEVNULL, stderr=err)
    wait_port(p, port)
    return "http://127.0.0.1:%d" % port


def start_ministack(cl, venv, tmp):
    exe = os.path.join(venv, "bin", "ministack")
    if not os.path.exists(exe):
        print("installing ministack into %s" % venv, file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "ministack"], check=True)
    port = free_port()
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
                    return url
        except OSError:
            time.sleep(0.05)
    sys.exit("ministack did not start; its log:\n" + open(log.name).read())


def wait_port(p, port):
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline and p.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("a server did not start on port %d" % port)


def s3_client(endpoint):
    import boto3
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="AKIDBENCH", aws_secret_access_key="bench-secret")


LUA = """
wrk.method = "%(method)s"
wrk.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=AKIDBENCH/%(day)s/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=%(sig)s"
wrk.headers["x-amz-date"] = "%(stamp)s"
wrk.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
%(body)s
done = function(summary, latency, requests)
  io.write(string.format("rps %%.1f errors %%d\\n", summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def wrk(tmp, url, method, size, seconds, connections):
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    body = ""
    if method == "PUT":
        payload = os.path.join(tmp, "payload.bin")
        with open(payload, "wb") as f:
            f.write(b"x" * size)
        body = 'local f = io.open("%s", "rb"); wrk.body = f:read("*a"); f:close()' % payload
    script = os.path.join(tmp, "%s.lua" % method)
    with open(script, "w") as f:
        f.write(LUA % {"method": method, "day": stamp[:8], "stamp": stamp, "sig": "0" * 64,
                       "body": body})
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", "%ds" % seconds,
                          "-s", script, url], capture_output=True, text=True,
                         timeout=seconds + 60)
    m = re.search(r"^rps ([0-9.]+) errors (\d+)$", out.stdout, re.M)
    if not m:
        sys.exit("wrk failed:\n" + out.stdout + out.stderr)
    return float(m.group(1)), int(m.group(2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=BIN)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--venv", default="/tmp/bench-venv")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit("no binary at %s: cargo build --release, or --bin" % a.bin)
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    cl = Cleanup()
    try:
        home = cl.mkdtemp("lb-s3-bench-")
        tmp = cl.mkdtemp("lb-s3-bench-tmp-")
        cp, tiny, dk = [], [], []
        for _ in range(a.rounds):
            big, small = aws_cp_in_build(a.bin, home, a.mb)
            cp.append(big)
            tiny.append(small)
            dk.append(docker_cp(cl, tmp, a.mb))
        mcp, mdk, mtiny = statistics.median(cp), statistics.median(dk), statistics.median(tiny)
        print("1. %d MB into the build: aws s3 cp %.2f s (%s), docker cp %.2f s (%s): %.2fx"
              % (a.mb, mcp, " ".join("%.2f" % x for x in cp), mdk,
                 " ".join("%.2f" % x for x in dk), mcp / mdk))
        print("   aws s3 cp of a 2-byte file (the CLI's start and one request): %.2f s; "
              "without it %.2f s vs %.2f s: %.2fx" % (mtiny, mcp - mtiny, mdk, (mcp - mtiny) / mdk))

        rows = []
        for name, url in (("localbuild serve", start_serve(cl, a.bin, cl.mkdtemp("lb-s3-serve-"))),
                          ("ministack", start_ministack(cl, a.venv, cl.mkdtemp("lb-s3-ministack-")))):
            c = s3_client(url)
            c.create_bucket(Bucket="bench")
            c.put_object(Bucket="bench", Key="obj", Body=b"x" * a.size)
            put = wrk(tmp, url + "/bench/obj", "PUT", a.size, a.seconds, a.connections)
            get = wrk(tmp, url + "/bench/obj", "GET", a.size, a.seconds, a.connections)
            assert c.get_object(Bucket="bench", Key="obj")["Body"].read() == b"x" * a.size
            rows.append((name, put, get))
        print("2. %d-byte objects, wrk %d connections x %d s:" % (a.size, a.connections, a.seconds))
        for name, put, get in rows:
            print("   %-17s PutObject %8.1f req/s (%d errors)   GetObject %8.1f req/s (%d errors)"
                  % (name, put[0], put[1], get[0], get[1]))
        (_, lp, lg), (_, mp, mg) = rows
        print("   ratio localbuild/ministack: PutObject %.2fx, GetObject %.2fx"
              % (lp[0] / mp[0], lg[0] / mg[0]))
    finally:
        cl.close()


if __name__ == "__main__":
    main()
