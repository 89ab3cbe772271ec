//! The runtime seam is real: whole builds through the engine against a runtime that is not
//! Docker (`localbuild_engine::local_runtime`, feature `local-runtime`). A "container" is a
//! folder of this machine and its processes are `/bin/sh` children, so the lifecycle (every transition, retry, stop, timeout, fault) and the shell protocol are
//! tested here without a daemon. (The Docker runtime has its own tests in `tests/it`.)

use localbuild_engine::local_runtime::LocalRuntime;
use localbuild_engine::record::{Build, PhaseType, Status};
use localbuild_engine::runtime::Runtime;
use localbuild_engine::store::{Place, Store, StoreError};
use localbuild_engine::{BuildRequest, Debug, Engine, Event, Outcome, Pause, Source};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A store in a temporary folder, keeping the records it was given.
#[derive(Default)]
struct MemoryStore {
    dir: Mutex<Option<tempfile::TempDir>>,
    numbers: Mutex<HashMap<String, u64>>,
    saved: Mutex<Vec<Build>>,
    /// Saves fail (as on a full disk) while this file exists.
    full_while: Option<PathBuf>,
    /// Every build log goes here (e.g. `/dev/full`, where every write fails).
    log_at: Option<PathBuf>,
}

impl Store for MemoryStore {
    fn create(&self, project: &str, _build_id: &str) -> Result<Place, StoreError> {
        let mut dir = self.dir.lock().unwrap();
        let root = dir
            .get_or_insert_with(|| tempfile::tempdir().unwrap())
            .path()
            .to_owned();
        let mut numbers = self.numbers.lock().unwrap();
        let number = numbers.entry(project.to_owned()).or_default();
        *number += 1;
        let place = root.join(format!("{project}-{number}"));
        std::fs::create_dir_all(&place).unwrap();
        Ok(Place {
            number: *number,
            log: self
                .log_at
                .clone()
                .unwrap_or_else(|| place.join("build.log")),
            artifacts: place.join("artifacts"),
            reports: place.join("reports"),
            dir: place,
        })
    }

    fn save(&self, build: &Build) -> Result<(), StoreError> {
        if let Some(flag) = self.full_while.as_ref().filter(|f| f.exists()) {
            return Err(StoreError {
                action: "write",
                path: flag.clone(),
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        self.saved.lock().unwrap().push(build.clone());
        Ok(())
    }

    fn cache_dir(&self, project: &str) -> PathBuf {
        std::env::temp_dir().join(format!("localbuild-local-cache-{project}"))
    }
}

/// A build specification: a buildspec, request changes, then run and inspect.
struct Spec {
    buildspec: String,
    image: String,
    timeout: Duration,
    env: Vec<(String, String)>,
    debug: Debug,
}

/// What a finished local build left.
struct Finished {
    outcome: Outcome,
    log: String,
    /// `build.log.idx`
    index: Vec<u8>,
    saved: Vec<Build>,
}

impl Finished {
    fn phases(&self) -> Vec<(PhaseType, Option<Status>)> {
        let b = &self.outcome.build;
        b.phases
            .iter()
            .map(|p| (p.phase_type, p.phase_status))
            .collect()
    }

    fn status_of(&self, phase: PhaseType) -> Option<Status> {
        self.phases()
            .into_iter()
            .find(|(p, _)| *p == phase)
            .and_then(|(_, s)| s)
    }

    fn entered(&self, phase: PhaseType) -> bool {
        self.phases().iter().any(|(p, _)| *p == phase)
    }
}

fn build(buildspec: &str) -> Spec {
    Spec {
        buildspec: buildspec.to_owned(),
        image: LocalRuntime::IMAGE.to_owned(),
        timeout: Duration::from_secs(120),
        env: vec![],
        debug: Debug::default(),
    }
}

impl Spec {
    fn image(mut self, image: &str) -> Spec {
        self.image = image.to_owned();
        self
    }

    fn env(mut self, key: &str, value: &str) -> Spec {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    fn timeout(mut self, t: Duration) -> Spec {
        self.timeout = t;
        self
    }

    fn debug(mut self, debug: Debug) -> Spec {
        self.debug = debug;
        self
    }

    /// Submit; `during` acts on the live handle before the build is awaited.
    async fn run_with(self, during: impl AsyncFnOnce(&localbuild_engine::BuildHandle)) -> Finished {
        self.run_in(async |handle, _| during(handle).await).await
    }

    /// As [`Spec::run_with`]; `during` also gets the agent's folder (`/codebuild/output/tmp`).
    async fn run_in(
        self,
        during: impl AsyncFnOnce(&localbuild_engine::BuildHandle, &Path),
    ) -> Finished {
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("buildspec.yml"), &self.buildspec).unwrap();
        std::fs::write(src.path().join("hello.txt"), "hello from the source\n").unwrap();
        let store = Arc::new(MemoryStore::default());
        let runtime = Arc::new(LocalRuntime::new().unwrap());
        let tmp = PathBuf::from(runtime.layout().tmp_dir());
        let engine = Engine::new(runtime, store.clone());
        let req = BuildRequest {
            image: self.image,
            timeout: self.timeout,
            env_overrides: self.env,
            debug: self.debug,
            ..BuildRequest::new("local", Source::Dir(src.path().to_owned()))
        };
        let handle = engine.submit(req).await.unwrap();
        during(&handle, &tmp).await;
        let outcome = tokio::time::timeout(Duration::from_secs(120), handle.outcome())
            .await
            .expect("the build ends");
        let log = std::fs::read_to_string(&outcome.log_path).unwrap();
        let index =
            std::fs::read(localbuild_engine::logindex::path_for(&outcome.log_path)).unwrap();
        let saved = store.saved.lock().unwrap().clone();
        Finished {
            outcome,
            log,
            index,
            saved,
        }
    }

    async fn run(self) -> Finished {
        self.run_with(async |_| {}).await
    }
}

/// Wait (bounded) until the agent logs `text`.
async fn until_agent(handle: &localbuild_engine::BuildHandle, text: &str) {
    let mut events = handle.subscribe();
    let wait = async {
        while let Some(e) = events.next().await {
            if matches!(&e, Event::Agent { text: t, .. } if t == text) {
                return;
            }
        }
        panic!("the build ended before {text:?}");
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("bounded wait");
}

/// Wait (bounded) for the build's next pause; why it paused.
async fn until_paused(events: &mut localbuild_engine::Subscription) -> Pause {
    let wait = async {
        while let Some(e) = events.next().await {
            if let Event::Paused { why, .. } = e {
                return why;
            }
        }
        panic!("the build ended without a pause");
    };
    tokio::time::timeout(Duration::from_secs(60), wait)
        .await
        .expect("bounded wait")
}

/// `codebuild-resume ARGS` as a person in the container would run it.
fn resume(tmp: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(tmp.join("bin/codebuild-resume"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

use PhaseType::*;

const ALL: [PhaseType; 11] = [
    Submitted,
    Queued,
    Provisioning,
    DownloadSource,
    Install,
    PreBuild,
    Build,
    PostBuild,
    UploadArtifacts,
    Finalizing,
    Completed,
];

#[tokio::test]
async fn a_passing_build_runs_every_phase_and_carries_shell_state() {
    let r = build(
        "version: 0.2\nphases:\n  install:\n    commands:\n      - cat hello.txt\n      - mkdir -p sub && cd sub\n      - export CARRIED=yes\n  build:\n    commands:\n      - echo \"pwd=$(basename $(pwd)) carried=$CARRIED succeeding=$CODEBUILD_BUILD_SUCCEEDING\"\n",
    )
    .run()
    .await;
    let phases: Vec<_> = r.phases().into_iter().map(|(p, _)| p).collect();
    assert_eq!(phases, ALL);
    assert_eq!(r.outcome.build.build_status, Status::Succeeded);
    assert!(r.log.contains("hello from the source\n"), "{}", r.log);
    assert!(
        r.log.contains("pwd=sub carried=yes succeeding=1\n"),
        "{}",
        r.log
    );
    assert!(r.log.contains("Phase complete: BUILD State: SUCCEEDED"));
    // The log's index, written along, has one entry per line, the same a later pass makes.
    let written = r.index.clone();
    assert_eq!(written.len() as u64, r.log.lines().count() as u64 * 16);
    let mut again = vec![];
    localbuild_engine::logindex::write_index(r.log.as_bytes(), &mut again).unwrap();
    assert_eq!(again, written);
    // The record was kept at every phase change, the last time complete.
    assert!(r.saved.len() >= 20, "{} saves", r.saved.len());
    assert!(r.saved.last().unwrap().build_complete);
}

#[tokio::test]
async fn a_build_failure_still_runs_post_build_and_upload_and_the_build_fails() {
    let r = build(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - exit 3\n      - echo skipped\n  post_build:\n    commands:\n      - echo \"post succeeding=$CODEBUILD_BUILD_SUCCEEDING\"\n",
    )
    .run()
    .await;
    assert_eq!(r.status_of(Build), Some(Status::Failed));
    assert_eq!(r.status_of(PostBuild), Some(Status::Succeeded));
    assert_eq!(r.status_of(UploadArtifacts), Some(Status::Succeeded));
    assert!(!r.log.contains("skipped\n"));
    assert!(r.log.contains("post succeeding=0\n"));
    assert!(
        r.log
            .contains("Command did not exit successfully exit 3 exit status 3")
    );
    assert_eq!(r.outcome.build.build_status, Status::Failed);
}

#[tokio::test]
async fn an_install_failure_goes_to_finalizing() {
    let r = build("version: 0.2\nphases:\n  install:\n    commands:\n      - false\n  build:\n    commands:\n      - echo never\n")
        .run()
        .await;
    assert_eq!(r.status_of(Install), Some(Status::Failed));
    assert!(!r.entered(Build) && !r.entered(UploadArtifacts));
    assert_eq!(r.status_of(Finalizing), Some(Status::Succeeded));
    assert_eq!(r.outcome.build.build_status, Status::Failed);
}

#[tokio::test]
async fn a_retried_phase_runs_again_until_it_succeeds() {
    let r = build(
        "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-2\n    commands:\n      - echo attempt >> $CODEBUILD_SRC_DIR/attempts\n      - test $(wc -l < $CODEBUILD_SRC_DIR/attempts) -ge 2\n",
    )
    .run()
    .await;
    assert!(
        r.log.contains("Retrying phase BUILD (attempt 1 of 2)"),
        "{}",
        r.log
    );
    assert!(!r.log.contains("attempt 2 of 2"));
    assert_eq!(r.status_of(Build), Some(Status::Succeeded));
    assert_eq!(r.outcome.build.build_status, Status::Succeeded);
}

#[tokio::test]
async fn a_stopped_build_ends_stopped_in_the_phase_it_was_in() {
    let r = build("version: 0.2\nphases:\n  pre_build:\n    commands:\n      - sleep 300\n  build:\n    commands:\n      - echo never\n")
        .run_with(async |handle| {
            until_agent(handle, "Running command sleep 300").await;
            assert_eq!(handle.snapshot().current_phase, PreBuild);
            handle.stop();
        })
        .await;
    assert_eq!(r.status_of(PreBuild), Some(Status::Stopped));
    assert!(!r.entered(Build));
    assert_eq!(r.outcome.build.build_status, Status::Stopped);
    assert!(r.outcome.build.build_complete);
}

#[tokio::test]
async fn a_build_past_its_timeout_is_timed_out() {
    let r = build("version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n")
        .timeout(Duration::from_secs(2))
        .run()
        .await;
    assert_eq!(r.status_of(Build), Some(Status::TimedOut));
    assert!(r.log.contains("Phase context status code: BUILD_TIMED_OUT"));
    assert_eq!(r.outcome.build.build_status, Status::TimedOut);
}

#[tokio::test]
async fn an_image_that_cannot_be_had_is_a_provisioning_fault() {
    let r = build("version: 0.2\nphases:\n  build:\n    commands:\n      - echo never\n")
        .image("missing")
        .run()
        .await;
    assert_eq!(
        r.phases().into_iter().map(|(p, _)| p).collect::<Vec<_>>(),
        [Submitted, Queued, Provisioning, Finalizing, Completed]
    );
    assert_eq!(r.status_of(Provisioning), Some(Status::Failed));
    assert_eq!(r.outcome.build.build_status, Status::Fault);
}

#[tokio::test]
async fn a_buildspec_error_fails_download_source() {
    let r = build("version: 0.2\nphases:\n  bogus:\n    commands:\n      - echo\n")
        .run()
        .await;
    assert_eq!(r.status_of(DownloadSource), Some(Status::Failed));
    let ctx = r
        .outcome
        .build
        .phases
        .iter()
        .find(|p| p.phase_type == DownloadSource)
        .and_then(|p| p.contexts.clone())
        .unwrap();
    assert_eq!(ctx[0].status_code, "YAML_FILE_ERROR");
    assert!(!r.entered(Install));
    assert_eq!(r.outcome.build.build_status, Status::Failed);
}

#[tokio::test]
async fn variables_named_like_the_drivers_own_reach_the_commands_unchanged() {
    let r = build("version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"T=$T M=$M SH=$SH D=$D l=$l rc=$rc\"\n")
        .env("T", "/app/token")
        .env("M", "m")
        .env("SH", "s")
        .env("D", "d")
        .env("l", "L")
        .env("rc", "R")
        .run()
        .await;
    assert!(
        r.log.contains("T=/app/token M=m SH=s D=d l=L rc=R\n"),
        "{}",
        r.log
    );
}

const BREAKPOINT: &str = "version: 0.2
phases:
  build:
    commands:
      - export STAGE=two; mkdir -p sub; cd sub
      - codebuild-breakpoint
      - echo \"after $STAGE\"
";

#[tokio::test]
async fn a_breakpoint_waits_for_codebuild_resume_with_the_state_saved_for_the_shell() {
    let session = Debug {
        session: true,
        ..Debug::default()
    };
    let r = build(BREAKPOINT)
        .debug(session)
        .run_in(async |handle, tmp| {
            let mut events = handle.subscribe();
            assert_eq!(until_paused(&mut events).await, Pause::Breakpoint);
            assert_eq!(handle.snapshot().current_phase, Build);
            // What `localbuild attach` restores: the variables and folder the next command sees.
            let env = std::fs::read_to_string(tmp.join("debug/env.sh")).unwrap();
            assert!(
                env.contains("STAGE='two'") || env.contains("STAGE=\"two\""),
                "{env}"
            );
            let dir = std::fs::read_to_string(tmp.join("debug/dir")).unwrap();
            assert!(dir.trim_end().ends_with("/src/sub"), "{dir}");
            assert!(!handle.is_finished());
            assert_eq!(resume(tmp, &[]), "codebuild-resume: the build goes on\n");
        })
        .await;
    assert_eq!(r.outcome.build.build_status, Status::Succeeded);
    assert!(r.log.contains("\nafter two\n"), "{}", r.log);
    assert!(r.log.contains("Build resumed"), "{}", r.log);
    let session = r.outcome.build.debug_session.as_ref().unwrap();
    assert!(session.session_enabled);
}

#[tokio::test]
async fn without_session_debugging_a_breakpoint_is_a_no_op() {
    let r = build(BREAKPOINT).run().await;
    assert_eq!(r.outcome.build.build_status, Status::Succeeded);
    assert!(
        r.log.contains("codebuild-breakpoint is ignored"),
        "{}",
        r.log
    );
    assert!(r.outcome.build.debug_session.is_none());
}

#[tokio::test]
async fn a_paused_build_still_times_out() {
    let r = build(BREAKPOINT)
        .debug(Debug {
            session: true,
            ..Debug::default()
        })
        .timeout(Duration::from_secs(2))
        .run()
        .await;
    assert_eq!(r.status_of(Build), Some(Status::TimedOut));
    assert_eq!(r.outcome.build.build_status, Status::TimedOut);
}

#[tokio::test]
async fn a_failed_command_pauses_and_resume_retry_runs_it_again() {
    let on_failure = Debug {
        on_failure: true,
        ..Debug::default()
    };
    let r = build("version: 0.2\nphases:\n  build:\n    commands:\n      - test -f ready\n      - echo ready\n      - exit 3\n")
        .debug(on_failure)
        .run_in(async |handle, tmp| {
            let mut events = handle.subscribe();
            assert_eq!(until_paused(&mut events).await, Pause::Failure);
            let dir = std::fs::read_to_string(tmp.join("debug/dir")).unwrap();
            std::fs::write(Path::new(dir.trim_end()).join("ready"), "").unwrap();
            resume(tmp, &["--retry"]);
            // The next failure pauses again; a plain resume goes on with the failure.
            assert_eq!(until_paused(&mut events).await, Pause::Failure);
            let env = std::fs::read_to_string(tmp.join("debug/env.sh")).unwrap();
            assert!(env.contains("CODEBUILD_LAST_EXIT='3'") || env.contains("CODEBUILD_LAST_EXIT=\"3\""), "{env}");
            resume(tmp, &[]);
        })
        .await;
    assert_eq!(r.outcome.build.build_status, Status::Failed);
    assert!(
        r.log.contains("Retrying command test -f ready"),
        "{}",
        r.log
    );
    assert!(r.log.contains("\nready\n"), "{}", r.log);
    assert!(r.log.contains("exit status 3"), "{}", r.log);
}

/// A build submitted to an engine over `store`, on the local runtime.
async fn submit_to(store: Arc<MemoryStore>, buildspec: &str) -> localbuild_engine::BuildHandle {
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("buildspec.yml"), buildspec).unwrap();
    let engine = Engine::new(Arc::new(LocalRuntime::new().unwrap()), store);
    let req = BuildRequest {
        image: LocalRuntime::IMAGE.to_owned(),
        ..BuildRequest::new("local", Source::Dir(src.keep()))
    };
    engine.submit(req).await.unwrap()
}

#[tokio::test]
async fn a_record_that_cannot_be_saved_ends_the_build_failed_and_is_saved_once_the_store_takes_it()
{
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let store = Arc::new(MemoryStore {
        full_while: Some(full.clone()),
        ..MemoryStore::default()
    });
    // The disk "fills" during BUILD: the next save (BUILD's end) fails.
    let handle = submit_to(
        store.clone(),
        &format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - touch {}\n  post_build:\n    commands:\n      - echo post-build-ran\n",
            full.display()
        ),
    )
    .await;
    let mut events = handle.subscribe();
    let outcome = tokio::time::timeout(Duration::from_secs(60), handle.outcome())
        .await
        .expect("the build ends");
    let b = &outcome.build;
    assert_eq!(b.build_status, Status::Failed);
    assert!(b.build_complete);
    let failed: Vec<_> = b
        .phases
        .iter()
        .filter(|p| p.phase_status == Some(Status::Failed))
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", b.phases);
    assert_eq!(failed[0].phase_type, PostBuild);
    let ctx = &failed[0].contexts.as_ref().unwrap()[0];
    assert_eq!(ctx.status_code, "CLIENT_ERROR");
    assert_eq!(
        ctx.message,
        format!(
            "cannot save the build record ({}): No space left on device (os error 28)",
            full.display()
        )
    );
    assert!(!b.phases.iter().any(|p| p.phase_type == UploadArtifacts));
    let log = std::fs::read_to_string(&outcome.log_path).unwrap();
    assert!(!log.contains("post-build-ran"), "{log}");
    assert!(outcome.store_error.is_some());
    // Said once in the event stream.
    let mut said = 0;
    while let Some(e) = events.next().await {
        if matches!(&e, Event::Progress(t) if t.contains("cannot save the build record")) {
            said += 1;
        }
    }
    assert_eq!(said, 1);
    // The handle answers the final record; the store gets it once it can take it again.
    assert_eq!(handle.snapshot().build_status, Status::Failed);
    assert!(!store.saved.lock().unwrap().last().unwrap().build_complete);
    std::fs::remove_file(&full).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let last = store.saved.lock().unwrap().last().cloned().unwrap();
        if last.build_complete {
            assert_eq!(last.build_status, Status::Failed);
            assert_eq!(last.phases, b.phases);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the record is saved");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_log_that_cannot_be_written_ends_the_build_failed_and_says_so_once() {
    let store = Arc::new(MemoryStore {
        log_at: Some(PathBuf::from("/dev/full")),
        ..MemoryStore::default()
    });
    let handle = submit_to(
        store.clone(),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo one\n      - echo two\n",
    )
    .await;
    let mut events = handle.subscribe();
    let outcome = tokio::time::timeout(Duration::from_secs(60), handle.outcome())
        .await
        .expect("the build ends");
    let b = &outcome.build;
    assert_eq!(b.build_status, Status::Failed);
    let failed = b
        .phases
        .iter()
        .find(|p| p.phase_status == Some(Status::Failed))
        .expect("a failed phase");
    let ctx = &failed.contexts.as_ref().unwrap()[0];
    assert_eq!(ctx.status_code, "CLIENT_ERROR");
    assert_eq!(
        ctx.message,
        "cannot write the build log /dev/full: No space left on device (os error 28)"
    );
    assert!(
        !b.phases.iter().any(|p| p.phase_type == Build),
        "{:?}",
        b.phases
    );
    // The record was kept; the error is said once however many lines followed.
    assert!(store.saved.lock().unwrap().last().unwrap().build_complete);
    let mut said = 0;
    while let Some(e) = events.next().await {
        if matches!(&e, Event::Progress(t) if t.contains("cannot write the build log")) {
            said += 1;
        }
    }
    assert_eq!(said, 1);
}
