//! Test harness: a throwaway Docker registry on loopback.
//!
//! Starts Debian's `docker-registry` (the CNCF distribution registry,
//! `/usr/bin/docker-registry serve CONFIG`) on `127.0.0.1:<free port>` with
//! filesystem storage and htpasswd (bcrypt) auth inside a [`TempDir`]. The
//! process is killed and reaped on drop. Needs `docker-registry` and
//! `htpasswd` (`apt-get install docker-registry apache2-utils`).
//!
//! The small blocking HTTP/1.1 client below is enough to query the registry
//! API; it only talks to the loopback address of the registry it started.

#![allow(dead_code)] // helpers are shared with other test modules

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
const READY_DEADLINE: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(10);
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";

/// A running registry. Dropping it stops the process.
pub struct Registry {
    child: Option<Child>,
    addr: SocketAddr,
    user: String,
    password: String,
    dir: TempDir,
}

impl Registry {
    /// Start a registry with htpasswd auth and wait until `GET /v2/` answers.
    pub fn start() -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} missing: apt-get install docker-registry"
        );
        let mut dir = tempfile::Builder::new()
            .prefix("localbuild-registry-")
            .tempdir()
            .expect("create registry temp dir");
        let user = "localbuild".to_owned();
        let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
        let htpasswd_path = dir.path().join("htpasswd");
        let out = Command::new("htpasswd")
            .args(["-Bbn", &user, &password])
            .stdin(Stdio::null())
            .output()
            .expect("run htpasswd (apt-get install apache2-utils)");
        assert!(out.status.success(), "htpasswd failed: {out:?}");
        std::fs::write(&htpasswd_path, &out.stdout).expect("write htpasswd file");

        // The port is picked by binding :0 and releasing it; another process could
        // grab it in between, so retry a few times if the registry dies early.
        let mut last_err = String::new();
        for _ in 0..3 {
            let addr = free_loopback_addr();
            let config = dir.path().join("config.yml");
            std::fs::write(&config, config_yaml(dir.path(), addr, &htpasswd_path))
                .expect("write registry config");
            let log_path = dir.path().join("registry.log");
            let log = std::fs::File::create(&log_path).expect("create registry log");
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .expect("spawn docker-registry");
            let mut reg = Registry {
                child: Some(child),
                addr,
                user: user.clone(),
                password: password.clone(),
                dir,
            };
            match reg.wait_ready() {
                Ok(()) => return reg,
                Err(e) => {
                    last_err = format!("{e}\n--- registry log ---\n{}", reg.log());
                    reg.stop();
                    dir = std::mem::replace(&mut reg.dir, TempDir::new().expect("temp dir"));
                }
            }
        }
        panic!("registry did not become ready: {last_err}");
    }

    /// `127.0.0.1:<port>`, usable as the registry part of an image reference.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The registry's combined stdout/stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Tags of repository `name` (`GET /v2/<name>/tags/list`); empty if unknown.
    pub fn tags(&self, name: &str) -> Result<Vec<String>, String> {
        let resp = self.request("GET", &format!("/v2/{name}/tags/list"), &[])?;
        if resp.status == 404 {
            return Ok(Vec::new());
        }
        if resp.status != 200 {
            return Err(format!(
                "tags/list of {name}: HTTP {}: {}",
                resp.status,
                resp.body_text()
            ));
        }
        let v: serde_json::Value =
            serde_json::from_slice(&resp.body).map_err(|e| format!("tags/list JSON: {e}"))?;
        Ok(v.get("tags")
            .and_then(|t| t.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// `Docker-Content-Digest` of `name:tag` (`HEAD /v2/<name>/manifests/<tag>`),
    /// `None` if the tag does not exist.
    pub fn manifest_digest(&self, name: &str, tag: &str) -> Result<Option<String>, String> {
        let resp = self.request(
            "HEAD",
            &format!("/v2/{name}/manifests/{tag}"),
            &[("Accept", MANIFEST_ACCEPT)],
        )?;
        match resp.status {
            200 => resp
                .header("docker-content-digest")
                .map(|d| Some(d.to_owned()))
                .ok_or_else(|| "manifest response without Docker-Content-Digest".to_owned()),
            404 => Ok(None),
            s => Err(format!("manifest {name}:{tag}: HTTP {s}")),
        }
    }

    /// One authenticated request to the registry.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, String> {
        let auth = format!(
            "Basic {}",
            base64(format!("{}:{}", self.user, self.password).as_bytes())
        );
        let mut all: Vec<(&str, &str)> = vec![("Authorization", &auth)];
        all.extend_from_slice(headers);
        http_request(self.addr, method, path, &all)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let child = &mut self.child;
        let addr = self.addr;
        // Ok: the registry gave its answer (it serves, or it never will); Err: not yet.
        let answer = crate::harness::within(READY_DEADLINE, || {
            if let Some(status) = child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Ok(Err(format!("docker-registry exited early: {status}")));
            }
            // Unauthenticated: an auth-enabled registry answers 401 once it serves.
            match http_request(addr, "GET", "/v2/", &[]) {
                Ok(r) if r.status == 401 || r.status == 200 => Ok(Ok(())),
                Ok(r) => Ok(Err(format!("GET /v2/ answered HTTP {}", r.status))),
                Err(e) => Err(e),
            }
        });
        answer.unwrap_or_else(|last| {
            Err(format!(
                "GET /v2/ not answering after {READY_DEADLINE:?}: {}",
                last.unwrap_or_default()
            ))
        })
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_loopback_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr")
}

fn config_yaml(dir: &Path, addr: SocketAddr, htpasswd: &Path) -> String {
    let storage: PathBuf = dir.join("storage");
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: {addr}\n  secret: localbuild-test-secret\n\
         auth:\n  htpasswd:\n    realm: localbuild-test\n    path: {htpasswd}\n",
        storage = storage.display(),
        htpasswd = htpasswd.display(),
    )
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Minimal blocking HTTP/1.1 client (one request per connection, no body sent).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, String> {
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(IO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        let _ = write!(req, "{k}: {v}\r\n");
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;

    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| format!("read status: {e}"))?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader
            .read_line(&mut line)
            .map_err(|e| format!("read header: {e}"))?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let mut resp = HttpResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if method == "HEAD" || status == 204 || status == 304 {
        return Ok(resp);
    }
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    if chunked {
        loop {
            line.clear();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("read chunk size: {e}"))?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| format!("bad chunk size {line:?}: {e}"))?;
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size + 2]; // data + CRLF
            reader
                .read_exact(&mut chunk)
                .map_err(|e| format!("read chunk: {e}"))?;
            resp.body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(len) = resp
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        resp.body.resize(len, 0);
        reader
            .read_exact(&mut resp.body)
            .map_err(|e| format!("read body: {e}"))?;
    } else {
        reader
            .read_to_end(&mut resp.body)
            .map_err(|e| format!("read body: {e}"))?;
    }
    Ok(resp)
}

/// Standard base64 with padding (for the Basic auth header).
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Run the docker CLI with a private config dir; returns stdout, panics with stderr.
pub fn docker_cli(config_dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_CONFIG", config_dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().expect("spawn docker CLI");
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        si.write_all(input.as_bytes()).expect("write docker stdin");
    }
    let out = child.wait_with_output().expect("wait for docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes a local image tag on drop (best effort), so failed tests leave nothing behind.
pub struct TagGuard(pub String);

impl Drop for TagGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["image", "rm", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn base64_matches_rfc4648_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foobar", "Zm9vYmFy"),
    ];
    for (i, o) in cases {
        assert_eq!(base64(i.as_bytes()), o);
    }
}

#[test]
fn registry_harness_push_and_query() {
    let reg = Registry::start();
    // Auth is enforced: unauthenticated /v2/ is 401, authenticated is 200.
    assert_eq!(
        http_request(reg.addr, "GET", "/v2/", &[]).unwrap().status,
        401
    );
    assert_eq!(reg.request("GET", "/v2/", &[]).unwrap().status, 200);

    let cfg = TempDir::new().unwrap();
    let addr = reg.addr();
    docker_cli(
        cfg.path(),
        &["login", &addr, "--username", reg.user(), "--password-stdin"],
        Some(reg.password()),
    );
    let target = format!("{addr}/harness/test:1");
    let _guard = TagGuard(target.clone());
    docker_cli(
        cfg.path(),
        &["tag", "localbuild-test/busybox:1", &target],
        None,
    );
    // Plain HTTP to a loopback registry works without daemon settings
    // (127.0.0.0/8 is an insecure registry by default).
    docker_cli(cfg.path(), &["push", &target], None);

    let tags = reg.tags("harness/test").unwrap();
    assert!(
        tags.contains(&"1".to_owned()),
        "tags: {tags:?}\n{}",
        reg.log()
    );
    let digest = reg
        .manifest_digest("harness/test", "1")
        .unwrap()
        .expect("digest");
    assert!(
        digest.starts_with("sha256:") && digest.len() == 7 + 64,
        "digest {digest:?}"
    );
    assert_eq!(reg.manifest_digest("harness/test", "nope").unwrap(), None);
    assert!(reg.tags("harness/missing").unwrap().is_empty());
}
