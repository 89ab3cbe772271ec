//! The Docker-free tier: the in-process server on the engine's local `/bin/sh` runtime
//! (`localbuild_engine::local_runtime`, feature `local-runtime`), driven over real HTTP with
//! the CodeBuild JSON 1.1 calls the aws CLI sends. These tests need no Docker daemon: the
//! server's rules run here; `tests/it` keeps the Docker-backed and aws-CLI end-to-end tests.

use localbuild_engine::local_runtime::LocalRuntime;
use localbuild_server::{Config, Server};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server on the local runtime, serving until dropped.
struct LocalServer {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    _home: tempfile::TempDir,
}

impl LocalServer {
    async fn start() -> LocalServer {
        let home = tempfile::tempdir().unwrap();
        let history = localbuild_store::HistoryStore::open(home.path()).unwrap();
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            credentials: None,
            allowed_hosts: vec![],
            secrets: Default::default(),
            max_concurrent_builds: 2,
            region: "us-east-1".to_owned(),
            account_id: localbuild_engine::ACCOUNT_ID.to_owned(),
            runtime: Arc::new(LocalRuntime::new().unwrap()),
            roots: localbuild_sources::Roots {
                git_root: home.path().join("git"),
                s3_root: home.path().join("s3"),
            },
            history,
            docker_host_access: false,
            ecr: None,
        };
        let server = Server::bind(config).await.unwrap();
        let addr = server.addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            server
                .run(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        LocalServer {
            addr,
            stop: Some(stop),
            served: Some(served),
            _home: home,
        }
    }

    /// One CodeBuild call (`X-Amz-Target: CodeBuild_20161006.<action>`): status and JSON body.
    async fn call(&self, action: &str, input: Value) -> (u16, Value) {
        let body = input.to_string();
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: CodeBuild_20161006.{action}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        tcp.write_all(head.as_bytes()).await.unwrap();
        tcp.write_all(body.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        tcp.read_to_end(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// A call that must succeed; its answer.
    async fn ok(&self, action: &str, input: Value) -> Value {
        let (status, body) = self.call(action, input).await;
        assert_eq!(status, 200, "{action}: {body:#}");
        body
    }

    /// A project on the local image whose inline buildspec runs `commands` in BUILD.
    async fn create_project(&self, name: &str, commands: &[&str]) -> Value {
        let mut buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n".to_owned();
        for c in commands {
            buildspec.push_str(&format!("      - {c}\n"));
        }
        self.ok(
            "CreateProject",
            json!({
                "name": name,
                "source": {"type": "NO_SOURCE", "buildspec": buildspec},
                "artifacts": {"type": "NO_ARTIFACTS"},
                "environment": {"type": "LINUX_CONTAINER", "image": LocalRuntime::IMAGE,
                                "computeType": "BUILD_GENERAL1_SMALL"},
                "serviceRole": "arn:aws:iam::000000000000:role/any",
            }),
        )
        .await
    }

    /// BatchGetBuilds until the build is complete (bounded); its record.
    async fn until_complete(&self, id: &str) -> Value {
        let wait = async {
            loop {
                let b = self.ok("BatchGetBuilds", json!({"ids": [id]})).await["builds"][0].clone();
                if b["buildComplete"] == true {
                    return b;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("build {id} did not complete within 60 s"))
    }

    /// Stop serving: running builds are stopped and recorded first.
    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(30), served)
                .await
                .expect("the server stops")
                .unwrap();
        }
    }
}

fn phases(b: &Value) -> Vec<String> {
    b["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let t = p["phaseType"].as_str().unwrap_or_default();
            match p["phaseStatus"].as_str() {
                Some(s) => format!("{t}:{s}"),
                None => t.to_owned(),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_build_runs_the_projects_buildspec_and_batch_get_builds_reports_every_phase() {
    let s = LocalServer::start().await;
    s.create_project("hello", &["echo hello from $CODEBUILD_BUILD_ID"])
        .await;
    let started = s.ok("StartBuild", json!({"projectName": "hello"})).await["build"].clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("hello:"), "{id}");

    let b = s.until_complete(&id).await;
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(
        phases(&b),
        [
            "SUBMITTED:SUCCEEDED",
            "QUEUED:SUCCEEDED",
            "PROVISIONING:SUCCEEDED",
            "DOWNLOAD_SOURCE:SUCCEEDED",
            "INSTALL:SUCCEEDED",
            "PRE_BUILD:SUCCEEDED",
            "BUILD:SUCCEEDED",
            "POST_BUILD:SUCCEEDED",
            "UPLOAD_ARTIFACTS:SUCCEEDED",
            "FINALIZING:SUCCEEDED",
            "COMPLETED",
        ]
    );
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_fails_the_build_in_its_phase() {
    let s = LocalServer::start().await;
    s.create_project("fails", &["exit 3"]).await;
    let id = s.ok("StartBuild", json!({"projectName": "fails"})).await["build"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s.until_complete(&id).await;
    assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
    assert!(
        phases(&b).contains(&"BUILD:FAILED".to_owned()),
        "{:?}",
        phases(&b)
    );
    s.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_codebuilds_error_types_naming_the_field() {
    let s = LocalServer::start().await;
    s.create_project("exists", &["true"]).await;
    // (action, input, AWS error type, what the message must name)
    let cases: &[(&str, Value, &str, &str)] = &[
        (
            "StartBuild",
            json!({"projectName": "nowhere"}),
            "ResourceNotFoundException",
            "nowhere",
        ),
        (
            "StartBuild",
            json!({}),
            "SerializationException",
            "projectName",
        ),
        (
            "CreateProject",
            json!({"name": "exists", "source": {"type": "NO_SOURCE", "buildspec": "version: 0.2"},
                   "artifacts": {"type": "NO_ARTIFACTS"},
                   "environment": {"type": "LINUX_CONTAINER", "image": "local",
                                   "computeType": "BUILD_GENERAL1_SMALL"},
                   "serviceRole": "arn:aws:iam::000000000000:role/any"}),
            "ResourceAlreadyExistsException",
            "exists",
        ),
        (
            "BatchGetBuilds",
            json!({"ids": []}),
            "InvalidInputException",
            "build ID list",
        ),
    ];
    for (action, input, aws_type, word) in cases {
        let (status, body) = s.call(action, input.clone()).await;
        assert_eq!(status, 400, "{action} {input}: {body:#}");
        assert_eq!(body["__type"], *aws_type, "{action} {input}: {body:#}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(word),
            "{action} {input}: the message should name {word:?}: {message}"
        );
    }
    s.shut_down().await;
}
