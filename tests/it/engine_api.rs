//! The engine as a library: submit a request, watch the live build through its handle (snapshot,
//! several subscribers), stop it, and get the record at the end, with real Docker.

use crate::harness::{IMAGE, require_docker};
use localbuild_docker::Docker;
use localbuild_engine::record::{Build, PhaseType, Status};
use localbuild_engine::{BuildHandle, BuildRequest, Engine, Event, Outcome, Source, Subscription};
use localbuild_store::FolderStore;
use std::sync::Arc;
use std::time::Duration;

/// A build started through the library; its folders live as long as this value.
struct Started {
    _src: tempfile::TempDir,
    _store: tempfile::TempDir,
    handle: BuildHandle,
}

/// Write `buildspec` into a new source folder and submit it; `adjust` changes the request.
async fn start(buildspec: &str, adjust: impl FnOnce(&mut BuildRequest)) -> Started {
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
        ..BuildRequest::new("api", Source::Dir(src.path().to_owned()))
    };
    adjust(&mut req);
    let docker = Docker::connect().await.unwrap();
    let engine = Engine::new(Arc::new(docker), Arc::new(FolderStore::new(store.path())));
    let handle = engine.submit(req).await.unwrap();
    Started {
        handle,
        _src: src,
        _store: store,
    }
}

/// Read events until one satisfies `stop` (bounded: a build that never shows it fails).
async fn read_until(events: &mut Subscription, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = vec![];
    let read = async {
        while let Some(e) = events.next().await {
            let done = stop(&e);
            seen.push(e);
            if done {
                return;
            }
        }
        panic!("the build ended before the expected event");
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("no such event within 120 s");
    seen
}

fn agent_says(e: &Event, text: &str) -> bool {
    matches!(e, Event::Agent { text: t, .. } if t == text)
}

fn output_of(events: &[Event]) -> String {
    let mut out = Vec::new();
    for e in events {
        if let Event::Output(b) = e {
            out.extend_from_slice(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn phase(b: &Build, p: PhaseType) -> &localbuild_engine::record::BuildPhase {
    b.phases.iter().find(|x| x.phase_type == p).unwrap()
}

/// How many containers are labelled with this build's id.
fn containers_of(build_id: &str) -> usize {
    crate::util::containers_of(build_id).len()
}

#[tokio::test]
async fn a_build_reports_events_and_ends_in_a_record() {
    let run = start(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"request=$FROM_REQUEST\"\n",
        |_| {},
    )
    .await;
    assert_eq!(run.handle.number, 1);
    assert!(
        run.handle
            .arn
            .starts_with("arn:aws:codebuild:eu-central-1:")
    );
    let mut events = run.handle.subscribe();
    let mut all = vec![];
    while let Some(e) = events.next().await {
        all.push(e);
    }
    let outcome: Outcome = run.handle.outcome().await;
    assert_eq!(outcome.build.build_status, Status::Succeeded);
    assert_eq!(outcome.build.initiator, "tester");
    assert!(output_of(&all).contains("request=yes\n"));
    let started: Vec<_> = all
        .iter()
        .filter_map(|e| match e {
            Event::PhaseStarted { phase, .. } => Some(*phase),
            _ => None,
        })
        .collect();
    assert!(
        matches!(all.first(), Some(Event::Started(b)) if b.current_phase == PhaseType::Submitted)
    );
    assert_eq!(started.first(), Some(&PhaseType::Submitted));
    assert_eq!(started.last(), Some(&PhaseType::Completed));
    assert_eq!(
        started
            .iter()
            .filter(|p| **p == PhaseType::Completed)
            .count(),
        1,
        "COMPLETED is announced once"
    );
    // The last event carries the final record, status set.
    match all.last() {
        Some(Event::Finished(b)) => {
            assert_eq!(b.build_status, Status::Succeeded);
            assert!(b.build_complete);
        }
        other => panic!("last event: {other:?}"),
    }
    assert!(outcome.log_path.exists());
}

#[tokio::test]
async fn a_live_build_can_be_watched_by_late_subscribers_and_stopped() {
    let run = start(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo first line\n      - sleep 300\n  post_build:\n    commands:\n      - echo never\n",
        |_| {},
    )
    .await;
    let mut early = run.handle.subscribe();
    read_until(&mut early, |e| agent_says(e, "Running command sleep 300")).await;

    // While the command sleeps, the snapshot says where the build is.
    let live = run.handle.snapshot();
    assert_eq!(live.build_status, Status::InProgress);
    assert_eq!(live.current_phase, PhaseType::Build);
    assert!(!live.build_complete);
    assert_eq!(phase(&live, PhaseType::Build).phase_status, None);
    assert_eq!(
        phase(&live, PhaseType::PreBuild).phase_status,
        Some(Status::Succeeded)
    );

    // A second subscriber, attached mid-build, first receives what it missed.
    let mut late = run.handle.subscribe();
    let replay = read_until(&mut late, |e| agent_says(e, "Running command sleep 300")).await;
    assert!(matches!(replay.first(), Some(Event::Started(_))));
    assert!(output_of(&replay).contains("first line\n"));
    assert!(replay.iter().any(|e| agent_says(e, "Entering phase BUILD")));

    run.handle.stop();
    let outcome = tokio::time::timeout(Duration::from_secs(60), run.handle.outcome())
        .await
        .expect("a stopped build ends promptly");
    let b = &outcome.build;
    assert_eq!(b.build_status, Status::Stopped);
    assert_eq!(
        phase(b, PhaseType::Build).phase_status,
        Some(Status::Stopped)
    );
    assert!(
        !b.phases
            .iter()
            .any(|p| p.phase_type == PhaseType::PostBuild)
    );
    // Both subscribers see the end.
    for sub in [&mut early, &mut late] {
        let rest = read_until(sub, |e| matches!(e, Event::Finished(_))).await;
        assert!(
            matches!(rest.last(), Some(Event::Finished(b)) if b.build_status == Status::Stopped)
        );
        assert!(sub.next().await.is_none());
    }
    assert_eq!(containers_of(&b.id), 0, "nothing is left in Docker");
    // The record on disk says the same.
    let on_disk: Build =
        serde_json::from_slice(&std::fs::read(outcome.dir.join("build.json")).unwrap()).unwrap();
    assert_eq!(on_disk.build_status, Status::Stopped);
}

#[tokio::test]
async fn a_build_that_runs_too_long_times_out() {
    let started = std::time::Instant::now();
    let run = start(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n  post_build:\n    commands:\n      - echo never\n",
        |req| req.timeout = Duration::from_secs(3),
    )
    .await;
    let outcome = run.handle.outcome().await;
    assert!(started.elapsed() < Duration::from_secs(60));
    let b = &outcome.build;
    assert_eq!(b.build_status, Status::TimedOut);
    let phases: Vec<_> = b
        .phases
        .iter()
        .map(|p| (p.phase_type, p.phase_status))
        .collect();
    let build_phase = phase(b, PhaseType::Build);
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
async fn stopping_in_install_stops_the_build() {
    let run = start(
        "version: 0.2\nphases:\n  install:\n    commands:\n      - echo go\n      - sleep 300\n",
        |_| {},
    )
    .await;
    let mut events = run.handle.subscribe();
    read_until(&mut events, |e| agent_says(e, "Running command sleep 300")).await;
    run.handle.stop();
    let outcome = run.handle.outcome().await;
    assert_eq!(outcome.build.build_status, Status::Stopped);
    assert_eq!(
        phase(&outcome.build, PhaseType::Install).phase_status,
        Some(Status::Stopped)
    );
}

#[tokio::test]
async fn a_refused_request_starts_nothing() {
    require_docker();
    let store = tempfile::tempdir().unwrap();
    let docker = Docker::connect().await.unwrap();
    let engine = Engine::new(Arc::new(docker), Arc::new(FolderStore::new(store.path())));
    let req = BuildRequest::new("../escape", Source::Dir(store.path().to_owned()));
    let err = engine.submit(req).await.err().expect("refused");
    assert!(
        err.to_string().contains("not a valid project name"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0);
}

#[test]
fn shutting_down_the_runtime_mid_build_still_removes_its_container() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (id, _run) = rt.block_on(async {
        let run = start(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n",
            |_| {},
        )
        .await;
        let mut events = run.handle.subscribe();
        read_until(&mut events, |e| agent_says(e, "Running command sleep 300")).await;
        (run.handle.id.clone(), run)
    });
    assert_eq!(containers_of(&id), 1, "the build container runs");
    // Dropping the runtime drops the build's future mid-command: the cleanup guard runs.
    drop(rt);
    assert_eq!(
        containers_of(&id),
        0,
        "the dropped build left its container behind"
    );
}

#[tokio::test]
async fn a_build_stopped_while_its_container_is_being_created_leaves_nothing() {
    for _ in 0..6 {
        let run = start(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo never\n",
            |_| {},
        )
        .await;
        let mut events = run.handle.subscribe();
        read_until(&mut events, |e| {
            matches!(
                e,
                Event::PhaseStarted {
                    phase: PhaseType::Provisioning,
                    ..
                }
            )
        })
        .await;
        run.handle.stop();
        let outcome = run.handle.outcome().await;
        assert_eq!(outcome.build.build_status, Status::Stopped);
        assert_eq!(
            containers_of(&outcome.build.id),
            0,
            "a container created while the build stopped outlived it"
        );
    }
}
