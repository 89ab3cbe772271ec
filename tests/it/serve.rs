//! `localbuild serve` driven by the real `aws` CLI: a real server process on a free port, a
//! temporary `LOCALBUILD_HOME`, real Docker builds on the busybox test image. Conditions are
//! awaited by bounded polling of the API, never by sleeping.

use crate::util::containers_of;
use serde_json::{Value, json};
use std::io::{BufRead, Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "localbuild-test/busybox:1";

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

    /// Run `aws ARGS --output json`; the parsed output, or the error text.
    pub(crate) fn aws(&self, args: &[&str]) -> Result<Value, String> {
        let out = Command::new(crate::util::client_tool("aws"))
            .args(args)
            .args(["--output", "json"])
            .env("AWS_ENDPOINT_URL", format!("http://{}", self.addr))
            .env("AWS_ACCESS_KEY_ID", &self.keys.0)
            .env("AWS_SECRET_ACCESS_KEY", &self.keys.1)
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

    pub(crate) fn ok(&self, args: &[&str]) -> Value {
        self.aws(args)
            .unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
    }

    pub(crate) fn create_project(&self, name: &str, commands: &[&str]) -> Value {
        let mut buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n".to_owned();
        for c in commands {
            buildspec.push_str(&format!("      - {c}\n"));
        }
        let source = json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string();
        let env = json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"})
            .to_string();
        self.ok(&[
            "codebuild",
            "create-project",
            "--name",
            name,
            "--source",
            &source,
            "--artifacts",
            "type=NO_ARTIFACTS",
            "--environment",
            &env,
            "--service-role",
            "arn:aws:iam::000000000000:role/any",
        ])
    }

    pub(crate) fn start_build(&self, project: &str) -> Value {
        self.ok(&["codebuild", "start-build", "--project-name", project])["build"].clone()
    }

    pub(crate) fn build(&self, id: &str) -> Value {
        let out = self.ok(&["codebuild", "batch-get-builds", "--ids", id]);
        out["builds"][0].clone()
    }

    /// Poll the build until `cond` holds (at most `secs`).
    pub(crate) fn wait(
        &self,
        id: &str,
        secs: u64,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let b = self.build(id);
            if cond(&b) {
                return b;
            }
            assert!(Instant::now() < deadline, "{what}: build is now {b:#}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub(crate) fn wait_complete(&self, id: &str) -> Value {
        self.wait(id, 120, "buildComplete", |b| b["buildComplete"] == true)
    }

    /// A raw POST (for what the aws CLI never sends): status and JSON body.
    fn post(&self, target: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn phases(b: &Value) -> Vec<String> {
    b["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["phaseType"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn serve_runs_builds_for_the_aws_cli() {
    let s = Serve::start(&[]);
    let project = s.create_project("serve-demo", &["echo hello-from-serve"]);
    assert_eq!(
        project["project"]["arn"],
        "arn:aws:codebuild:us-east-1:000000000000:project/serve-demo"
    );

    let started = s.start_build("serve-demo");
    assert_eq!(started["buildStatus"], "IN_PROGRESS");
    assert_eq!(started["buildNumber"], 1);
    assert_eq!(phases(&started)[0], "SUBMITTED");
    let id = started["id"].as_str().unwrap().to_owned();
    let done = s.wait_complete(&id);
    assert_eq!(done["buildStatus"], "SUCCEEDED", "{done:#}");
    assert_eq!(
        phases(&done),
        [
            "SUBMITTED",
            "QUEUED",
            "PROVISIONING",
            "DOWNLOAD_SOURCE",
            "INSTALL",
            "PRE_BUILD",
            "BUILD",
            "POST_BUILD",
            "UPLOAD_ARTIFACTS",
            "FINALIZING",
            "COMPLETED"
        ]
    );
    assert!(done["logs"].get("localPath").is_none());
    assert_eq!(done["environment"]["image"], IMAGE);
    assert_eq!(done["serviceRole"], "arn:aws:iam::000000000000:role/any");

    // The log as CloudWatch Logs events.
    let stream = id.split_once(':').unwrap().1;
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/serve-demo",
        "--log-stream-name",
        stream,
        "--start-from-head",
    ]);
    let messages: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"hello-from-serve\n"), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("[Container] ")));
    assert!(events["events"][0]["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    let groups = s.ok(&["logs", "describe-log-groups"]);
    assert_eq!(
        groups["logGroups"][0]["logGroupName"],
        "/aws/codebuild/serve-demo"
    );
    let err = s
        .aws(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/serve-demo",
            "--log-stream-name",
            "nope",
        ])
        .unwrap_err();
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    assert!(
        err.contains("The specified log stream does not exist."),
        "{err}"
    );

    // The deep link serves the log.
    let link = done["logs"]["deepLink"].as_str().unwrap();
    let path = link.split_once(&s.addr).unwrap().1;
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.addr
    )
    .unwrap();
    let mut page = String::new();
    conn.read_to_string(&mut page).unwrap();
    assert!(page.contains("hello-from-serve"), "{page}");

    // Retry: a new build with the next number; listing is newest first.
    let retried = s.ok(&["codebuild", "retry-build", "--id", &id])["build"].clone();
    assert_eq!(retried["buildNumber"], 2);
    let id2 = retried["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_complete(&id2)["buildStatus"], "SUCCEEDED");
    let listed = s.ok(&[
        "codebuild",
        "list-builds-for-project",
        "--project-name",
        "serve-demo",
    ]);
    assert_eq!(listed["ids"], json!([id2, id]));
    let asc = s.ok(&["codebuild", "list-builds", "--sort-order", "ASCENDING"]);
    assert_eq!(asc["ids"], json!([id, id2]));

    let missing = s.ok(&["codebuild", "batch-get-builds", "--ids", "serve-demo:nope"]);
    assert_eq!(missing["buildsNotFound"], json!(["serve-demo:nope"]));
    let deleted = s.ok(&["codebuild", "batch-delete-builds", "--ids", &id]);
    assert_eq!(deleted["buildsDeleted"], json!([id]));
}

#[test]
fn serve_queues_and_stops_builds() {
    let s = Serve::start(&["--max-concurrent-builds", "1"]);
    s.create_project("serve-sleep", &["echo sleeping", "sleep 60"]);
    let first = s.start_build("serve-sleep")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = s.start_build("serve-sleep");
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(second["buildNumber"], 2);
    s.wait(&first, 60, "first build in BUILD", |b| {
        b["currentPhase"] == "BUILD"
    });
    // The first holds the only slot: the second is still QUEUED.
    let queued = s.build(&second_id);
    assert_eq!(queued["currentPhase"], "QUEUED", "{queued:#}");
    assert_eq!(queued["buildStatus"], "IN_PROGRESS");

    // A queued build stops without ever starting a container.
    let stopped = s.ok(&["codebuild", "stop-build", "--id", &second_id])["build"].clone();
    assert_eq!(stopped["buildStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(phases(&stopped), ["SUBMITTED", "QUEUED", "COMPLETED"]);
    assert!(containers_of(&second_id).is_empty());

    // A running one ends STOPPED and leaves nothing behind.
    let stopped = s.ok(&["codebuild", "stop-build", "--id", &first])["build"].clone();
    assert_eq!(stopped["buildStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(stopped["buildComplete"], true);
    assert!(containers_of(&first).is_empty());
}

/// A project whose inline buildspec is a batch.
pub(crate) fn create_batch_project(s: &Serve, name: &str, buildspec: &str) {
    let source = json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string();
    let env =
        json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"})
            .to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        name,
        "--source",
        &source,
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
        "--build-batch-config",
        "serviceRole=arn:aws:iam::000000000000:role/any,combineArtifacts=false,restrictions={maximumBuildsAllowed=5}",
    ]);
}

impl Serve {
    pub(crate) fn batch(&self, id: &str) -> Value {
        let out = self.ok(&["codebuild", "batch-get-build-batches", "--ids", id]);
        out["buildBatches"][0].clone()
    }

    pub(crate) fn wait_batch(
        &self,
        id: &str,
        secs: u64,
        what: &str,
        cond: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let b = self.batch(id);
            if cond(&b) {
                return b;
            }
            assert!(Instant::now() < deadline, "{what}: batch is now {b:#}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn serve_batch_builds_for_the_aws_cli() {
    let s = Serve::start(&[]);
    let spec = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: first\n    - identifier: second\n      depend-on:\n        - first\n      env:\n        variables:\n          WHO: two\nphases:\n  build:\n    commands:\n      - echo task $CODEBUILD_BATCH_BUILD_IDENTIFIER $WHO\n";
    create_batch_project(&s, "serve-batch", spec);
    let started = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "serve-batch",
        "--environment-variables-override",
        "name=WHO,value=one,type=PLAINTEXT",
    ])["buildBatch"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("serve-batch:"), "{started:#}");
    assert_eq!(started["buildBatchNumber"], 1);
    assert_eq!(started["complete"], false);
    assert_eq!(
        started["buildBatchConfig"]["restrictions"]["maximumBuildsAllowed"],
        5
    );

    let done = s.wait_batch(&id, 180, "batch complete", |b| b["complete"] == true);
    assert_eq!(done["buildBatchStatus"], "SUCCEEDED", "{done:#}");
    assert!(done["endTime"].is_number(), "{done:#}");
    let groups = done["buildGroups"].as_array().unwrap();
    let idents: Vec<&str> = groups
        .iter()
        .map(|g| g["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(idents, ["first", "second"]);
    assert_eq!(groups[1]["dependsOn"], json!(["first"]));
    let mut arns = vec![];
    for g in groups {
        let summary = &g["currentBuildSummary"];
        assert_eq!(summary["buildStatus"], "SUCCEEDED", "{g:#}");
        arns.push(summary["arn"].as_str().unwrap().to_owned());
    }

    // The task builds are ordinary builds with the batch's ARN.
    let mut args = vec!["codebuild", "batch-get-builds", "--ids"];
    args.extend(arns.iter().map(String::as_str));
    let builds = s.ok(&args)["builds"].as_array().unwrap().clone();
    assert_eq!(builds.len(), 2);
    for b in &builds {
        assert_eq!(b["buildBatchArn"], done["arn"], "{b:#}");
        assert_eq!(b["buildStatus"], "SUCCEEDED");
    }
    let listed = s.ok(&[
        "codebuild",
        "list-builds-for-project",
        "--project-name",
        "serve-batch",
    ]);
    assert_eq!(listed["ids"].as_array().unwrap().len(), 2, "{listed:#}");

    let batches = s.ok(&[
        "codebuild",
        "list-build-batches-for-project",
        "--project-name",
        "serve-batch",
    ]);
    assert_eq!(batches["ids"], json!([id]));
    let all = s.ok(&[
        "codebuild",
        "list-build-batches",
        "--filter",
        "status=SUCCEEDED",
    ]);
    assert_eq!(all["ids"], json!([id]));
    let err = s
        .aws(&["codebuild", "start-build-batch", "--project-name", "nope"])
        .unwrap_err();
    assert!(
        err.contains("ResourceNotFoundException") && err.contains("Project cannot be found"),
        "{err}"
    );

    // Stopping a batch whose task sleeps: STOPPED, nothing left running.
    let sleepy = spec.replace(
        "echo task $CODEBUILD_BATCH_BUILD_IDENTIFIER $WHO",
        "sleep 120",
    );
    let started = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "serve-batch",
        "--buildspec-override",
        &sleepy,
    ])["buildBatch"]
        .clone();
    let sleeping = started["id"].as_str().unwrap().to_owned();
    let running = s.wait_batch(&sleeping, 120, "first task running", |b| {
        b["buildGroups"][0]["currentBuildSummary"]["arn"].is_string() || b["complete"] == true
    });
    let task_arn = running["buildGroups"][0]["currentBuildSummary"]["arn"]
        .as_str()
        .expect("the first task started")
        .to_owned();
    let task_id = task_arn.split_once(":build/").unwrap().1.to_owned();
    s.wait(&task_id, 120, "the task in BUILD", |b| {
        b["currentPhase"] == "BUILD"
    });
    let stopped = s.ok(&["codebuild", "stop-build-batch", "--id", &sleeping])["buildBatch"].clone();
    assert_eq!(stopped["buildBatchStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(stopped["complete"], true);
    assert_eq!(
        stopped["buildGroups"][0]["currentBuildSummary"]["buildStatus"], "STOPPED",
        "{stopped:#}"
    );
    assert!(containers_of(&task_id).is_empty());

    // Deleting a batch deletes its builds.
    let deleted = s.ok(&["codebuild", "delete-build-batch", "--id", &id]);
    assert_eq!(
        deleted["buildsDeleted"].as_array().unwrap().len(),
        2,
        "{deleted:#}"
    );
    let gone = s.ok(&["codebuild", "batch-get-build-batches", "--ids", &id]);
    assert_eq!(gone["buildBatchesNotFound"], json!([id]));
}

#[test]
fn serve_batch_builds_wait_in_the_same_queue_as_start_build() {
    let s = Serve::start(&["--max-concurrent-builds", "1"]);
    let spec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n    - identifier: b\nphases:\n  build:\n    commands:\n      - sleep 120\n";
    create_batch_project(&s, "queued-batch", spec);
    s.create_project("queued-plain", &["true"]);
    let batch = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "queued-batch",
    ])["buildBatch"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let running = s.wait_batch(&batch, 120, "one task running", |b| {
        b["buildGroups"][0]["currentBuildSummary"]["arn"].is_string()
    });
    let task = running["buildGroups"][0]["currentBuildSummary"]["arn"]
        .as_str()
        .unwrap()
        .split_once(":build/")
        .unwrap()
        .1
        .to_owned();
    s.wait(&task, 120, "task a in BUILD", |b| {
        b["currentPhase"] == "BUILD"
    });
    // One slot: the other task waits, and so does a StartBuild build.
    assert!(
        s.batch(&batch)["buildGroups"][1]
            .get("currentBuildSummary")
            .is_none(),
        "task b waits for the slot: {running:#}"
    );
    let plain =
        s.ok(&["codebuild", "start-build", "--project-name", "queued-plain"])["build"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(s.build(&plain)["currentPhase"], "QUEUED");
    // Stopping the batch frees the slot: the queued build runs.
    s.ok(&["codebuild", "stop-build-batch", "--id", &batch]);
    let done = s.wait_complete(&plain);
    assert_eq!(done["buildStatus"], "SUCCEEDED", "{done:#}");
    let stopped = s.batch(&batch);
    assert_eq!(stopped["buildBatchStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(
        stopped["buildGroups"][1]["currentBuildSummary"]["buildStatus"], "STOPPED",
        "b never started: {stopped:#}"
    );
    assert!(stopped["buildGroups"][1]["currentBuildSummary"]["arn"].is_null());
    assert!(containers_of(&task).is_empty());
}

#[test]
fn serve_retries_a_batch_under_its_own_id_running_only_what_failed() {
    let s = Serve::start(&[]);
    // https://github.com/acme/retry.git resolves to $LOCALBUILD_HOME/git/acme/retry.
    let repo = s.home.path().join("git/acme/retry");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nbatch:\n  build-graph:\n    - identifier: first\n    - identifier: second\n      depend-on:\n        - first\n    - identifier: third\n      depend-on:\n        - second\nphases:\n  build:\n    commands:\n      - test $CODEBUILD_BATCH_BUILD_IDENTIFIER != second || test -f fixed\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "second fails"]);
    let env =
        json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"})
            .to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "retry",
        "--source",
        &json!({"type": "GITHUB", "location": "https://github.com/acme/retry.git"}).to_string(),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let id =
        s.ok(&["codebuild", "start-build-batch", "--project-name", "retry"])["buildBatch"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let failed = s.wait_batch(&id, 180, "batch complete", |b| b["complete"] == true);
    assert_eq!(failed["buildBatchStatus"], "FAILED", "{failed:#}");
    let status =
        |b: &Value, i: usize| b["buildGroups"][i]["currentBuildSummary"]["buildStatus"].clone();
    assert_eq!(status(&failed, 0), "SUCCEEDED");
    assert_eq!(status(&failed, 1), "FAILED");
    assert_eq!(status(&failed, 2), "FAILED", "never started: {failed:#}");
    let first_build = failed["buildGroups"][0]["currentBuildSummary"]["arn"].clone();
    let second_build = failed["buildGroups"][1]["currentBuildSummary"]["arn"].clone();

    // The fix lands; the retry runs `second` and `third` again, not `first`.
    std::fs::write(repo.join("fixed"), "").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "fixed"]);
    let retried = s.ok(&["codebuild", "retry-build-batch", "--id", &id])["buildBatch"].clone();
    assert_eq!(retried["id"], json!(id), "the same batch: {retried:#}");
    assert_eq!(retried["buildBatchNumber"], failed["buildBatchNumber"]);
    assert_eq!(retried["complete"], false);
    let done = s.wait_batch(&id, 180, "retried batch complete", |b| {
        b["complete"] == true
    });
    assert_eq!(done["buildBatchStatus"], "SUCCEEDED", "{done:#}");
    let groups = done["buildGroups"].as_array().unwrap();
    assert_eq!(groups[0]["currentBuildSummary"]["arn"], first_build);
    assert!(groups[0].get("priorBuildSummaryList").is_none(), "{done:#}");
    assert_eq!(status(&done, 1), "SUCCEEDED");
    assert_ne!(groups[1]["currentBuildSummary"]["arn"], second_build);
    assert_eq!(groups[1]["priorBuildSummaryList"][0]["arn"], second_build);
    assert_eq!(
        groups[1]["priorBuildSummaryList"][0]["buildStatus"],
        "FAILED"
    );
    assert_eq!(
        groups[2]["priorBuildSummaryList"][0]["buildStatus"],
        "FAILED"
    );
    let phases: Vec<&str> = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phaseType"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "SUBMITTED",
            "DOWNLOAD_BATCHSPEC",
            "IN_PROGRESS",
            "FAILED",
            "SUBMITTED",
            "DOWNLOAD_BATCHSPEC",
            "IN_PROGRESS",
            "SUCCEEDED"
        ]
    );
    let err = s
        .aws(&["codebuild", "retry-build-batch", "--id", &id])
        .unwrap_err();
    assert!(
        err.contains("InvalidInputException") && err.contains("no failed builds"),
        "{err}"
    );
    let listed = s.ok(&[
        "codebuild",
        "list-build-batches-for-project",
        "--project-name",
        "retry",
    ]);
    assert_eq!(listed["ids"], json!([id]));
}

#[test]
fn serve_answers_errors_as_codebuild() {
    let s = Serve::start(&[]);
    s.create_project("serve-err", &["true"]);
    let err = s
        .aws(&[
            "codebuild",
            "create-project",
            "--name",
            "serve-err",
            "--source",
            "type=NO_SOURCE,buildspec=version: 0.2",
            "--artifacts",
            "type=NO_ARTIFACTS",
            "--environment",
            "type=LINUX_CONTAINER,image=x,computeType=BUILD_GENERAL1_SMALL",
            "--service-role",
            "r",
        ])
        .unwrap_err();
    assert!(err.contains("ResourceAlreadyExistsException"), "{err}");
    assert!(
        err.contains(
            "Project already exists: arn:aws:codebuild:us-east-1:000000000000:project/serve-err"
        ),
        "{err}"
    );
    let err = s
        .aws(&["codebuild", "start-build", "--project-name", "nope"])
        .unwrap_err();
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    assert!(
        err.contains(
            "Project cannot be found: arn:aws:codebuild:us-east-1:000000000000:project/nope"
        ),
        "{err}"
    );

    let (status, body) = s.post(Some("CodeBuild_20161006.BatchGetBuilds"), b"{not json");
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "SerializationException");
    let (status, body) = s.post(Some("CodeBuild_20161006.BatchGetBuilds"), br#"{"ids": 5}"#);
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "SerializationException");
    assert!(body["message"].as_str().unwrap().contains("ids"), "{body}");
    let (status, body) = s.post(Some("CodeBuild_20161006.NoSuchThing"), b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");
    let (status, body) = s.post(Some("Nope_2020.ListBuilds"), b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");
    let (status, body) = s.post(None, b"{}");
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "UnknownOperationException");
    let big = vec![b' '; 7 * 1024 * 1024];
    let (status, body) = s.post(Some("CodeBuild_20161006.ListBuilds"), &big);
    assert_eq!(status, 413);
    assert_eq!(body["__type"], "RequestEntityTooLargeException");
}

/// BatchGetBuilds, BatchGetBuildBatches and BatchGetProjects refuse a malformed id or name with
/// CodeBuild's `InvalidInputException`, naming the entry; a well-formed one that names nothing
/// is "not found", as in the cloud.
#[test]
fn malformed_ids_in_batch_gets_are_invalid_input() {
    let s = Serve::start(&[]);
    let refused = |args: &[&str], needle: &str| {
        let err = s.aws(args).unwrap_err();
        assert!(err.contains("InvalidInputException"), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    };
    for bad in [
        "no-colon",
        "bad name:1234",
        "arn:aws:codebuild:us-east-1:000000000000:project/app",
    ] {
        refused(
            &["codebuild", "batch-get-builds", "--ids", bad],
            "Invalid build ID provided",
        );
        refused(
            &["codebuild", "batch-get-builds", "--ids", "app:1", bad],
            bad,
        );
        refused(
            &["codebuild", "batch-get-build-batches", "--ids", bad],
            "Invalid build batch ID provided",
        );
    }
    let out = s.ok(&[
        "codebuild",
        "batch-get-builds",
        "--ids",
        "app:0f1e2d3c-0000-4000-8000-000000000000",
        "arn:aws:codebuild:us-east-1:000000000000:build/app:1",
    ]);
    assert_eq!(
        out["buildsNotFound"],
        json!(["app:0f1e2d3c-0000-4000-8000-000000000000", "app:1"]),
        "{out:#}"
    );
    let out = s.ok(&["codebuild", "batch-get-build-batches", "--ids", "app:1"]);
    assert_eq!(out["buildBatchesNotFound"], json!(["app:1"]), "{out:#}");

    s.create_project("app", &["true"]);
    refused(
        &[
            "codebuild",
            "batch-get-projects",
            "--names",
            "app",
            "not a name",
        ],
        "not a name",
    );
    refused(
        &[
            "codebuild",
            "batch-get-projects",
            "--names",
            "arn:aws:codebuild:us-east-1:000000000000:build/app:1",
        ],
        "Invalid project name or ARN",
    );
    let out = s.ok(&[
        "codebuild",
        "batch-get-projects",
        "--names",
        "arn:aws:codebuild:us-east-1:000000000000:project/app",
        "missing",
    ]);
    assert_eq!(out["projects"][0]["name"], "app", "{out:#}");
    assert_eq!(out["projectsNotFound"], json!(["missing"]), "{out:#}");
}

#[test]
fn serve_checks_signatures_with_credentials() {
    let mut s = Serve::with_credentials("AKIDLOCAL", "s3cret");
    assert_eq!(s.ok(&["codebuild", "list-projects"])["projects"], json!([]));
    s.keys = ("AKIDOTHER".into(), "s3cret".into());
    let err = s.aws(&["codebuild", "list-projects"]).unwrap_err();
    assert!(err.contains("UnrecognizedClientException"), "{err}");
    s.keys = ("AKIDLOCAL".into(), "wrong".into());
    let err = s.aws(&["codebuild", "list-projects"]).unwrap_err();
    assert!(err.contains("InvalidSignatureException"), "{err}");

    // Without credentials, only loopback.
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--credentials"));
}

/// `git ARGS` in `dir` with a fixed identity; its trimmed stdout.
pub(crate) fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn serve_builds_a_github_project_from_a_local_repository() {
    let s = Serve::start(&[]);
    // https://github.com/acme/app.git resolves to $LOCALBUILD_HOME/git/acme/app.
    let repo = s.home.path().join("git/acme/app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat content.txt\n      - echo \"resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION\"\n",
    )
    .unwrap();
    std::fs::write(repo.join("content.txt"), "main content\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "main"]);
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(repo.join("content.txt"), "feature content\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "feature"]);
    let feature = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["checkout", "-q", "main"]);
    // An uncommitted change never reaches the build.
    std::fs::write(repo.join("content.txt"), "dirty\n").unwrap();

    let env =
        json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"})
            .to_string();
    let create = |name: &str, location: &str| {
        s.aws(&[
            "codebuild",
            "create-project",
            "--name",
            name,
            "--source",
            &json!({"type": "GITHUB", "location": location}).to_string(),
            "--artifacts",
            "type=NO_ARTIFACTS",
            "--environment",
            &env,
            "--service-role",
            "arn:aws:iam::000000000000:role/any",
        ])
    };
    create("app", "https://github.com/acme/app.git").expect("create-project");

    let started = s.ok(&[
        "codebuild",
        "start-build",
        "--project-name",
        "app",
        "--source-version",
        "feature",
    ])["build"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["resolvedSourceVersion"], feature.as_str());
    assert_eq!(b["sourceVersion"], "feature");
    assert_eq!(b["source"]["type"], "GITHUB");
    let stream = id.split_once(':').unwrap().1;
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/app",
        "--log-stream-name",
        stream,
        "--start-from-head",
    ]);
    let text: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    let text = text.join("\n");
    assert!(text.contains("feature content"), "{text}");
    assert!(!text.contains("dirty"), "{text}");
    assert!(text.contains(&format!("resolved={feature}")), "{text}");

    // An unknown version fails DOWNLOAD_SOURCE, a build result.
    let bad = s.ok(&[
        "codebuild",
        "start-build",
        "--project-name",
        "app",
        "--source-version",
        "no-such-branch",
    ])["build"]
        .clone();
    let b = s.wait_complete(bad["id"].as_str().unwrap());
    assert_eq!(b["buildStatus"], "FAILED");
    let download = b["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "DOWNLOAD_SOURCE")
        .unwrap();
    assert_eq!(download["phaseStatus"], "FAILED", "{b:#}");
    assert!(
        download["contexts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-branch"),
        "{download:#}"
    );
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

/// As in the cloud, a project may name a repository that does not exist yet (IaC creates the
/// project first): CreateProject and UpdateProject accept any well-formed location, and a build
/// fails in DOWNLOAD_SOURCE with CLIENT_ERROR naming the local paths looked at and the setting
/// that maps them. Once the repository is under the git root, the next build succeeds.
/// Malformed locations and host paths are still refused at once.
#[test]
fn a_project_may_name_a_repository_that_does_not_exist_yet() {
    let s = Serve::start(&[]);
    let env =
        json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"})
            .to_string();
    let source = |location: &str| json!({"type": "GITHUB", "location": location}).to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "later",
        "--source",
        &source("https://github.com/acme/later.git"),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    // UpdateProject accepts a location that is not there either, and still checks the form.
    s.ok(&[
        "codebuild",
        "update-project",
        "--name",
        "later",
        "--source",
        &source("https://github.com/acme/elsewhere.git"),
    ]);
    for bad in [
        "file:///etc",
        "/etc",
        "https://github.com/acme/../../x.git",
        "git@github.com:acme/x.git",
    ] {
        let err = s
            .aws(&[
                "codebuild",
                "update-project",
                "--name",
                "later",
                "--source",
                &source(bad),
            ])
            .unwrap_err();
        assert!(err.contains("InvalidInputException"), "{bad}: {err}");
    }
    s.ok(&[
        "codebuild",
        "update-project",
        "--name",
        "later",
        "--source",
        &source("https://github.com/acme/later.git"),
    ]);

    let id = s.start_build("later")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
    assert_eq!(b["currentPhase"], "COMPLETED", "{b:#}");
    assert_eq!(b["source"]["type"], "GITHUB");
    assert_eq!(b["source"]["location"], "https://github.com/acme/later.git");
    let download = phase(&b, "DOWNLOAD_SOURCE");
    assert_eq!(download["phaseStatus"], "FAILED", "{b:#}");
    assert_eq!(download["contexts"][0]["statusCode"], "CLIENT_ERROR");
    let message = download["contexts"][0]["message"].as_str().unwrap();
    let root = s.home.path().join("git");
    for looked in ["acme/later", "acme/later.git", "later", "later.git"] {
        let path = root.join(looked).display().to_string();
        assert!(message.contains(&path), "{path} in {message}");
    }
    assert!(message.contains("--git-root"), "{message}");
    // No command ran.
    assert!(
        !b["phases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["phaseType"] == "BUILD"),
        "{b:#}"
    );

    // The repository appears under the git root: the next build finds it.
    let repo = root.join("acme/later");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built-from-later\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let id = s.start_build("later")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(
        b["resolvedSourceVersion"],
        git(&repo, &["rev-parse", "HEAD"]).as_str()
    );
}

/// A build whose buildspec names Parameter Store parameters or Secrets Manager secrets that the
/// secrets file (`serve --secrets-file`) does not hold fails in DOWNLOAD_SOURCE with CodeBuild's
/// own status code and text for each service, naming every missing reference at once, the first
/// in the buildspec first.
#[test]
fn missing_parameters_and_secrets_are_named_all_at_once_with_codebuilds_texts() {
    let home = tempfile::tempdir().unwrap();
    let secrets = home.path().join("secrets.yml");
    std::fs::write(
        &secrets,
        "parameter-store:\n  /app/present: here\nsecrets-manager:\n  app/db: '{\"user\": \"u\"}'\n",
    )
    .unwrap();
    let s = Serve::start_in(home, &["--secrets-file", secrets.to_str().unwrap()]);
    let project = |name: &str, env: &str| {
        let buildspec = format!(
            "version: 0.2\nenv:\n{env}phases:\n  build:\n    commands:\n      - echo should-not-run\n"
        );
        let source = json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string();
        let environment = json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"}).to_string();
        s.ok(&[
            "codebuild",
            "create-project",
            "--name",
            name,
            "--source",
            &source,
            "--artifacts",
            "type=NO_ARTIFACTS",
            "--environment",
            &environment,
            "--service-role",
            "arn:aws:iam::000000000000:role/any",
        ]);
        let id = s.start_build(name)["id"].as_str().unwrap().to_owned();
        let b = s.wait_complete(&id);
        assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
        let download = phase(&b, "DOWNLOAD_SOURCE");
        assert_eq!(download["phaseStatus"], "FAILED", "{b:#}");
        assert!(!phases(&b).contains(&"BUILD".to_owned()), "{b:#}");
        (
            download["contexts"][0]["statusCode"]
                .as_str()
                .unwrap()
                .to_owned(),
            download["contexts"][0]["message"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };

    // Secrets Manager: every missing secret, in the buildspec's order.
    let mut env = "  secrets-manager:\n".to_owned();
    for i in 1..=22 {
        env.push_str(&format!("    S{i}: app/missing-{i}\n"));
    }
    env.push_str("    USER: app/db:user\n");
    let (code, message) = project("sm", &env);
    assert_eq!(code, "Secrets Manager Error");
    assert!(
        message.starts_with("ResourceNotFoundException: Secrets Manager can't find the specified secret: app/missing-1 (variable S1), app/missing-2 (variable S2)"),
        "{message}"
    );
    assert!(
        message.contains("app/missing-22 (variable S22)"),
        "{message}"
    );
    assert!(!message.contains("app/db"), "{message}");
    assert!(message.contains("--secrets-file"), "{message}");

    // Parameter Store: CodeBuild's `parameter does not exist`, every name.
    let (code, message) = project(
        "ps",
        "  parameter-store:\n    A: /app/absent-a\n    P: /app/present\n    B: /app/absent-b\n",
    );
    assert_eq!(code, "Decrypted Variables Error");
    assert!(
        message.starts_with(
            "parameter does not exist: /app/absent-a (variable A), /app/absent-b (variable B)"
        ),
        "{message}"
    );
}

/// Every response and error the server gives, through boto3, checked against botocore's own
/// service models (`tests/api/check_shapes.py`).
#[test]
fn serve_responses_match_botocores_model() {
    let s = Serve::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/walk_codebuild.py");
    let out = Command::new(crate::util::client_tool("python3"))
        .arg(script)
        .arg(IMAGE)
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("walked"), "{stdout}");
}

#[test]
fn serve_restarted_after_kill_9_finalises_what_it_left() {
    let mut s = Serve::start(&[]);
    s.create_project("victim", &["echo before", "sleep 300"]);
    s.create_project("done", &["echo finished"]);
    let done = s.start_build("done")["id"].as_str().unwrap().to_owned();
    s.wait_complete(&done);
    let id = s.start_build("victim")["id"].as_str().unwrap().to_owned();
    s.wait(&id, 120, "the sleep to run", |b| {
        b["currentPhase"] == "BUILD"
    });
    assert_eq!(containers_of(&id).len(), 1, "its container runs");
    // kill -9: no shutdown, no cleanup.
    let home = s.kill_9();

    let s = Serve::start_in(home, &[]);
    let b = s.build(&id);
    assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
    assert_eq!(b["buildComplete"], true);
    let build = b["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "BUILD")
        .unwrap();
    assert_eq!(build["phaseStatus"], "FAILED");
    assert!(
        build["contexts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("localbuild stopped"),
        "{build:#}"
    );
    assert!(
        containers_of(&id).is_empty(),
        "the dead server's container is gone"
    );
    // What had finished is intact, logs included.
    assert_eq!(s.build(&done)["buildStatus"], "SUCCEEDED");
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/victim",
        "--log-stream-name",
        id.split_once(':').unwrap().1,
        "--start-from-head",
    ]);
    assert!(events.to_string().contains("before"), "{events}");
}

#[test]
fn serve_builds_an_s3_zip_source() {
    let s = Serve::start(&[]);
    // BUCKET/KEY resolves to $LOCALBUILD_HOME/s3/BUCKET/KEY.
    let bucket = s.home.path().join("s3/artifacts-bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let zip = bucket.join("app.zip");
    let made = Command::new(crate::util::client_tool("python3"))
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1], 'w')\n\
             z.writestr('buildspec.yml', 'version: 0.2\\nphases:\\n  build:\\n    commands:\\n      - cat sub/data.txt\\n')\n\
             z.writestr('sub/data.txt', 'zipped data\\n')\n\
             z.close()",
        )
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());
    let env =
        json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"})
            .to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "zipped",
        "--source",
        &json!({"type": "S3", "location": "artifacts-bucket/app.zip"}).to_string(),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let id = s.start_build("zipped")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["source"]["type"], "S3");
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/zipped",
        "--log-stream-name",
        id.split_once(':').unwrap().1,
        "--start-from-head",
    ]);
    assert!(events.to_string().contains("zipped data"), "{events}");
}

#[test]
fn start_build_with_debug_session_enabled_pauses_at_a_breakpoint_until_codebuild_resume() {
    let s = Serve::start(&[]);
    s.create_project(
        "debugged",
        &[
            "export STAGE=two",
            "codebuild-breakpoint",
            "echo \"resumed with $STAGE\"",
        ],
    );
    let started = s.ok(&[
        "codebuild",
        "start-build",
        "--project-name",
        "debugged",
        "--debug-session-enabled",
    ])["build"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["debugSession"]["sessionEnabled"], true);
    // The build waits in its container (its sessionTarget) at the breakpoint.
    let b = s.wait(&id, 60, "a session target", |b| {
        b["debugSession"]["sessionTarget"].is_string()
    });
    let target = b["debugSession"]["sessionTarget"]
        .as_str()
        .unwrap()
        .to_owned();
    let exec = |args: &[&str]| {
        Command::new("docker")
            .args(["exec", &target])
            .args(args)
            .output()
            .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !exec(&["test", "-p", "/codebuild/output/tmp/debug/resume"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the build never paused");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(s.build(&id)["buildStatus"], "IN_PROGRESS");
    let resumed = exec(&["codebuild-resume"]);
    assert_eq!(
        String::from_utf8_lossy(&resumed.stdout),
        "codebuild-resume: the build goes on\n"
    );
    let done = s.wait_complete(&id);
    assert_eq!(done["buildStatus"], "SUCCEEDED");
    assert_eq!(done["debugSession"]["sessionTarget"], target.as_str());
}

#[test]
fn a_build_without_source_runs_in_its_empty_source_folder_and_uploads_artifacts() {
    let s = Serve::start(&[]);
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - test \"$(pwd)\" = \"$CODEBUILD_SRC_DIR\"\n      - test -z \"$(ls -A)\"\n      - echo made > out.txt\nartifacts:\n  files: [out.txt]\n";
    let env =
        json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"})
            .to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "nosource",
        "--source",
        &json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string(),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let id = s.start_build("nosource")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    let made = s
        .home
        .path()
        .join("builds/nosource/1/artifacts/primary/out.txt");
    assert_eq!(std::fs::read_to_string(made).unwrap(), "made\n");
}

#[test]
fn a_batch_past_its_timeout_stops_its_builds_and_ends_timed_out() {
    let s = Serve::start(&[]);
    // `slow` runs until the batch's one-minute timeout stops it; `after` never starts.
    let spec = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: slow\n    - identifier: after\n      depend-on:\n        - slow\nphases:\n  build:\n    commands:\n      - sleep 600\n";
    create_batch_project(&s, "timeboxed", spec);
    let started = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "timeboxed",
        "--build-batch-config-override",
        "timeoutInMins=1",
    ])["buildBatch"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(
        started["buildBatchConfig"]["timeoutInMins"], 1,
        "{started:#}"
    );
    let done = s.wait_batch(&id, 240, "batch complete", |b| b["complete"] == true);
    assert_eq!(done["buildBatchStatus"], "TIMED_OUT", "{done:#}");
    let groups = done["buildGroups"].as_array().unwrap();
    let slow = &groups[0]["currentBuildSummary"];
    assert_eq!(slow["buildStatus"], "STOPPED", "{done:#}");
    assert_eq!(groups[1]["currentBuildSummary"]["buildStatus"], "STOPPED");
    assert!(groups[1]["currentBuildSummary"].get("arn").is_none());
    let build_id = slow["arn"]
        .as_str()
        .unwrap()
        .split_once(":build/")
        .unwrap()
        .1;
    crate::util::assert_nothing_left(build_id);
    let phases: Vec<(&str, &str)> = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["phaseType"].as_str().unwrap(),
                p["phaseStatus"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(phases[2], ("IN_PROGRESS", "TIMED_OUT"), "{phases:?}");
    assert_eq!(phases.last().unwrap().0, "FAILED", "{phases:?}");
}

/// The serve process's memory: (VmHWM, VmRSS) in bytes, from `/proc/<pid>/status`.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {status}"));
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kb * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// GetLogEvents and FilterLogEvents read pages of a log through its index, not the whole log:
/// four concurrent `--limit 10` calls on a 35 MB log leave the server's peak memory where it
/// was, give or take far less than the log (issue 21, item 8). An older log without an index
/// gets one on its first read, in bounded memory too.
#[test]
fn log_events_of_a_large_log_are_read_in_pages_in_bounded_memory() {
    let s = Serve::start(&[]);
    s.create_project(
        "big-log",
        &[
            "awk 'BEGIN { for (i = 0; i < 500000; i++) printf \"line %07d of a large build log, padded to about eighty bytes ......\\n\", i }'",
        ],
    );
    let id = s.start_build("big-log")["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_complete(&id)["buildStatus"], "SUCCEEDED");
    let log_path = s.home.path().join("builds/big-log/1/build.log");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let size = log.len() as u64;
    assert!(size > 30_000_000, "the log has {size} bytes");
    let lines: Vec<String> = log.split_inclusive('\n').map(str::to_owned).collect();
    drop(log);

    // A fresh server: its peak memory so far owes nothing to the build.
    let mut s = s;
    let s = Serve::start_in(s.kill_9(), &[]);
    let stream = id.split_once(':').unwrap().1.to_owned();
    let page = |from_head: bool| -> Vec<String> {
        let mut args = vec![
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/big-log",
            "--log-stream-name",
            &stream,
            "--limit",
            "10",
        ];
        if from_head {
            args.push("--start-from-head");
        }
        s.ok(&args)["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect()
    };
    s.ok(&["logs", "describe-log-groups"]);
    let pid = s.child.id();
    let (before, _) = memory_of(pid);
    let pages: Vec<Vec<String>> = std::thread::scope(|t| {
        let calls: Vec<_> = [true, false, true, false]
            .into_iter()
            .map(|head| t.spawn(move || page(head)))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(pages[0], lines[..10], "the first ten lines");
    assert_eq!(pages[1], lines[lines.len() - 10..], "the last ten lines");
    assert_eq!((&pages[2], &pages[3]), (&pages[0], &pages[1]));
    // A filter walks the whole log, a line at a time.
    let found = s.ok(&[
        "logs",
        "filter-log-events",
        "--log-group-name",
        "/aws/codebuild/big-log",
        "--filter-pattern",
        "\"line 0314159 \"",
    ]);
    let found = found["events"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 0314159 of")
    );
    let (after, _) = memory_of(pid);
    assert!(
        after - before < size / 4,
        "the server's peak memory grew by {} MB reading pages of a {} MB log",
        (after - before) >> 20,
        size >> 20
    );

    // A log written before indexes existed: the first read makes its index, by a streaming pass.
    let index = s.home.path().join("builds/big-log/1/build.log.idx");
    std::fs::remove_file(&index).unwrap();
    assert_eq!(page(false), lines[lines.len() - 10..]);
    assert!(index.exists(), "the index is made again and kept");
    let (rebuilt, _) = memory_of(pid);
    assert!(
        rebuilt - before < size / 4,
        "the server's peak memory grew by {} MB rebuilding the index of a {} MB log",
        (rebuilt - before) >> 20,
        size >> 20
    );
}
