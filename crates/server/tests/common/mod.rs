//! The in-process server on the engine's local `/bin/sh` runtime, shared by the Docker-free
//! test files (`local_runtime.rs`, `validation.rs`): real HTTP, AWS JSON 1.1 calls as the aws CLI
//! sends them, no Docker daemon.

#![allow(dead_code)] // Each test file uses its own part.

use localbuild_engine::local_runtime::LocalRuntime;
use localbuild_server::{Config, Server};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server on the local runtime, serving until dropped.
pub struct LocalServer {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    _home: tempfile::TempDir,
}

impl LocalServer {
    pub async fn start() -> LocalServer {
        let home = tempfile::tempdir().unwrap();
        let history = localbuild_store::HistoryStore::open(home.path()).unwrap();
        let ecr = Arc::new(localbuild_aws::ecr::Ecr::new(
            history.db().clone(),
            home.path().join("ecr"),
        ));
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
            // Repositories only: the registry starts when an image is asked for.
            ecr: Some(ecr),
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
    pub async fn call(&self, action: &str, input: Value) -> (u16, Value) {
        self.call_target(&format!("CodeBuild_20161006.{action}"), input)
            .await
    }

    /// One AWS JSON 1.1 call with `X-Amz-Target: <target>`: status and JSON body.
    pub async fn call_target(&self, target: &str, input: Value) -> (u16, Value) {
        let body = input.to_string();
        let mut tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             X-Amz-Target: {target}\r\nContent-Length: {}\r\n\
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
    pub async fn ok(&self, action: &str, input: Value) -> Value {
        let (status, body) = self.call(action, input).await;
        assert_eq!(status, 200, "{action}: {body:#}");
        body
    }

    /// A project on the local image whose inline buildspec runs `commands` in BUILD.
    pub async fn create_project(&self, name: &str, commands: &[&str]) -> Value {
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
    pub async fn until_complete(&self, id: &str) -> Value {
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
    pub async fn shut_down(mut self) {
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
