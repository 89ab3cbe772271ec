//! The engine as a library: a request in, events out, cancellable, a record at the end.

use crate::harness::{IMAGE, require_docker};
use localbuild::engine::record::{PhaseType, Status};
use localbuild::engine::{self, BuildRequest, CancellationToken, EngineError, Event, Outcome};
use std::time::Duration;

/// A build started through the library; its folders live as long as this value.
struct Started {
    _src: tempfile::TempDir,
    _store: tempfile::TempDir,
    build: tokio::task::JoinHandle<Result<Outcome, EngineError>>,
    events: tokio::sync::mpsc::Receiver<Event>,
}

/// Write `buildspec` into a new source folder and start `engine::run` on it; `adjust` changes
/// the request first.
fn start(
    buildspec: &str,
    cancel: CancellationToken,
    adjust: impl FnOnce(&mut BuildRequest),
) -> Started {
    require_docker();
    let src = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("buildspec.yml"), buildspec).unwrap();
    let mut req = BuildRequest {
        image: IMAGE.into(),
        timeout: Duration::from_secs(600),
        env_overrides: vec![("FROM_REQUEST".into(), "yes".into())],
        initiator: "tester".into(),
        region: "eu-central-1".into(),
        ..BuildRequest::new("api", src.path().to_owned(), store.path().to_owned())
    };
    adjust(&mut req);
    let (tx, events) = tokio::sync::mpsc::channel(64);
    Started {
        build: tokio::spawn(engine::run(req, tx, cancel)),
        events,
        _src: src,
        _store: store,
    }
}

#[tokio::test]
async fn a_build_reports_events_and_ends_in_a_record() {
    let mut run = start(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"request=$FROM_REQUEST\"\n",
        CancellationToken::new(),
        |_| {},
    );
    let mut output = Vec::new();
    let mut started = Vec::new();
    while let Some(e) = run.events.recv().await {
        match e {
            Event::Output(b) => output.extend_from_slice(&b),
            Event::PhaseStarted(p) => started.push(p),
            _ => {}
        }
    }
    let outcome = run.build.await.unwrap().unwrap();
    assert_eq!(outcome.build.build_status, Status::Succeeded);
    assert_eq!(outcome.build.initiator, "tester");
    assert!(String::from_utf8_lossy(&output).contains("request=yes\n"));
    assert_eq!(started.first(), Some(&PhaseType::Submitted));
    assert_eq!(started.last(), Some(&PhaseType::Completed));
    assert!(outcome.log_path.exists());
}

#[tokio::test]
async fn a_build_that_runs_too_long_times_out() {
    let started = std::time::Instant::now();
    let mut run = start(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n  post_build:\n    commands:\n      - echo never\n",
        CancellationToken::new(),
        |req| req.timeout = Duration::from_secs(3),
    );
    while run.events.recv().await.is_some() {}
    let build = run.build;
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
    let cancel = CancellationToken::new();
    let mut run = start(
        "version: 0.2\nphases:\n  install:\n    commands:\n      - echo go\n      - sleep 300\n",
        cancel.clone(),
        |_| {},
    );
    while let Some(e) = run.events.recv().await {
        if matches!(&e, Event::Agent(l) if l.ends_with("Running command sleep 300")) {
            cancel.cancel();
        }
    }
    let build = run.build;
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
    let project = format!("dropped-{}", std::process::id());
    let prefix = format!("{project}:");
    let mut run = start(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n",
        CancellationToken::new(),
        |req| req.project = project,
    );
    while let Some(e) = run.events.recv().await {
        if matches!(&e, Event::Agent(l) if l.ends_with("Running command sleep 300")) {
            break;
        }
    }
    let build = run.build;
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
