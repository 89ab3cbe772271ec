//! Batch builds, as CodeBuild's `StartBuildBatch` runs them (reference §1.7).
//!
//! [`Engine::submit_batch`] takes the parent [`BuildRequest`] and the tasks the buildspec
//! crate expanded ([`crate::buildspec::batch::expand`]) and returns a [`BatchHandle`] at once.
//! Every task is a whole build of its own through [`Engine::submit`] (its container, record,
//! log), marked as a batch member (`CODEBUILD_BATCH_BUILD_IDENTIFIER`,
//! `CODEBUILD_BUILD_BATCH_TRIGGERED=true`, `buildBatchArn`). A task's build starts when its
//! batch's [`Slots`] give it a slot ([`Parallel`]: at most N at once, first come first served
//! in task order; the build service passes its one build queue); a task starts only when every
//! task it depends on SUCCEEDED, and a task whose dependency did not succeed is recorded as
//! never started (FAILED). With `fast-fail`, the first failing task that does not
//! `ignore-failure` stops the running builds and starts no more; [`BatchHandle::stop`] does the
//! same for the user. With `combine_artifacts`, each build writes its artifacts into a folder
//! named by its identifier inside the batch's artifacts folder, so COMBINE_ARTIFACTS only
//! checks what is there.
//!
//! The batch's record is CodeBuild's `BuildBatch` ([`crate::record::BuildBatch`]), saved
//! through the [`crate::store::Store`] at every change. Its status: SUCCEEDED when every task
//! without `ignore-failure` succeeded, STOPPED when stopped, TIMED_OUT when
//! [`BatchConfig::timeout`] passed (the running builds are stopped as by a stop), FAILED
//! otherwise.

use crate::buildspec::batch::Task;
use crate::record::{
    Artifacts, BatchPhase, BatchPhaseType, BatchRestrictions, BuildBatch, BuildBatchConfig,
    BuildGroup, BuildSummary, Status,
};
use crate::request::{BatchMember, BuildRequest, BuildspecSource, RequestError, Source};
use crate::store::StoreError;
use crate::{BuildHandle, Engine, Outcome};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;

/// A slot for one build; dropping it frees the slot.
pub type Slot = Box<dyn Send>;

/// Where the builds of a batch wait for a slot to run in.
pub trait Slots: Send + Sync + 'static {
    /// Wait for a slot for one build of `project`. Dropping the future before it is ready
    /// gives up its place.
    fn acquire(&self, project: &str) -> Pin<Box<dyn Future<Output = Slot> + Send>>;
}

/// At most N builds at once, first come first served (`run --batch --parallel N`).
pub struct Parallel(Arc<Semaphore>);

impl Parallel {
    /// Slots for `n` builds at once (at least 1).
    pub fn new(n: usize) -> Arc<Parallel> {
        Arc::new(Parallel(Arc::new(Semaphore::new(n.max(1)))))
    }
}

impl Slots for Parallel {
    fn acquire(&self, _project: &str) -> Pin<Box<dyn Future<Output = Slot> + Send>> {
        let semaphore = self.0.clone();
        Box::pin(async move { Box::new(semaphore.acquire_owned().await.ok()) as Slot })
    }
}

/// How to run a batch (CodeBuild's project-level `buildBatchConfig`, plus where its builds
/// wait for a slot).
#[derive(Clone)]
pub struct BatchConfig {
    /// Where each task's build waits for a slot before it is submitted.
    pub slots: Arc<dyn Slots>,
    /// `fast-fail` from the buildspec.
    pub fast_fail: bool,
    /// `combineArtifacts`: each build's artifacts under `<batch artifacts>/<identifier>/`.
    pub combine_artifacts: bool,
    /// `restrictions.maximumBuildsAllowed`: a larger batch is refused.
    pub maximum_builds_allowed: Option<u32>,
    /// `timeoutInMins`: when it passes, the running builds are stopped, no other starts and
    /// the batch ends TIMED_OUT.
    pub timeout: Option<Duration>,
}

/// Why a batch was not started (nothing ran).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    #[error(
        "the batch has no builds (the 'batch' section defines no build-list, build-graph, build-matrix or build-fanout)"
    )]
    Empty,
    #[error(
        "the batch has {builds} builds, more than the {allowed} allowed (restrictions.maximum-builds-allowed)"
    )]
    TooManyBuilds { builds: usize, allowed: u32 },
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("invalid batch identifier {identifier:?}: {why}")]
    Identifier { identifier: String, why: String },
    #[error("task '{identifier}': {error}")]
    Task {
        identifier: String,
        error: RequestError,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What happens in a batch, for its one listener ([`BatchHandle::events`]).
#[derive(Clone)]
pub enum BatchEvent {
    /// A task's build was submitted: watch it through its handle.
    TaskStarted {
        identifier: String,
        build: BuildHandle,
    },
    /// A task's build ended.
    TaskFinished { identifier: String, status: Status },
    /// A task will never start: a dependency did not succeed, or the batch is stopping.
    TaskSkipped {
        identifier: String,
        status: Status,
        reason: String,
    },
    /// The batch is over: its final record.
    Finished(Box<BuildBatch>),
}

/// One task's end: its build's outcome, or why it never started.
#[derive(Debug, Clone)]
pub struct TaskOutcome {
    pub identifier: String,
    pub depends_on: Vec<String>,
    pub ignore_failure: bool,
    /// `None` when the task never started.
    pub outcome: Option<Outcome>,
    /// The task's status (a task that never started is FAILED, or STOPPED when the batch was
    /// stopping).
    pub status: Status,
    /// Why a task never started.
    pub skipped: Option<String>,
}

/// A finished batch.
#[derive(Debug, Clone)]
pub struct BatchOutcome {
    pub batch: BuildBatch,
    /// Every task, in the batch's order.
    pub tasks: Vec<TaskOutcome>,
    /// The batch's folder (record, combined artifacts).
    pub dir: PathBuf,
    /// The folder combined artifacts went to, when combining.
    pub artifacts: Option<PathBuf>,
    /// The batch record could not be kept in the store.
    pub store_error: Option<String>,
}

/// A running (or finished) batch. Clones watch the same batch.
#[derive(Clone)]
pub struct BatchHandle {
    pub id: String,
    pub arn: String,
    pub number: u64,
    shared: Arc<Shared>,
}

struct Shared {
    record: Mutex<BuildBatch>,
    /// Stops the running builds and starts no more (stop, fast-fail).
    halt: CancellationToken,
    stopped: AtomicBool,
    /// The batch's `timeoutInMins` passed (it halted the batch).
    timed_out: AtomicBool,
    events: Mutex<Option<mpsc::UnboundedReceiver<BatchEvent>>>,
    outcome: watch::Sender<Option<Arc<BatchOutcome>>>,
    /// Saves one at a time, each of the record as it is then, so that none overtakes a later.
    saving: tokio::sync::Mutex<()>,
}

impl Shared {
    /// Keep the record as it is now in `store`.
    async fn save(&self, store: Arc<dyn crate::store::Store>) -> Option<String> {
        let _one = self.saving.lock().await;
        let record = lock(&self.record).clone();
        match tokio::task::spawn_blocking(move || store.save_batch(&record)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        }
    }
}

impl BatchHandle {
    /// The live batch record.
    pub fn snapshot(&self) -> BuildBatch {
        lock(&self.shared.record).clone()
    }

    /// Whether `other` watches the same run of the batch (a retry runs under the same id).
    pub fn is(&self, other: &BatchHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// The batch's events, from its start; only the first call gets them.
    pub fn events(&self) -> Option<mpsc::UnboundedReceiver<BatchEvent>> {
        lock(&self.shared.events).take()
    }

    /// Stop the batch: every running build is stopped, no other starts; it ends STOPPED.
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.shared.halt.cancel();
    }

    /// Wait for the end of the batch.
    pub async fn outcome(&self) -> BatchOutcome {
        let mut rx = self.shared.outcome.subscribe();
        loop {
            if let Some(o) = rx.borrow_and_update().as_ref() {
                return (**o).clone();
            }
            // The sender lives in `shared`, which this handle holds.
            let _ = rx.changed().await;
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> f64 {
    crate::record::epoch_now()
}

/// The request of one task: the parent's, with the task's buildspec, image, privileged mode,
/// compute type and variables, and its batch membership.
pub fn task_request(
    parent: &BuildRequest,
    task: &Task,
    batch_arn: &str,
    artifacts: Option<PathBuf>,
) -> BuildRequest {
    let mut req = parent.clone();
    if let Some(path) = &task.buildspec {
        req.buildspec = BuildspecSource::InSource(path.clone());
    }
    if let Some(image) = &task.image {
        req.image = image.clone();
    }
    if let Some(p) = task.privileged {
        req.privileged = p;
    }
    if task.compute_type.is_some() {
        req.compute_type = task.compute_type.clone();
    }
    // Like StartBuild's environmentVariablesOverride for this build: over the batch's.
    req.env_overrides.extend(task.variables.iter().cloned());
    req.artifacts_dir = artifacts;
    // A folder refused here (a link out of it) leaves the reports in the build's own folder.
    req.reports_dir = parent
        .reports_dir
        .as_ref()
        .and_then(|d| task_dir(d, &task.identifier).ok());
    req.batch = Some(BatchMember {
        batch_arn: batch_arn.to_owned(),
        identifier: task.identifier.clone(),
        shard: task.shard,
    });
    req
}

fn phase(kind: BatchPhaseType, start: f64) -> BatchPhase {
    BatchPhase {
        phase_type: kind,
        phase_status: None,
        start_time: start,
        end_time: None,
        duration_in_seconds: None,
        contexts: None,
    }
}

/// How a retried batch treats the tasks of its earlier attempt (RetryBuildBatch's `retryType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryType {
    /// Run again only the tasks that did not succeed (CodeBuild's default).
    FailedBuilds,
    /// Run every task again.
    AllBuilds,
}

impl Engine {
    /// Check the batch, claim a batch number and start it. Returns as soon as the batch is
    /// recorded; nothing ran when this returns `Err`.
    pub async fn submit_batch(
        &self,
        parent: BuildRequest,
        tasks: Vec<Task>,
        config: BatchConfig,
    ) -> Result<BatchHandle, BatchError> {
        let uuid = uuid::Uuid::new_v4().to_string();
        let id = format!("{}:{uuid}", parent.project);
        let arn = format!(
            "arn:aws:codebuild:{}:{}:build-batch/{id}",
            parent.region, parent.account_id
        );
        check_batch(&parent, &tasks, &config, &arn)?;
        let store = self.store().clone();
        let (project, batch_id) = (parent.project.clone(), id.clone());
        let place = blocking(move || store.create_batch(&project, &batch_id)).await?;
        let artifacts = config.combine_artifacts.then(|| {
            parent
                .artifacts_dir
                .clone()
                .unwrap_or_else(|| place.artifacts.clone())
        });
        let start = now();
        let record = BuildBatch {
            id: id.clone(),
            arn: arn.clone(),
            build_batch_number: place.number,
            start_time: start,
            end_time: None,
            current_phase: BatchPhaseType::Submitted,
            build_batch_status: Status::InProgress,
            project_name: parent.project.clone(),
            phases: vec![phase(BatchPhaseType::Submitted, start)],
            source: crate::record::Source {
                kind: match &parent.source {
                    Source::Git { kind, .. } => kind.clone(),
                    Source::Zip { .. } => "S3".to_owned(),
                    Source::Unresolved { kind, .. } => kind.clone(),
                    Source::Pipeline { .. } => "CODEPIPELINE".to_owned(),
                    _ => "NO_SOURCE".to_owned(),
                },
                location: match &parent.source {
                    Source::Dir(d) => d.display().to_string(),
                    Source::Git { location, .. }
                    | Source::Zip { location, .. }
                    | Source::Unresolved { location, .. }
                    | Source::Pipeline { location, .. } => location.clone(),
                    Source::None => String::new(),
                },
                git_clone_depth: None,
                source_identifier: None,
                buildspec: match &parent.buildspec {
                    BuildspecSource::Default => None,
                    BuildspecSource::File(p) => Some(p.display().to_string()),
                    BuildspecSource::InSource(p) | BuildspecSource::Inline(p) => Some(p.clone()),
                },
            },
            artifacts: Artifacts {
                location: artifacts
                    .as_ref()
                    .map(|a| a.display().to_string())
                    .unwrap_or_default(),
                ..Artifacts::default()
            },
            environment: crate::record::Environment {
                kind: "LINUX_CONTAINER".to_owned(),
                image: parent.image.clone(),
                compute_type: parent
                    .compute_type
                    .clone()
                    .unwrap_or_else(|| "BUILD_GENERAL1_SMALL".to_owned()),
                environment_variables: vec![],
                privileged_mode: parent.privileged,
                image_pull_credentials_type: "CODEBUILD".to_owned(),
            },
            build_timeout_in_minutes: parent.timeout.as_secs().div_ceil(60),
            complete: false,
            initiator: parent.initiator.clone(),
            encryption_key: format!(
                "arn:aws:kms:{}:{}:alias/aws/s3",
                parent.region, parent.account_id
            ),
            build_batch_config: BuildBatchConfig {
                combine_artifacts: config.combine_artifacts,
                restrictions: BatchRestrictions {
                    maximum_builds_allowed: config.maximum_builds_allowed,
                },
                timeout_in_mins: config.timeout.map(|t| t.as_secs().div_ceil(60)),
            },
            build_groups: tasks
                .iter()
                .map(|t| BuildGroup {
                    identifier: t.identifier.clone(),
                    depends_on: t.depends_on.clone(),
                    ignore_failure: t.ignore_failure,
                    current_build_summary: None,
                    prior_build_summary_list: vec![],
                })
                .collect(),
        };
        let initial = vec![State::Waiting; tasks.len()];
        Ok(self
            .launch(record, place.dir, artifacts, parent, tasks, config, initial)
            .await)
    }

    /// Run a finished batch again under its own id and number, as RetryBuildBatch does: the
    /// tasks to run again keep their earlier builds in `priorBuildSummaryList`; with
    /// [`RetryType::FailedBuilds`] a task that SUCCEEDED keeps its build and counts as done
    /// (its dependents may start at once). `tasks` is the batch's expansion now; a task the
    /// earlier attempt did not have simply runs.
    pub async fn retry_batch(
        &self,
        prior: BuildBatch,
        parent: BuildRequest,
        tasks: Vec<Task>,
        config: BatchConfig,
        retry: RetryType,
    ) -> Result<BatchHandle, BatchError> {
        check_batch(&parent, &tasks, &config, &prior.arn)?;
        let store = self.store().clone();
        let (project, number) = (prior.project_name.clone(), prior.build_batch_number);
        let place = blocking(move || store.reopen_batch(&project, number)).await?;
        let artifacts = config.combine_artifacts.then(|| {
            parent
                .artifacts_dir
                .clone()
                .unwrap_or_else(|| place.artifacts.clone())
        });
        let (record, initial) = retried(prior, &tasks, retry, now());
        Ok(self
            .launch(record, place.dir, artifacts, parent, tasks, config, initial)
            .await)
    }

    #[allow(clippy::too_many_arguments)]
    async fn launch(
        &self,
        record: BuildBatch,
        dir: PathBuf,
        artifacts: Option<PathBuf>,
        parent: BuildRequest,
        tasks: Vec<Task>,
        config: BatchConfig,
        initial: Vec<State>,
    ) -> BatchHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = BatchHandle {
            id: record.id.clone(),
            arn: record.arn.clone(),
            number: record.build_batch_number,
            shared: Arc::new(Shared {
                record: Mutex::new(record),
                halt: CancellationToken::new(),
                stopped: AtomicBool::new(false),
                timed_out: AtomicBool::new(false),
                events: Mutex::new(Some(rx)),
                outcome: watch::Sender::new(None),
                saving: tokio::sync::Mutex::new(()),
            }),
        };
        let run = BatchCoordinator {
            engine: self.clone(),
            parent,
            tasks,
            config,
            shared: handle.shared.clone(),
            events: tx,
            dir,
            artifacts,
            store_error: None,
        };
        run.save().await;
        tokio::spawn(run.run(initial));
        handle
    }
}

/// Everything that must hold before a batch starts: nothing runs when this fails.
fn check_batch(
    parent: &BuildRequest,
    tasks: &[Task],
    config: &BatchConfig,
    arn: &str,
) -> Result<(), BatchError> {
    parent.check()?;
    if tasks.is_empty() {
        return Err(BatchError::Empty);
    }
    if let Some(allowed) = config.maximum_builds_allowed
        && tasks.len() > allowed as usize
    {
        return Err(BatchError::TooManyBuilds {
            builds: tasks.len(),
            allowed,
        });
    }
    for t in tasks {
        if let Err(why) = localbuild_buildspec::names::batch_identifier(&t.identifier) {
            return Err(BatchError::Identifier {
                identifier: t.identifier.clone(),
                why,
            });
        }
        task_request(parent, t, arn, None)
            .check()
            .map_err(|error| BatchError::Task {
                identifier: t.identifier.clone(),
                error,
            })?;
    }
    Ok(())
}

/// The folder of task `identifier` under a batch's `dir` (combined artifacts, reports).
fn task_dir(dir: &Path, identifier: &str) -> Result<PathBuf, localbuild_confine::Refused> {
    localbuild_confine::Root::new(dir).confined("batch identifier", identifier)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError {
            action: "reach",
            path: PathBuf::from("the build history"),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// The record of a batch about to run again, and where each of `tasks` starts: the final
/// phase of the earlier attempt is closed and a new SUBMITTED phase begins; a group that runs
/// again moves its build to `priorBuildSummaryList`.
fn retried(
    mut batch: BuildBatch,
    tasks: &[Task],
    retry: RetryType,
    at: f64,
) -> (BuildBatch, Vec<State>) {
    let mut prior: HashMap<String, BuildGroup> = batch
        .build_groups
        .drain(..)
        .map(|g| (g.identifier.clone(), g))
        .collect();
    let mut initial = Vec::with_capacity(tasks.len());
    for t in tasks {
        let mut group = prior.remove(&t.identifier).unwrap_or_else(|| BuildGroup {
            identifier: t.identifier.clone(),
            depends_on: vec![],
            ignore_failure: false,
            current_build_summary: None,
            prior_build_summary_list: vec![],
        });
        group.depends_on = t.depends_on.clone();
        group.ignore_failure = t.ignore_failure;
        let succeeded = group
            .current_build_summary
            .as_ref()
            .is_some_and(|s| s.build_status == Status::Succeeded);
        if succeeded && retry == RetryType::FailedBuilds {
            initial.push(State::Done(Status::Succeeded));
        } else {
            if let Some(s) = group.current_build_summary.take() {
                group.prior_build_summary_list.push(s);
            }
            initial.push(State::Waiting);
        }
        batch.build_groups.push(group);
    }
    if let Some(p) = batch.phases.last_mut()
        && p.end_time.is_none()
    {
        p.end_time = Some(at);
        p.duration_in_seconds = Some(crate::record::whole_seconds(p.start_time, at));
    }
    batch.phases.push(phase(BatchPhaseType::Submitted, at));
    batch.current_phase = BatchPhaseType::Submitted;
    batch.build_batch_status = Status::InProgress;
    batch.end_time = None;
    batch.complete = false;
    (batch, initial)
}

/// Where a task is.
#[derive(Debug, Clone)]
enum State {
    Waiting,
    Running,
    Done(Status),
    Skipped(Status, String),
}

/// One batch being carried out: the coordinator loop that starts tasks as their dependencies end.
struct BatchCoordinator {
    engine: Engine,
    parent: BuildRequest,
    tasks: Vec<Task>,
    config: BatchConfig,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<BatchEvent>,
    dir: PathBuf,
    artifacts: Option<PathBuf>,
    store_error: Option<String>,
}

type TaskResult = (usize, Result<Outcome, String>);

impl BatchCoordinator {
    fn update(&self, f: impl FnOnce(&mut BuildBatch)) {
        f(&mut lock(&self.shared.record));
    }

    async fn save(&self) -> Option<String> {
        self.shared.save(self.engine.store().clone()).await
    }

    async fn save_keep(&mut self) {
        if let Some(e) = self.save().await {
            self.store_error.get_or_insert(e);
        }
    }

    /// End the current phase with `status` and begin `next`.
    fn next_phase(&self, status: Status, next: BatchPhaseType) {
        let t = now();
        self.update(|b| {
            if let Some(p) = b.phases.last_mut() {
                p.phase_status = Some(status);
                p.end_time = Some(t);
                p.duration_in_seconds = Some(crate::record::whole_seconds(p.start_time, t));
            }
            b.phases.push(phase(next, t));
            b.current_phase = next;
        });
    }

    fn emit(&self, e: BatchEvent) {
        let _ = self.events.send(e);
    }

    async fn run(mut self, initial: Vec<State>) {
        self.next_phase(Status::Succeeded, BatchPhaseType::DownloadBatchspec);
        self.next_phase(Status::Succeeded, BatchPhaseType::InProgress);
        self.save_keep().await;

        let n = self.tasks.len();
        let index: HashMap<String, usize> = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.identifier.clone(), i))
            .collect();
        let mut state = initial;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
        let running: Arc<Mutex<HashMap<usize, BuildHandle>>> = Arc::default();
        let mut set: tokio::task::JoinSet<TaskResult> = tokio::task::JoinSet::new();
        let mut failed = false;
        // `timeoutInMins` from now (this run of the batch).
        let deadline = self.config.timeout.map(|t| tokio::time::Instant::now() + t);

        loop {
            // Start what can start; skip what never will.
            let halted = self.shared.halt.is_cancelled();
            let mut changed = true;
            while changed {
                changed = false;
                for i in 0..n {
                    if !matches!(state[i], State::Waiting) {
                        continue;
                    }
                    let deps: Vec<&State> = self.tasks[i]
                        .depends_on
                        .iter()
                        .filter_map(|d| index.get(d).map(|&j| &state[j]))
                        .collect();
                    let blocked = self.tasks[i]
                        .depends_on
                        .iter()
                        .find(|d| {
                            index.get(*d).is_some_and(|&j| {
                                matches!(&state[j], State::Done(s) if *s != Status::Succeeded)
                                    || matches!(state[j], State::Skipped(..))
                            })
                        })
                        .cloned();
                    let skip = if halted {
                        Some((
                            Status::Stopped,
                            if self.shared.stopped.load(Ordering::SeqCst) {
                                "the batch was stopped".to_owned()
                            } else if self.shared.timed_out.load(Ordering::SeqCst) {
                                "the batch timed out".to_owned()
                            } else {
                                "fast-fail: another task failed".to_owned()
                            },
                        ))
                    } else {
                        blocked.map(|d| {
                            (
                                Status::Failed,
                                format!("not started: its dependency '{d}' did not succeed"),
                            )
                        })
                    };
                    if let Some((status, reason)) = skip {
                        state[i] = State::Skipped(status, reason.clone());
                        self.update(|b| {
                            b.build_groups[i].current_build_summary = Some(BuildSummary {
                                arn: None,
                                requested_on: None,
                                build_status: status,
                            })
                        });
                        self.emit(BatchEvent::TaskSkipped {
                            identifier: self.tasks[i].identifier.clone(),
                            status,
                            reason,
                        });
                        changed = true;
                        continue;
                    }
                    let ready = deps
                        .iter()
                        .all(|s| matches!(s, State::Done(Status::Succeeded)));
                    if ready {
                        state[i] = State::Running;
                        changed = true;
                        set.spawn(self.start_task(i, running.clone()));
                    }
                }
            }
            self.save_keep().await;
            if set.is_empty() {
                break;
            }
            let joined = tokio::select! {
                j = set.join_next() => j,
                _ = sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)),
                    if deadline.is_some() && !self.shared.halt.is_cancelled() => {
                    // `timeoutInMins` passed: halt as a stop does.
                    self.shared.timed_out.store(true, Ordering::SeqCst);
                    self.shared.halt.cancel();
                    for h in lock(&running).values() {
                        h.stop();
                    }
                    continue;
                }
                _ = self.shared.halt.cancelled(), if !self.shared.halt.is_cancelled() => {
                    // Stop every running build; a task starting now sees the token.
                    for h in lock(&running).values() {
                        h.stop();
                    }
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            let (i, result) = match joined {
                Ok(r) => r,
                Err(e) => {
                    // A task future panicked: nothing sensible to attach it to.
                    tracing::error!("a batch task failed: {e}");
                    continue;
                }
            };
            lock(&running).remove(&i);
            let task = &self.tasks[i];
            let status = match result {
                Ok(outcome) => {
                    let status = outcome.build.build_status;
                    let summary = BuildSummary {
                        arn: Some(outcome.build.arn.clone()),
                        requested_on: Some(outcome.build.start_time),
                        build_status: status,
                    };
                    self.update(|b| b.build_groups[i].current_build_summary = Some(summary));
                    outcomes[i] = Some(outcome);
                    state[i] = State::Done(status);
                    self.emit(BatchEvent::TaskFinished {
                        identifier: task.identifier.clone(),
                        status,
                    });
                    status
                }
                Err(reason) => {
                    let status = if self.shared.halt.is_cancelled() {
                        Status::Stopped
                    } else {
                        Status::Failed
                    };
                    self.update(|b| {
                        b.build_groups[i].current_build_summary = Some(BuildSummary {
                            arn: None,
                            requested_on: None,
                            build_status: status,
                        })
                    });
                    state[i] = State::Skipped(status, reason.clone());
                    self.emit(BatchEvent::TaskSkipped {
                        identifier: task.identifier.clone(),
                        status,
                        reason,
                    });
                    status
                }
            };
            if status != Status::Succeeded && !task.ignore_failure {
                failed = true;
                if self.config.fast_fail && !self.shared.halt.is_cancelled() {
                    self.shared.halt.cancel();
                    for h in lock(&running).values() {
                        h.stop();
                    }
                }
            }
        }

        // The batch's status.
        let stopped = self.shared.stopped.load(Ordering::SeqCst);
        let all_ok =
            self.tasks.iter().enumerate().all(|(i, t)| {
                t.ignore_failure || matches!(state[i], State::Done(Status::Succeeded))
            });
        let status = if stopped {
            Status::Stopped
        } else if self.shared.timed_out.load(Ordering::SeqCst) {
            Status::TimedOut
        } else if all_ok && !failed {
            Status::Succeeded
        } else {
            Status::Failed
        };
        // A timed-out batch ends in FAILED: CodeBuild's batch phases have no TIMED_OUT.
        let last = match status {
            Status::Succeeded => BatchPhaseType::Succeeded,
            Status::Stopped => BatchPhaseType::Stopped,
            _ => BatchPhaseType::Failed,
        };
        if self.artifacts.is_some() {
            // Each build wrote its artifacts into its folder of the batch's artifacts.
            self.next_phase(status, BatchPhaseType::CombineArtifacts);
            self.next_phase(Status::Succeeded, last);
        } else {
            self.next_phase(status, last);
        }
        let end = now();
        self.update(|b| {
            b.build_batch_status = status;
            b.end_time = Some(end);
            b.complete = true;
        });
        self.save_keep().await;
        let batch = lock(&self.shared.record).clone();
        let tasks = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let (status, skipped) = match &state[i] {
                    State::Done(s) => (*s, None),
                    State::Skipped(s, r) => (*s, Some(r.clone())),
                    State::Waiting | State::Running => (Status::Failed, None),
                };
                TaskOutcome {
                    identifier: t.identifier.clone(),
                    depends_on: t.depends_on.clone(),
                    ignore_failure: t.ignore_failure,
                    outcome: outcomes[i].take(),
                    status,
                    skipped,
                }
            })
            .collect();
        self.emit(BatchEvent::Finished(Box::new(batch.clone())));
        let outcome = BatchOutcome {
            batch,
            tasks,
            dir: self.dir.clone(),
            artifacts: self.artifacts.clone(),
            store_error: self.store_error.clone(),
        };
        self.shared.outcome.send_replace(Some(Arc::new(outcome)));
    }

    /// The future of one task: wait for a slot, submit its build, wait for its end.
    fn start_task(
        &self,
        i: usize,
        running: Arc<Mutex<HashMap<usize, BuildHandle>>>,
    ) -> impl std::future::Future<Output = TaskResult> + Send + 'static {
        let task = self.tasks[i].clone();
        // Several builds into one -a folder would overwrite each other: one folder per task.
        let artifacts = self
            .artifacts
            .as_ref()
            .or(self.parent.artifacts_dir.as_ref())
            .map(|d| task_dir(d, &task.identifier))
            .transpose();
        let request = artifacts.map(|artifacts| {
            task_request(
                &self.parent,
                &task,
                &lock(&self.shared.record).arn,
                artifacts,
            )
        });
        let engine = self.engine.clone();
        let slot = self.config.slots.acquire(&self.parent.project);
        let halt = self.shared.halt.clone();
        let events = self.events.clone();
        let shared = self.shared.clone();
        async move {
            let _slot = tokio::select! {
                s = slot => s,
                _ = halt.cancelled() => return (i, Err("not started: the batch is stopping".to_owned())),
            };
            if halt.is_cancelled() {
                return (i, Err("not started: the batch is stopping".to_owned()));
            }
            let request = match request {
                Ok(r) => r,
                Err(e) => return (i, Err(format!("not started: {e}"))),
            };
            let handle = match engine.submit(request).await {
                Ok(h) => h,
                Err(e) => return (i, Err(format!("not started: {e}"))),
            };
            // While it runs, the build group shows the build IN_PROGRESS (as CodeBuild does).
            lock(&shared.record).build_groups[i].current_build_summary = Some(BuildSummary {
                arn: Some(handle.arn.clone()),
                requested_on: Some(now()),
                build_status: Status::InProgress,
            });
            // Kept at once: a batch cut off now still names its running builds.
            let _ = shared.save(engine.store().clone()).await;
            {
                let mut r = lock(&running);
                r.insert(i, handle.clone());
                if halt.is_cancelled() {
                    handle.stop();
                }
            }
            let _ = events.send(BatchEvent::TaskStarted {
                identifier: task.identifier.clone(),
                build: handle.clone(),
            });
            (i, Ok(handle.outcome().await))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_request_carries_the_task_settings_and_membership() {
        let mut parent = BuildRequest::new("demo", Source::Dir("/src".into()));
        parent.env_overrides = vec![("A".into(), "parent".into())];
        parent.reports_dir = Some("/r".into());
        let task = Task {
            identifier: "t1".into(),
            buildspec: Some("other.yml".into()),
            image: Some("img:2".into()),
            privileged: Some(true),
            compute_type: Some("BUILD_GENERAL1_LARGE".into()),
            variables: vec![("A".into(), "task".into())],
            ..Task::default()
        };
        let r = task_request(&parent, &task, "arn:b", Some("/a/t1".into()));
        assert_eq!(r.buildspec, BuildspecSource::InSource("other.yml".into()));
        assert_eq!(r.image, "img:2");
        assert!(r.privileged);
        assert_eq!(r.compute_type.as_deref(), Some("BUILD_GENERAL1_LARGE"));
        assert_eq!(r.env_overrides.last(), Some(&("A".into(), "task".into())));
        assert_eq!(r.artifacts_dir, Some(PathBuf::from("/a/t1")));
        assert_eq!(r.reports_dir, Some(PathBuf::from("/r/t1")));
        assert_eq!(
            r.batch,
            Some(BatchMember {
                batch_arn: "arn:b".into(),
                identifier: "t1".into(),
                shard: None,
            })
        );
        let same = task_request(&parent, &Task::default(), "arn:b", None);
        assert_eq!(same.buildspec, BuildspecSource::Default);
        assert_eq!(same.image, parent.image);
    }
}
