//! The engine as a library: a request in, events out, cancellable, a record at the end.

use crate::harness::{IMAGE, require_docker};
use localbuild::engine::record::{PhaseType, Status};
use localbuild::engine::{self, BuildRequest, CancellationToken, Event};
use std::time::Duration;

fn request(src: &std::path::Path, store: &std::path::Path, timeout: Duration) -> BuildRequest {
    BuildRequest {
        image: IMAGE.into(),
        timeout,
        env_overrides: vec![("FROM_REQUEST".into(), "yes".into())],
        initiator: "tester".into(),
        region: "eu-central-1".into(),
        ..BuildRequest::new("api", src.to_owned(), store.to_owned())
    }
}

#[tokio::test]
async fn a_build_reports_events_and_ends_in_a_record() {
    require_docker();
    let src = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"request=$FROM_REQUEST\"\n",
    )
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let build = tokio::spawn(engine::run(
        request(src.path(), store.path(), Duration::from_secs(600)),
        tx,
        CancellationToken::new(),
    ));
    let mut output = Vec::new();
    let mut started = Vec::new();
    while let Some(e) = rx.recv().await {
        match e {
            Event::Output(b) => output.extend_from_slice(&b),
            Event::PhaseStarted(p) => started.push(p),
            _ => {}
        }
    }
    let outcome = build.await.unwrap().unwrap();
    assert_eq!(outcome.build.build_status, Status::Succeeded);
    assert_eq!(outcome.build.initiator, "tester");
    assert!(String::from_utf8_lossy(&output).contains("request=yes\n"));
    assert_eq!(started.first(), Some(&PhaseType::Submitted));
    assert_eq!(started.last(), Some(&PhaseType::Completed));
    assert!(outcome.log_path.exists());
}

#[tokio::test]
async fn a_build_that_runs_too_long_times_out() {
    require_docker();
    let src = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n  post_build:\n    commands:\n      - echo never\n",
    )
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let started = std::time::Instant::now();
    let build = tokio::spawn(engine::run(
        request(src.path(), store.path(), Duration::from_secs(3)),
        tx,
        CancellationToken::new(),
    ));
    while rx.recv().await.is_some() {}
    let outcome = build.await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let b = &outcome.build;
    assert_eq!(b.build_status, Status::TimedOut);
    let phases: Vec<_> = b
        .phases
        .iter()
        .map(|p| (p.phase_type, p.phase_status))
        .collect();
    let build_phase = b
        .phases
        .iter()
        .find(|p| p.phase_type == PhaseType::Build)
        .unwrap();
    assert_eq!(build_phase.phase_status, Some(Status::TimedOut));
    let ctx = &build_phase.contexts.as_ref().unwrap()[0];
    assert_eq!(
        (ctx.status_code.as_str(), ctx.message.as_str()),
        ("BUILD_TIMED_OUT", "Build has timed out. ")
    );
    assert!(
        !phases.iter().any(|(p, _)| *p == PhaseType::PostBuild),
        "{phases:?}"
    );
    assert_eq!(
        phases[phases.len() - 2],
        (PhaseType::Finalizing, Some(Status::Succeeded))
    );
}

#[tokio::test]
async fn cancelling_stops_the_build() {
    require_docker();
    let src = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  install:\n    commands:\n      - echo go\n      - sleep 300\n",
    )
    .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let cancel = CancellationToken::new();
    let build = tokio::spawn(engine::run(
        request(src.path(), store.path(), Duration::from_secs(600)),
        tx,
        cancel.clone(),
    ));
    while let Some(e) = rx.recv().await {
        if matches!(&e, Event::Agent(l) if l.ends_with("Running command sleep 300")) {
            cancel.cancel();
        }
    }
    let outcome = build.await.unwrap().unwrap();
    assert_eq!(outcome.build.build_status, Status::Stopped);
    let install = outcome
        .build
        .phases
        .iter()
        .find(|p| p.phase_type == PhaseType::Install)
        .unwrap();
    assert_eq!(install.phase_status, Some(Status::Stopped));
}

#[tokio::test]
async fn dropping_a_running_build_still_removes_its_container() {
    require_docker();
    let src = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(
        src.path().join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n",
    )
    .unwrap();
    let mut req = request(src.path(), store.path(), Duration::from_secs(600));
    req.project = format!("dropped-{}", std::process::id());
    let prefix = format!("{}:", req.project);
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let build = tokio::spawn(engine::run(req, tx, CancellationToken::new()));
    while let Some(e) = rx.recv().await {
        if matches!(&e, Event::Agent(l) if l.ends_with("Running command sleep 300")) {
            break;
        }
    }
    let ours = || {
        let out = std::process::Command::new("docker")
            .args(["ps", "-a", "--filter", "label=localbuild.build-id"])
            .args(["--format", "{{.Label \"localbuild.build-id\"}}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .count()
    };
    assert_eq!(ours(), 1, "the build container runs");
    build.abort();
    assert!(build.await.unwrap_err().is_cancelled());
    assert_eq!(ours(), 0, "the dropped build left its container behind");
}
