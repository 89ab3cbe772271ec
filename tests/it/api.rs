//! The API test client, shared by every test that talks to `localbuild serve`: a real server
//! process on a free port with a temporary `LOCALBUILD_HOME` ([`Serve`]), the real `aws` CLI
//! against it ([`Serve::aws`], [`aws_cli`]), CodeBuild's calls the tests make again and again
//! (projects, builds, batches, each awaited with [`crate::harness::eventually`]), and plain HTTP
//! for what the aws CLI never sends ([`http`], [`get`], [`Serve::post`]).

#![allow(dead_code)] // helpers shared by several test modules

use crate::harness::{eventually, within};
use serde_json::{Value, json};
use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The tiny test image (`scripts/build-test-images.sh`).
pub(crate) const IMAGE: &str = crate::harness::IMAGE;

/// The service role every test project names (the local server accepts any).
pub(crate) const ROLE: &str = "arn:aws:iam::000000000000:role/any";

/// A running `localbuild serve`.
pub(crate) struct Serve {
    child: Child,
    /// `127.0.0.1:PORT`
    pub(crate) addr: String,
    pub(crate) home: tempfile::TempDir,
    /// (access key, secret) the aws CLI signs with.
    pub(crate) keys: (String, String),
}

impl Serve {
    pub(crate) fn start(args: &[&str]) -> Serve {
        Serve::start_in(tempfile::tempdir().unwrap(), args)
    }

    /// Start a server on an existing `LOCALBUILD_HOME` (a restart).
    pub(crate) fn start_in(home: tempfile::TempDir, args: &[&str]) -> Serve {
        Serve::spawn(home, args, Stdio::inherit())
    }

    /// Start a server on `home` whose stderr goes to `stderr` (to read what it says).
    pub(crate) fn start_with_stderr(
        home: tempfile::TempDir,
        args: &[&str],
        stderr: std::fs::File,
    ) -> Serve {
        Serve::spawn(home, args, Stdio::from(stderr))
    }

    /// Stop the server as Ctrl-C does (SIGTERM) and wait for it; its `LOCALBUILD_HOME`, to
    /// restart on.
    pub(crate) fn terminate(mut self) -> tempfile::TempDir {
        self.stop();
        std::mem::replace(&mut self.home, tempfile::tempdir().unwrap())
    }

    fn spawn(home: tempfile::TempDir, args: &[&str], stderr: Stdio) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_localbuild"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("LOCALBUILD_HOME", home.path())
            .env_remove("LOCALBUILD_LOG")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("localbuild serve starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            let line = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("serve prints its address");
            if let Some(url) = line.strip_prefix("export AWS_ENDPOINT_URL=http://") {
                break url.to_owned();
            }
        };
        Serve {
            child,
            addr,
            home,
            keys: ("test".into(), "test".into()),
        }
    }

    /// Start a server that accepts only requests signed with this key (`--credentials`, a
    /// shared credentials file in its home); the aws CLI signs with it.
    pub(crate) fn with_credentials(access_key_id: &str, secret: &str) -> Serve {
        let home = tempfile::tempdir().unwrap();
        let creds = home.path().join("credentials");
        std::fs::write(
            &creds,
            format!(
                "[default]\naws_access_key_id = {access_key_id}\naws_secret_access_key = {secret}\n"
            ),
        )
        .unwrap();
        let mut s = Serve::start_in(home, &["--credentials", creds.to_str().unwrap()]);
        s.keys = (access_key_id.into(), secret.into());
        s
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` the server (no shutdown, no cleanup); its `LOCALBUILD_HOME`, to restart on.
    pub(crate) fn kill_9(&mut self) -> tempfile::TempDir {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-9", &pid])
                .status()
                .unwrap()
                .success()
        );
        let _ = self.child.wait();
        std::mem::replace(&mut self.home, tempfile::tempdir().unwrap())
    }

    /// Run `aws ARGS --output json` against this server; the parsed output, or the error text.
    pub(crate) fn aws(&self, args: &[&str]) -> Result<Value, String> {
        aws_cli(&format!("http://{}", self.addr), &self.keys, args)
    }

    /// `aws ARGS`, which must succeed; its output.
    pub(crate) fn ok(&self, args: &[&str]) -> Value {
        self.aws(args)
            .unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
    }

    /// CreateProject for `name` building `source` (the aws CLI's `--source` JSON) on the test
    /// image, without artifacts; change it before [`NewProject::create`].
    pub(crate) fn project(&self, name: &str, source: Value) -> NewProject<'_> {
        NewProject {
            serve: self,
            name: name.to_owned(),
            source,
            artifacts: json!({"type": "NO_ARTIFACTS"}),
            environment: json!({"type": "LINUX_CONTAINER", "image": IMAGE,
                                "computeType": "BUILD_GENERAL1_SMALL"}),
            extra: vec![],
        }
    }

    /// A project without source whose inline buildspec runs `commands` in BUILD.
    pub(crate) fn create_project(&self, name: &str, commands: &[&str]) -> Value {
        self.project(name, no_source(&inline_buildspec(commands)))
            .create()
    }

    /// A project whose inline buildspec is a batch.
    pub(crate) fn create_batch_project(&self, name: &str, buildspec: &str) -> Value {
        self.project(name, no_source(buildspec))
            .arg("--build-batch-config")
            .arg("serviceRole=arn:aws:iam::000000000000:role/any,combineArtifacts=false,restrictions={maximumBuildsAllowed=5}")
            .create()
    }

    pub(crate) fn start_build(&self, project: &str) -> Value {
        self.ok(&["codebuild", "start-build", "--project-name", project])["build"].clone()
    }

    pub(crate) fn build(&self, id: &str) -> Value {
        let out = self.ok(&["codebuild", "batch-get-builds", "--ids", id]);
        out["builds"][0].clone()
    }

    /// BatchGetBuilds until `cond` holds (at most `secs`); the build.
    pub(crate) fn wait(
        &self,
        id: &str,
        secs: u64,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        read_until(what, secs, "build", || self.build(id), cond)
    }

    pub(crate) fn wait_complete(&self, id: &str) -> Value {
        self.wait(id, 120, "buildComplete", |b| b["buildComplete"] == true)
    }

    pub(crate) fn batch(&self, id: &str) -> Value {
        let out = self.ok(&["codebuild", "batch-get-build-batches", "--ids", id]);
        out["buildBatches"][0].clone()
    }

    /// BatchGetBuildBatches until `cond` holds (at most `secs`); the batch.
    pub(crate) fn wait_batch(
        &self,
        id: &str,
        secs: u64,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        read_until(what, secs, "batch", || self.batch(id), cond)
    }

    /// A raw JSON 1.1 POST (for what the aws CLI never sends): status and JSON body.
    pub(crate) fn post(&self, target: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.addr,
            body.len()
        );
        if let Some(t) = target {
            req.push_str(&format!("X-Amz-Target: {t}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        // The server may answer (and close) before reading a body over its limit.
        let _ = s.write_all(body);
        let mut resp = Vec::new();
        let _ = s.read_to_end(&mut resp);
        let text = String::from_utf8_lossy(&resp);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Serve {
    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM: the server stops its builds and exits 0.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let child = &mut self.child;
        if within(Duration::from_secs(60), || {
            matches!(child.try_wait(), Ok(Some(_)))
        })
        .is_ok()
        {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `read` until `cond` holds (at most `secs`); the last value read (`noun` names it in the
/// failure).
fn read_until(
    what: &str,
    secs: u64,
    noun: &str,
    read: impl Fn() -> Value,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    eventually(what, Duration::from_secs(secs), || {
        let v = read();
        if cond(&v) {
            Ok(v)
        } else {
            Err(format!("{noun} is now {v:#}"))
        }
    })
}

/// A CreateProject call being written ([`Serve::project`]).
pub(crate) struct NewProject<'a> {
    serve: &'a Serve,
    name: String,
    source: Value,
    artifacts: Value,
    environment: Value,
    extra: Vec<String>,
}

impl NewProject<'_> {
    /// The `--artifacts` JSON (default `{"type": "NO_ARTIFACTS"}`).
    pub(crate) fn artifacts(mut self, artifacts: Value) -> Self {
        self.artifacts = artifacts;
        self
    }

    /// The whole `--environment` JSON.
    pub(crate) fn environment(mut self, environment: Value) -> Self {
        self.environment = environment;
        self
    }

    /// The build image (default the busybox test image).
    pub(crate) fn image(mut self, image: &str) -> Self {
        self.environment["image"] = json!(image);
        self
    }

    /// The environment's `privilegedMode`.
    pub(crate) fn privileged(mut self, privileged: bool) -> Self {
        self.environment["privilegedMode"] = json!(privileged);
        self
    }

    /// One more argument of `aws codebuild create-project`.
    pub(crate) fn arg(mut self, arg: &str) -> Self {
        self.extra.push(arg.to_owned());
        self
    }

    /// Call CreateProject; the answer or the aws CLI's error text.
    pub(crate) fn try_create(self) -> Result<Value, String> {
        let (source, artifacts, environment) = (
            self.source.to_string(),
            self.artifacts.to_string(),
            self.environment.to_string(),
        );
        let mut args = vec![
            "codebuild",
            "create-project",
            "--name",
            &self.name,
            "--source",
            &source,
            "--artifacts",
            &artifacts,
            "--environment",
            &environment,
            "--service-role",
            ROLE,
        ];
        args.extend(self.extra.iter().map(String::as_str));
        self.serve.aws(&args)
    }

    /// Call CreateProject, which must succeed; the answer.
    pub(crate) fn create(self) -> Value {
        let name = self.name.clone();
        self.try_create()
            .unwrap_or_else(|e| panic!("create-project {name} failed: {e}"))
    }
}

/// A `NO_SOURCE` source with an inline buildspec.
pub(crate) fn no_source(buildspec: &str) -> Value {
    json!({"type": "NO_SOURCE", "buildspec": buildspec})
}

/// A buildspec running `commands` in BUILD.
pub(crate) fn inline_buildspec(commands: &[&str]) -> String {
    let mut buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n".to_owned();
    for c in commands {
        buildspec.push_str(&format!("      - {c}\n"));
    }
    buildspec
}

/// Run the test venv's `aws ARGS --output json` against `endpoint`, signing with `keys`, with
/// no configuration of the machine; the parsed output, or the error text.
pub(crate) fn aws_cli(
    endpoint: &str,
    keys: &(String, String),
    args: &[&str],
) -> Result<Value, String> {
    let out = Command::new(crate::util::client_tool("aws"))
        .args(args)
        .args(["--output", "json"])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", &keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &keys.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("aws runs");
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("aws prints JSON")
        })
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The `phaseType`s of a build record, in order.
pub(crate) fn phases(b: &Value) -> Vec<String> {
    b["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["phaseType"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The phase `kind` of a build record.
pub(crate) fn phase<'a>(b: &'a Value, kind: &str) -> &'a Value {
    b["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["phaseType"] == kind)
        .unwrap_or_else(|| panic!("no phase {kind}: {b:#}"))
}

// ---------------------------------------------------------------------------------------
// Plain HTTP

/// An HTTP response, as read from the socket.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: String,
}

impl Reply {
    /// A header's value (names compared without case).
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

/// One HTTP/1.1 request to `addr` (`Connection: close`); the whole reply.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// `GET path` from `addr`.
pub(crate) fn get(addr: &str, path: &str) -> Reply {
    http(addr, "GET", path, &[], "")
}
