//! Carries out one build: the async half of the lifecycle. [`crate::lifecycle`] decides what
//! comes next; this module does it: PROVISIONING ([`provision`]), DOWNLOAD_SOURCE
//! ([`download`], [`runtimes`]), the buildspec phases ([`commands`]), UPLOAD_ARTIFACTS and the cache
//! ([`outputs`]), FINALIZING. It reaches containers only through [`crate::runtime::Runtime`],
//! reports only through the build's [`Hub`], and keeps the record through the [`Store`].
//!
//! Stop, timeout and a store failure (the hub's `broken` token: the log or the record cannot
//! be written) are honoured around every wait on the container (`guard`, `interruptible`);
//! transfers in UPLOAD_ARTIFACTS and the container's creation (a create request dropped in
//! flight would still make a container after the cleanup looked) are checked before and after.

mod commands;
mod download;
mod outputs;
mod provision;
mod runtimes;

use crate::buildspec::{self, Buildspec};
use crate::event::Event;
use crate::handle::{Engine, Hub};
use crate::images::ImageTracker;
use crate::lifecycle::{Ended, Lifecycle, Next, is_logged};
use crate::log::context_message;
use crate::record::*;
use crate::request::{BuildRequest, BuildspecSource};
use crate::runtime::{Layout, Runtime};
use crate::shell::Driver;
use crate::store::{Place, Store};
use crate::{Outcome, hints};
use bytes::Bytes;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) use download::Loaded;

/// Why a build stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    TimedOut,
    Stopped,
    /// The build's log or record cannot be kept ([`Hub::store_failure`] says why).
    Broken,
}

/// How one attempt at a phase went: what the lifecycle needs to decide, and what the record
/// and the hint need to say.
struct Attempt {
    how: Ended,
    /// The phase's context (`None`: the phase has no contexts key, as SUBMITTED and QUEUED).
    context: Option<PhaseContext>,
    /// The failing command's output and exit status (for `RETRY-N-regex` and hints).
    output: Bytes,
    code: i64,
}

impl Attempt {
    fn succeeded() -> Attempt {
        Attempt::with(Ended::Succeeded, PhaseContext::default())
    }

    fn with(how: Ended, context: PhaseContext) -> Attempt {
        Attempt {
            how,
            context: Some(context),
            output: Bytes::new(),
            code: 0,
        }
    }

    fn interrupted(i: Interrupt) -> Attempt {
        match i {
            Interrupt::TimedOut => Attempt::with(
                Ended::TimedOut,
                PhaseContext::new("BUILD_TIMED_OUT", "Build has timed out. "),
            ),
            Interrupt::Stopped => Attempt::with(Ended::Stopped, PhaseContext::default()),
            // The context (naming the write error) is filled in by `BuildExecution::execute`.
            Interrupt::Broken => Attempt::with(Ended::Aborted, PhaseContext::default()),
        }
    }
}

impl From<Result<(), PhaseError>> for Attempt {
    fn from(r: Result<(), PhaseError>) -> Attempt {
        match r {
            Ok(()) => Attempt::succeeded(),
            Err(PhaseError::Interrupted(i)) => Attempt::interrupted(i),
            Err(PhaseError::Failed(ctx)) => Attempt::with(Ended::Failed, ctx),
            Err(PhaseError::Fault(ctx)) => Attempt::with(Ended::Fault, ctx),
        }
    }
}

/// The record of a build just submitted (id `<project>:<uuid>`, at `place`): what the engine
/// starts from, and what a caller that holds a build in a queue of its own shows meanwhile.
pub fn new_record(req: &BuildRequest, build_id: &str, uuid: &str, place: &Place) -> Build {
    let region = &req.region;
    let group = format!("/aws/codebuild/{}", req.project);
    let (kind, location, depth, version) = match &req.source {
        crate::request::Source::Dir(dir) => ("NO_SOURCE", dir.display().to_string(), None, None),
        crate::request::Source::Git {
            kind,
            location,
            depth,
            version,
            ..
        } => (
            kind.as_str(),
            location.clone(),
            depth.filter(|&d| d > 0),
            version.clone().filter(|v| !v.is_empty()),
        ),
        crate::request::Source::Zip { location, .. } => ("S3", location.clone(), None, None),
        crate::request::Source::Pipeline { location, .. } => {
            ("CODEPIPELINE", location.clone(), None, None)
        }
        crate::request::Source::Unresolved { kind, location, .. } => {
            (kind.as_str(), location.clone(), None, None)
        }
        crate::request::Source::None => ("NO_SOURCE", String::new(), None, None),
    };
    Build {
        id: build_id.to_owned(),
        arn: format!(
            "arn:aws:codebuild:{region}:{}:build/{build_id}",
            req.account_id
        ),
        build_number: place.number,
        start_time: crate::record::epoch_now(),
        end_time: None,
        current_phase: PhaseType::Submitted,
        build_status: Status::InProgress,
        source_version: version,
        resolved_source_version: None,
        project_name: req.project.clone(),
        phases: vec![],
        source: Source {
            kind: kind.to_owned(),
            location,
            git_clone_depth: depth,
            source_identifier: None,
            buildspec: match &req.buildspec {
                BuildspecSource::Default => None,
                BuildspecSource::File(p) => Some(p.display().to_string()),
                BuildspecSource::InSource(p) | BuildspecSource::Inline(p) => Some(p.clone()),
            },
        },
        secondary_sources: req
            .secondary_sources
            .iter()
            .map(|(id, dir)| Source {
                kind: "NO_SOURCE".to_owned(),
                location: dir.display().to_string(),
                git_clone_depth: None,
                source_identifier: Some(id.clone()),
                buildspec: None,
            })
            .collect(),
        artifacts: Artifacts::default(),
        secondary_artifacts: vec![],
        cache: match &req.s3_cache {
            Some(c) => Cache {
                kind: "S3".to_owned(),
                location: Some(c.location.clone()),
            },
            None => Cache {
                kind: "NO_CACHE".to_owned(),
                location: None,
            },
        },
        environment: Environment {
            kind: "LINUX_CONTAINER".to_owned(),
            image: req.image.clone(),
            compute_type: req
                .compute_type
                .clone()
                .unwrap_or_else(|| "BUILD_GENERAL1_SMALL".to_owned()),
            environment_variables: vec![],
            privileged_mode: req.privileged,
            image_pull_credentials_type: "CODEBUILD".to_owned(),
        },
        logs: Logs {
            deep_link: format!(
                "https://console.aws.amazon.com/cloudwatch/home?region={region}#logEvent:group={group};stream={uuid}"
            ),
            group_name: group,
            stream_name: uuid.to_owned(),
            cloud_watch_logs: LogStatus {
                status: "ENABLED".to_owned(),
            },
            s3_logs: LogStatus {
                status: "DISABLED".to_owned(),
            },
            local_path: Some(place.log.display().to_string()),
        },
        timeout_in_minutes: req.timeout.as_secs().div_ceil(60),
        queued_timeout_in_minutes: 480,
        build_complete: false,
        initiator: req.initiator.clone(),
        encryption_key: format!("arn:aws:kms:{region}:{}:alias/aws/s3", req.account_id),
        exported_environment_variables: vec![],
        report_arns: vec![],
        build_batch_arn: req.batch.as_ref().map(|b| b.batch_arn.clone()),
        debug_session: req.debug.any().then_some(DebugSession {
            session_enabled: req.debug.session,
            session_target: None,
        }),
    }
}

/// One build being carried out.
pub(crate) struct BuildExecution {
    req: BuildRequest,
    runtime: Arc<dyn Runtime>,
    store: Arc<dyn Store>,
    hub: Arc<Hub>,
    cancel: CancellationToken,
    /// Fired by the hub when the build's log or record cannot be written.
    broken: CancellationToken,
    deadline: Instant,
    place: Place,
    build: Build,
    build_id: String,
    layout: Layout,
    /// The local image that runs the build in place of `req.image`, if one does.
    stand_in: Option<crate::runtime::StandIn>,
    container: Option<String>,
    /// One driver per `run-as` user (`None` = the image's default user, root).
    /// (In a `Mutex` only so that `BuildExecution` is `Sync`; a driver is used by one command at a time.)
    drivers: HashMap<Option<String>, std::sync::Mutex<Driver>>,
    marker: String,
    src_root: String,
    src_dir: String,
    succeeding: bool,
    last_exit: i64,
    /// The environment every driver starts with (`KEY=VALUE`).
    driver_env: Vec<String>,
    /// The container id is known (it was created and started).
    provisioned: bool,
    /// The default user's shell is the container's main process (it ends when its stdin does).
    main_driver: bool,
    /// The shell commands run with (`env.shell`, default `/bin/sh`).
    shell: String,
    /// Removing the container failed: search by label at the end.
    leftovers: bool,
    /// Images built and pushed, read from command output.
    images: ImageTracker,
    /// Artifacts, reports and cache state (see `outputs`).
    outputs: outputs::Outputs,
    /// The first failure to keep the record (the build goes on; the outcome says so).
    store_error: Option<String>,
    /// A git source's checkout (made before PROVISIONING, deleted at the end of the build).
    checkout: Option<Checkout>,
    /// The build's local AWS endpoint; dropped (closed) after the container is removed.
    aws_endpoint: Option<crate::local_aws::AwsEndpoint>,
    /// Progress lines said while the build log runs, published after its last line
    /// ([`Run::progress`]). (A `Mutex` only so that `Run` is `Sync`.)
    held: std::sync::Mutex<Vec<String>>,
}

/// A git source checked out for one build: the folder is the build's, and goes with it (a
/// `TempDir` is removed on drop, so also on a panic or a dropped build).
struct Checkout {
    dir: tempfile::TempDir,
    commit: String,
}

impl BuildExecution {
    pub(crate) fn new(
        engine: Engine,
        req: BuildRequest,
        place: Place,
        hub: Arc<Hub>,
        cancel: CancellationToken,
        broken: CancellationToken,
    ) -> BuildExecution {
        let runtime = engine.runtime().clone();
        let layout = runtime.layout();
        let build = hub.record();
        let src_root = format!(
            "{}/src{}",
            layout.output_dir,
            100_000_000 + (uuid::Uuid::new_v4().as_u128() % 900_000_000)
        );
        BuildExecution {
            deadline: Instant::now() + req.timeout,
            build_id: build.id.clone(),
            build,
            store: engine.store().clone(),
            runtime,
            hub,
            cancel,
            broken,
            container: None,
            drivers: HashMap::new(),
            marker: format!("__localbuild_{}__", uuid::Uuid::new_v4().simple()),
            src_dir: if req.secondary_sources.is_empty() {
                format!("{src_root}/src")
            } else {
                format!("{src_root}/src/s3/00")
            },
            src_root,
            layout,
            succeeding: true,
            last_exit: 0,
            driver_env: vec![],
            provisioned: false,
            stand_in: None,
            main_driver: false,
            shell: "/bin/sh".to_owned(),
            leftovers: false,
            images: ImageTracker::new(),
            outputs: outputs::Outputs::default(),
            store_error: None,
            checkout: None,
            aws_endpoint: None,
            held: Default::default(),
            place,
            req,
        }
    }

    /// Carry out the build to the end, whatever happens, and publish its outcome.
    pub(crate) async fn run(mut self) {
        // If this future panics or is dropped mid-build, the guard still removes the container.
        let mut guard = CleanupGuard {
            runtime: Some(self.runtime.clone()),
            build_id: self.build_id.clone(),
        };
        self.execute().await;
        self.cleanup().await;
        guard.runtime = None;
        if let Some(checkout) = self.checkout.take() {
            let _ = tokio::task::spawn_blocking(move || checkout.dir.close()).await;
        }
        self.hub.flush_log();
        let saved = self.save().await;
        let outcome = Outcome {
            build: self.build.clone(),
            dir: self.place.dir.clone(),
            log_path: self.place.log.clone(),
            images: std::mem::take(&mut self.images).into_phases(),
            reports: std::mem::take(&mut self.outputs.reports),
            artifacts: std::mem::take(&mut self.outputs.artifacts),
            store_error: (!saved).then(|| self.store_error.take()).flatten(),
        };
        let last = outcome.build.clone();
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|e| e.into_inner()));
        for line in held {
            self.emit(Event::Progress(line));
        }
        self.hub.finish(outcome);
        if !saved {
            // The final record is answered from memory (the handle, the store's unsaved
            // records) and saved as soon as the store can take it again.
            tokio::spawn(crate::store::save_until_kept(self.store.clone(), last));
        }
    }

    /// Keep the record as it is now; whether it was kept. A failure ends the build: the hub
    /// says it once and fires `broken` (the current phase ends FAILED, see `execute`).
    async fn save(&mut self) -> bool {
        let store = self.store.clone();
        let build = self.build.clone();
        let saved = tokio::task::spawn_blocking(move || store.save(&build)).await;
        let error = match saved {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => format!(
                "cannot save the build record ({}): {}",
                e.path.display(),
                e.source
            ),
            Err(e) => format!("cannot save the build record: {e}"),
        };
        self.store_error = Some(error.clone());
        self.hub.store_failed(error);
        false
    }

    /// Publish an event; returns it as published (masked).
    fn emit(&self, event: Event) -> Event {
        self.hub.publish(event)
    }

    /// An agent line of the build log.
    fn agent(&self, message: &str) {
        self.emit(Event::Agent {
            at: OffsetDateTime::now_utc(),
            text: message.to_owned(),
        });
    }

    /// Command output (complete lines).
    fn output(&mut self, bytes: Bytes) {
        if let Event::Output(masked) = self.emit(Event::Output(bytes)) {
            self.images.feed(self.build.current_phase, &masked);
        }
    }

    /// localbuild's own line (a note, a warning), not part of the build log. Said at once
    /// before the log begins (PROVISIONING's image work); from DOWNLOAD_SOURCE on, the log is
    /// running and the line is held until after its last line, so progress lines never land
    /// in the middle of the `[Container]` log on a terminal that shows both.
    fn progress(&self, message: &str) {
        let before_log = matches!(
            self.build.current_phase,
            PhaseType::Submitted | PhaseType::Queued | PhaseType::Provisioning
        );
        if before_log {
            self.emit(Event::Progress(message.to_owned()));
        } else {
            self.held
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(message.to_owned());
        }
    }

    /// Start a phase; phases are contiguous in time.
    async fn begin(&mut self, phase: PhaseType) {
        let start = self.build.begin_phase(phase);
        self.hub.set_record(&self.build);
        self.emit(Event::PhaseStarted { phase, at: start });
        self.save().await;
    }

    /// End the current phase; the agent's two closing lines first for the phases it logs.
    async fn close(&mut self, status: Status, context: Option<PhaseContext>) {
        let phase = self.build.current_phase;
        let context = context.map(|mut c| {
            c.message = self.hub.mask(&c.message);
            c
        });
        if let (true, Some(ctx)) = (is_logged(phase), &context) {
            self.agent(&format!(
                "Phase complete: {} State: {}",
                phase.as_str(),
                status.as_str()
            ));
            self.agent(&context_message(&ctx.status_code, &ctx.message));
        }
        let Some(end) = self.build.close_phase(
            status,
            context.clone().map(|c| vec![c]),
            crate::record::epoch_now(),
        ) else {
            return;
        };
        self.hub.set_record(&self.build);
        self.emit(Event::PhaseEnded {
            phase,
            status,
            contexts: context.map(|c| vec![c]),
            at: end,
        });
        self.save().await;
    }

    fn interrupted(&self) -> Option<Interrupt> {
        if self.cancel.is_cancelled() {
            Some(Interrupt::Stopped)
        } else if self.broken.is_cancelled() {
            Some(Interrupt::Broken)
        } else if Instant::now() >= self.deadline {
            Some(Interrupt::TimedOut)
        } else {
            None
        }
    }

    /// Await `fut` unless the build is stopped or times out first.
    async fn guard<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, Interrupt> {
        interruptible(&self.cancel, &self.broken, self.deadline, fut).await
    }

    /// The lifecycle: carry out the current phase, ask [`Lifecycle`] what it means, repeat.
    async fn execute(&mut self) {
        let mut lifecycle = Lifecycle::new();
        let mut phase = Lifecycle::FIRST;
        let mut loaded: Option<Loaded> = None;
        let mut spec: Option<Buildspec> = None;
        self.begin(phase).await;
        loop {
            let current = phase.buildspec_phase();
            let definition = match (current, &spec) {
                (Some(name), Some(spec)) => spec.phases.get(name).cloned().unwrap_or_default(),
                _ => buildspec::Phase::default(),
            };
            let broken = self.broken.is_cancelled()
                && !matches!(phase, PhaseType::Finalizing | PhaseType::Completed);
            let mut attempt = match phase {
                // The record or log cannot be kept: the phase is not carried out.
                _ if broken => Attempt::interrupted(Interrupt::Broken),
                PhaseType::Submitted | PhaseType::Queued => Attempt {
                    context: None,
                    ..Attempt::succeeded()
                },
                PhaseType::Provisioning => {
                    // The buildspec and environment are worked out on the host first, so that
                    // the shell can be the container's main process; problems are reported in
                    // DOWNLOAD_SOURCE, as CodeBuild does.
                    loaded = Some(self.load().await);
                    self.provision().await.into()
                }
                PhaseType::DownloadSource => match loaded.take() {
                    Some(l) => match self.download_source(l).await {
                        Ok(s) => {
                            spec = Some(s);
                            Attempt::succeeded()
                        }
                        Err(e) => Err(e).into(),
                    },
                    None => Attempt::succeeded(),
                },
                PhaseType::UploadArtifacts => match &spec {
                    Some(s) => {
                        let s = s.clone();
                        self.upload_artifacts(&s).await.into()
                    }
                    None => Attempt::succeeded(),
                },
                PhaseType::Finalizing => {
                    // A stopped, timed-out or faulted build may still be running a command.
                    // So may a build whose output cannot be kept.
                    let graceful =
                        matches!(lifecycle.build_status(), Status::Succeeded | Status::Failed)
                            && !self.broken.is_cancelled();
                    self.remove_container(graceful).await;
                    Attempt::succeeded()
                }
                PhaseType::Completed => Attempt::succeeded(),
                _ => match &spec {
                    Some(s) => {
                        let s = s.clone();
                        self.run_phase(&s, &definition).await
                    }
                    None => Attempt::succeeded(),
                },
            };
            if attempt.how == Ended::Aborted {
                // CLIENT_ERROR, as CodeBuild reports a failure to store what the build
                // produced (e.g. UPLOAD_ARTIFACTS that cannot write): the build's commands did
                // not fail (not COMMAND_EXECUTION_ERROR) and the container did not die (not a
                // FAULT); the cause is outside the build, on the machine that keeps it.
                let why = self.hub.store_failure().unwrap_or_default();
                attempt.context = Some(PhaseContext::new("CLIENT_ERROR", why));
            }
            let output = String::from_utf8_lossy(&attempt.output);
            let message = attempt.context.as_ref().map_or("", |c| c.message.as_str());
            let decision = lifecycle.ended(
                phase,
                attempt.how,
                definition.on_failure.as_ref(),
                &[message, &output],
            );
            if let Next::Retry { attempt: n, of } = decision.next {
                let name = current.map_or("", |n| n.upper());
                self.agent(&format!("Retrying phase {name} (attempt {n} of {of})"));
                continue;
            }
            let hint = match (attempt.how, &spec) {
                (Ended::Failed, Some(spec)) if current.is_some() => {
                    // An image from a registry this machine cannot reach: the command (in the
                    // message) may be what names it.
                    hints::offline_hint(&format!("{message}\n{output}")).or_else(|| {
                        hints::hint(&hints::Facts {
                            output: &output,
                            exit_code: attempt.code,
                            privileged: self.req.privileged,
                            shell: spec.env.shell.as_deref(),
                            image: &self.req.image,
                        })
                    })
                }
                // The build image's pull from a registry this machine cannot reach.
                (Ended::Fault, _) if phase == PhaseType::Provisioning => {
                    hints::offline_hint(message)
                }
                _ => None,
            };
            let leaving_phases = current.is_some()
                && matches!(attempt.how, Ended::Succeeded | Ended::Failed)
                && matches!(
                    decision.next,
                    Next::Enter(PhaseType::UploadArtifacts | PhaseType::Finalizing)
                );
            if let Some(status) = decision.status {
                self.close(status, attempt.context).await;
            }
            if let Some(hint) = hint {
                self.agent(&format!("Hint: {hint}"));
            }
            if let (true, Some(s)) = (leaving_phases, &spec) {
                let s = s.clone();
                self.export_variables(&s).await;
            }
            match decision.next {
                Next::Enter(PhaseType::Completed) => {
                    // The final status is set before COMPLETED is announced.
                    self.build.end(lifecycle.build_status());
                    phase = PhaseType::Completed;
                    self.begin(phase).await;
                }
                Next::Enter(next) => {
                    phase = next;
                    self.begin(phase).await;
                    if let Some(name) = phase.buildspec_phase() {
                        self.agent(&format!("Entering phase {}", name.upper()));
                    }
                }
                Next::Retry { .. } | Next::Done => break,
            }
        }
    }

    async fn remove_container(&mut self, graceful: bool) {
        tracing::debug!("finalizing: removing the container");
        let root = self.take_driver(None);
        self.drivers.clear();
        // `--keep-container`, for a build that ended on its own: the main shell is parked
        // (it never reads again), so the container stays up, labelled, for `localbuild shell`.
        if graceful
            && self.req.debug.keep_container
            && self.container.is_some()
            && (root.is_some() || !self.main_driver)
        {
            if let Some(driver) = root {
                driver.park().await;
            }
            let id = self.container.take().unwrap_or_default();
            let name = self
                .build
                .debug_session
                .as_ref()
                .and_then(|d| d.session_target.clone())
                .unwrap_or(id);
            self.agent(&format!(
                "Keeping the build container {name}: `localbuild shell {}` opens a shell in it, `localbuild gc` removes it",
                self.build_id
            ));
            return;
        }
        if let Some(driver) = root {
            // End of stdin ends the main-process shell, and with it the container.
            driver.close().await;
        }
        if let Some(id) = self.container.take() {
            if graceful && self.main_driver {
                self.runtime.wait_stopped(&id, Duration::from_secs(2)).await;
            }
            if self.runtime.remove_container(&id).await.is_err() {
                self.leftovers = true;
            }
        }
    }

    /// Whatever happened, nothing labelled with this build stays behind. The container was
    /// removed by id in FINALIZING; a search by label is needed only when that failed or when
    /// provisioning did not get as far as knowing the container's id.
    async fn cleanup(&mut self) {
        tracing::debug!("cleanup");
        self.remove_container(false).await;
        // A privileged build's Docker commands may have made containers, volumes and
        // networks of their own (labelled by its guarded Docker API).
        if self.leftovers
            || !self.provisioned
            || (self.req.privileged && !self.req.debug.keep_container)
        {
            let _ = self
                .runtime
                .remove_build_resources(Some(&self.build_id))
                .await;
        }
        self.aws_endpoint = None;
    }
}

/// Removes the build's labelled resources on drop unless disarmed (panic or dropped future).
struct CleanupGuard {
    runtime: Option<Arc<dyn Runtime>>,
    build_id: String,
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let id = std::mem::take(&mut self.build_id);
        // A fresh runtime on its own thread: this may run while a runtime is unwinding.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(runtime.remove_build_resources(Some(&id)));
            }
        })
        .join();
    }
}

/// Await `fut` unless `cancel` or `broken` fires or `deadline` passes first.
async fn interruptible<T>(
    cancel: &CancellationToken,
    broken: &CancellationToken,
    deadline: Instant,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Interrupt> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Interrupt::Stopped),
        () = broken.cancelled() => Err(Interrupt::Broken),
        () = tokio::time::sleep_until(deadline) => Err(Interrupt::TimedOut),
        v = fut => Ok(v),
    }
}

/// Why a lifecycle phase (PROVISIONING, DOWNLOAD_SOURCE, UPLOAD_ARTIFACTS) did not succeed.
enum PhaseError {
    Interrupted(Interrupt),
    Failed(PhaseContext),
    /// The build container could not be provisioned or died.
    Fault(PhaseContext),
}

/// A container-name-safe version of the project name.
fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.trim_start_matches(['-', '.', '_']).to_owned()
}

/// `no such file or directory`, as Go prints it.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => e.to_string(),
    }
}
