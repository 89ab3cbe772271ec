//! The Docker-free tier: the in-process server on the engine's local `/bin/sh` runtime
//! (`localbuild_engine::local_runtime`, feature `local-runtime`), driven over real HTTP with
//! the CodeBuild JSON 1.1 calls the aws CLI sends. These tests need no Docker daemon: the
//! server's rules run here; `tests/it` keeps the Docker-backed and aws-CLI end-to-end tests.

mod common;

use common::LocalServer;
use serde_json::{Value, json};

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
