//! The build service: what `localbuild serve` does with builds, in Rust types. It owns the
//! build queue ([`queue`]), the idempotency tokens, the builds and batches that are live now
//! (queued or running) and the records it writes itself ([`record`]); it hands builds to the
//! engine when the queue has a slot for them.
//!
//! The CodeBuild API's start path (StartBuild, RetryBuild, and through it a pipeline's CodeBuild
//! action and the console's buttons) makes a [`BuildRequest`] and calls
//! [`BuildService::start`] with a [`StartBuild`], which accepts the build at once (its id and
//! number claimed, its record QUEUED) and returns a [`BuildTicket`]; the console and the logs
//! API read its live records ([`BuildService::record`], [`BuildService::log_path`]). The ticket
//! follows the build through its stages without polling: [`BuildTicket::handle`] waits for the
//! engine's handle (events, snapshot), [`BuildTicket::finished`] for the end. Batches go the
//! same way ([`BuildService::start_batch`]); their builds wait in the same queue.
//!
//! Projects ([`projects`]) are stored here and turned into the engine's request here
//! ([`projects::Projects::prepare`]): a project and a start's overrides in, a checked
//! [`BuildRequest`] out, or a [`projects::ProjectError`].
//!
//! No wire protocol here (it names no axum, bollard, clap or rusqlite): the server decodes
//! CodeBuild's JSON into these types and maps [`ServiceError`] and
//! [`projects::ProjectError`] to AWS's errors. `serde_json` appears only for the stored
//! project document, which is CodeBuild's `Project` JSON as the client sent it.

mod batch;
pub mod projects;
pub mod queue;
pub mod record;
mod store;

pub use batch::StartBatch;
pub use store::ServiceStore;

use localbuild_engine::record::{Build, Status};
use localbuild_engine::runtime::Runtime;
use localbuild_engine::store::{Store, StoreError};
use localbuild_engine::{BatchError, BatchHandle, BuildHandle, BuildRequest, Engine, Outcome};
use localbuild_store::HistoryStore;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// How long an idempotency token names the same build.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long a stop waits for the build to end.
pub const STOP_WAIT: Duration = Duration::from_secs(30);

/// Why the service did not accept a build or batch (nothing was started).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("localbuild serve is shutting down")]
    ShuttingDown,
    /// The build's number or folder could not be claimed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The engine refused the batch.
    #[error(transparent)]
    Batch(#[from] BatchError),
}

/// A build to start.
pub struct StartBuild {
    /// The engine's request, checked by the caller.
    pub request: BuildRequest,
    /// The project's `concurrentBuildLimit`.
    pub project_limit: Option<usize>,
    /// A token that names this build for [`IDEMPOTENCY_WINDOW`] (see [`BuildService::by_token`]).
    pub idempotency_token: Option<String>,
}

/// An accepted build: its ticket and its record at acceptance.
pub struct Accepted {
    pub ticket: BuildTicket,
    pub record: Build,
}

/// Where a live build is.
#[derive(Clone)]
pub enum Stage {
    /// Waiting in the queue (or being handed to the engine).
    Queued,
    Running(BuildHandle),
    /// Over: the engine's outcome when the engine ran it.
    Ended(Option<Arc<Outcome>>),
}

/// A build the service is responsible for right now.
enum LiveBuild {
    /// Accepted, not yet handed to the engine.
    Queued(Box<QueuedBuild>),
    Running(BuildHandle),
}

struct QueuedBuild {
    record: Build,
    request: BuildRequest,
    uuid: String,
    /// A stop arrived while the build was being handed to the engine.
    stop_requested: bool,
}

struct Entry {
    build: LiveBuild,
    stage: watch::Sender<Stage>,
}

struct Inner {
    queue: queue::Queue,
    builds: HashMap<String, Entry>,
    /// idempotency token → (when, build id).
    tokens: HashMap<String, (Instant, String)>,
    /// Batches running now, by batch id.
    batches: HashMap<String, BatchHandle>,
    /// StartBuildBatch's idempotency token → (when, batch id).
    batch_tokens: HashMap<String, (Instant, String)>,
    /// Batch builds waiting in `queue` for a slot: told when they have one.
    slot_waiters: HashMap<String, oneshot::Sender<()>>,
    shutting_down: bool,
}

impl Inner {
    fn remove(&mut self, id: &str, live: &watch::Sender<usize>) -> Option<Entry> {
        let entry = self.builds.remove(id);
        live.send_replace(self.builds.len());
        entry
    }
}

/// The build service of one server.
pub struct BuildService {
    engine: Engine,
    store: Arc<ServiceStore>,
    history: HistoryStore,
    inner: Mutex<Inner>,
    /// How many builds are live: shutdown waits for none.
    live: watch::Sender<usize>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl BuildService {
    /// A service running at most `max_concurrent_builds` builds at once on `runtime`, keeping
    /// its records in `history`.
    pub fn new(
        runtime: Arc<dyn Runtime>,
        history: HistoryStore,
        max_concurrent_builds: usize,
    ) -> Arc<BuildService> {
        let store = Arc::new(ServiceStore::new(history.clone()));
        Arc::new(BuildService {
            engine: Engine::new(runtime, store.clone()),
            store,
            history,
            inner: Mutex::new(Inner {
                queue: queue::Queue::new(max_concurrent_builds),
                builds: HashMap::new(),
                tokens: HashMap::new(),
                batches: HashMap::new(),
                batch_tokens: HashMap::new(),
                slot_waiters: HashMap::new(),
                shutting_down: false,
            }),
            live: watch::channel(0).0,
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// The build `token` named within [`IDEMPOTENCY_WINDOW`], if its record still exists.
    pub fn by_token(self: &Arc<Self>, token: &str) -> Option<Accepted> {
        let id = {
            let mut inner = self.inner();
            inner
                .tokens
                .retain(|_, (at, _)| at.elapsed() < IDEMPOTENCY_WINDOW);
            inner.tokens.get(token).map(|(_, id)| id.clone())
        }?;
        let record = self.record(&id)?;
        Some(Accepted {
            ticket: self.ticket(&id),
            record,
        })
    }

    /// Accept a build: claim its number, save its QUEUED record, queue it and start it when a
    /// slot is free. `on_accept` runs once the build has its id and record, before it is
    /// saved or queued (the API keeps its input there); its error refuses the build.
    pub fn start<E: From<ServiceError>>(
        self: &Arc<Self>,
        start: StartBuild,
        on_accept: impl FnOnce(&Build) -> Result<(), E>,
    ) -> Result<Accepted, E> {
        if self.shutting_down() {
            return Err(ServiceError::ShuttingDown.into());
        }
        let project = start.request.project.clone();
        let uuid = uuid::Uuid::new_v4().to_string();
        let id = format!("{project}:{uuid}");
        let at = record::now();
        let place = self
            .store
            .claim(&project, &id, at)
            .map_err(ServiceError::from)?;
        let record = record::queued_record(&start.request, &uuid, place.number, &place.log, at);
        on_accept(&record)?;
        self.keep(&record);
        let (stage, receiver) = watch::channel(Stage::Queued);
        {
            let mut inner = self.inner();
            if let Some(token) = start.idempotency_token {
                inner.tokens.insert(token, (Instant::now(), id.clone()));
            }
            inner.queue.push(&id, &project, start.project_limit);
            inner.builds.insert(
                id.clone(),
                Entry {
                    build: LiveBuild::Queued(Box::new(QueuedBuild {
                        record: record.clone(),
                        request: start.request,
                        uuid,
                        stop_requested: false,
                    })),
                    stage,
                },
            );
            self.live.send_replace(inner.builds.len());
        }
        self.pump();
        Ok(Accepted {
            ticket: BuildTicket {
                id,
                service: self.clone(),
                stage: receiver,
            },
            record,
        })
    }

    /// A ticket for build `id`: it follows the build if it is live, else it has ended.
    pub fn ticket(self: &Arc<Self>, id: &str) -> BuildTicket {
        let stage = match self.inner().builds.get(id) {
            Some(e) => e.stage.subscribe(),
            None => watch::channel(Stage::Ended(None)).1,
        };
        BuildTicket {
            id: id.to_owned(),
            service: self.clone(),
            stage,
        }
    }

    /// Start every build the queue lets start.
    fn pump(self: &Arc<Self>) {
        let starts: Vec<(String, BuildRequest, String)> = {
            let mut inner = self.inner();
            if inner.shutting_down {
                return;
            }
            let mut starts = vec![];
            for id in inner.queue.admit() {
                // A batch's build: its batch submits it.
                if let Some(waiter) = inner.slot_waiters.remove(&id) {
                    let _ = waiter.send(());
                    continue;
                }
                if let Some(Entry {
                    build: LiveBuild::Queued(q),
                    ..
                }) = inner.builds.get(&id)
                {
                    starts.push((id, q.request.clone(), q.uuid.clone()));
                }
            }
            starts
        };
        for (id, request, uuid) in starts {
            let service = self.clone();
            tokio::spawn(async move { service.run(id, request, uuid).await });
        }
    }

    /// Hand a build to the engine and follow it to its end.
    async fn run(self: Arc<Self>, id: String, request: BuildRequest, uuid: String) {
        let outcome = match self.engine.submit_as(request, uuid).await {
            Ok(handle) => {
                let stop = {
                    let mut inner = self.inner();
                    let stop = inner.shutting_down;
                    match inner.builds.get_mut(&id) {
                        Some(entry) => {
                            let stop = stop
                                || matches!(&entry.build, LiveBuild::Queued(q) if q.stop_requested);
                            entry.build = LiveBuild::Running(handle.clone());
                            entry.stage.send_replace(Stage::Running(handle.clone()));
                            stop
                        }
                        None => stop,
                    }
                };
                if stop {
                    handle.stop();
                }
                Some(Arc::new(handle.outcome().await))
            }
            Err(e) => {
                // Nothing started: the build ends as a FAULT in the history.
                let queued = match self.inner().builds.get(&id) {
                    Some(Entry {
                        build: LiveBuild::Queued(q),
                        ..
                    }) => Some(q.record.clone()),
                    _ => None,
                };
                if let Some(mut r) = queued {
                    record::end_record(&mut r, Status::Fault, Some(e.to_string()));
                    self.keep(&r);
                }
                None
            }
        };
        let entry = {
            let mut inner = self.inner();
            inner.queue.finished(&id);
            inner.remove(&id, &self.live)
        };
        self.store.forget(&id);
        if let Some(entry) = entry {
            entry.stage.send_replace(Stage::Ended(outcome));
        }
        self.pump();
    }

    /// Stop a build and wait (at most [`STOP_WAIT`]) for it to end. A queued build ends
    /// STOPPED at once; one being handed to the engine is stopped when it has a handle.
    pub async fn stop(self: &Arc<Self>, id: &str) {
        match self.stop_now(id) {
            Stopping::Running(h) => {
                let _ = tokio::time::timeout(STOP_WAIT, h.outcome()).await;
            }
            Stopping::Starting(mut stage) => {
                let _ = tokio::time::timeout(STOP_WAIT, async {
                    let now = stage
                        .wait_for(|s| !matches!(s, Stage::Queued))
                        .await
                        .map(|s| s.clone());
                    if let Ok(Stage::Running(h)) = now {
                        // `run` stops it as it hands it over; this is the wait.
                        h.stop();
                        h.outcome().await;
                    }
                })
                .await;
            }
            Stopping::Done => {}
        }
    }

    /// Stop a build or batch build without waiting for it (best effort).
    pub fn stop_soon(self: &Arc<Self>, id: &str) {
        if let Some(batch) = self.inner().batches.get(id) {
            batch.stop();
            return;
        }
        let _ = self.stop_now(id);
    }

    fn stop_now(&self, id: &str) -> Stopping {
        let mut inner = self.inner();
        let waiting = inner.queue.cancel(id);
        let stopped = match inner.builds.get_mut(id) {
            Some(Entry {
                build: LiveBuild::Running(h),
                ..
            }) => {
                h.stop();
                return Stopping::Running(h.clone());
            }
            Some(Entry {
                build: LiveBuild::Queued(q),
                stage,
            }) if !waiting => {
                q.stop_requested = true;
                return Stopping::Starting(stage.subscribe());
            }
            Some(Entry {
                build: LiveBuild::Queued(q),
                ..
            }) => {
                let mut r = q.record.clone();
                record::end_record(&mut r, Status::Stopped, None);
                r
            }
            None => return Stopping::Done,
        };
        let entry = inner.remove(id, &self.live);
        drop(inner);
        self.keep(&stopped);
        self.store.forget(id);
        if let Some(e) = entry {
            e.stage.send_replace(Stage::Ended(None));
        }
        Stopping::Done
    }

    /// Shutdown: no build starts any more, queued builds end STOPPED, running builds and
    /// batches are stopped and awaited.
    pub async fn stop_all(self: &Arc<Self>) {
        let (queued, running) = {
            let mut inner = self.inner();
            inner.shutting_down = true;
            let mut queued = vec![];
            for id in inner.queue.waiting() {
                inner.queue.cancel(&id);
                if let Some(Entry {
                    build: LiveBuild::Queued(q),
                    stage,
                }) = inner.remove(&id, &self.live)
                {
                    queued.push((q.record, stage));
                }
            }
            let running: Vec<_> = inner
                .builds
                .values()
                .filter_map(|e| match &e.build {
                    LiveBuild::Running(h) => Some(h.clone()),
                    LiveBuild::Queued(_) => None,
                })
                .collect();
            (queued, running)
        };
        for (mut r, stage) in queued {
            record::end_record(&mut r, Status::Stopped, None);
            self.keep(&r);
            self.store.forget(&r.id);
            stage.send_replace(Stage::Ended(None));
        }
        for h in &running {
            h.stop();
        }
        for h in running {
            let _ = tokio::time::timeout(STOP_WAIT * 2, h.outcome()).await;
        }
        let batches = self.running_batches();
        for b in &batches {
            b.stop();
        }
        for b in batches {
            let _ = tokio::time::timeout(STOP_WAIT * 2, b.outcome()).await;
        }
        // Builds being handed to the engine right now stop as soon as they have a handle.
        let mut live = self.live.subscribe();
        let _ = tokio::time::timeout(STOP_WAIT, live.wait_for(|n| *n == 0)).await;
    }

    /// No build or batch starts any more.
    pub fn shutting_down(&self) -> bool {
        self.inner().shutting_down
    }

    /// Whether build `id` is queued or running.
    pub fn is_live(&self, id: &str) -> bool {
        self.inner().builds.contains_key(id)
    }

    /// The current record of a build: live from the service (with its acceptance time), else
    /// one the store could not save yet (a full disk), else from the history.
    pub fn record(&self, id: &str) -> Option<Build> {
        let live = match self.inner().builds.get(id).map(|e| &e.build) {
            Some(LiveBuild::Queued(q)) => Some(q.record.clone()),
            Some(LiveBuild::Running(h)) => Some(self.store.restamp(&h.snapshot())),
            None => None,
        };
        if live.is_some() {
            return live;
        }
        self.history.build(id).ok()?
    }

    /// A build's log file, if the build exists.
    pub fn log_path(&self, id: &str) -> Option<PathBuf> {
        self.record(id)?.logs.local_path.map(Into::into)
    }

    /// Save a record the service made itself (a queued build's, one stopped or refused before
    /// it reached the engine). A failure is reported, never dropped: on stderr (`tracing`),
    /// and a final record is saved again until kept, answered meanwhile from the store's
    /// unsaved records (see [`record`](Self::record)).
    fn keep(&self, record: &Build) {
        if let Err(e) = self.history.save(record) {
            tracing::error!(build = %record.id, "cannot save the build record: {e}");
            if record.build_complete {
                let store: Arc<dyn localbuild_engine::store::Store> =
                    Arc::new(self.history.clone());
                tokio::spawn(localbuild_engine::store::save_until_kept(
                    store,
                    record.clone(),
                ));
            }
        }
    }
}

enum Stopping {
    Running(BuildHandle),
    Starting(watch::Receiver<Stage>),
    Done,
}

/// An accepted build, followed through its stages: queued, running, ended.
#[derive(Clone)]
pub struct BuildTicket {
    id: String,
    service: Arc<BuildService>,
    stage: watch::Receiver<Stage>,
}

/// A build that ended.
pub struct Finished {
    /// Its final record.
    pub record: Build,
    /// What the engine left, when the engine ran it (a build stopped in the queue or refused
    /// by the engine has none).
    pub outcome: Option<Arc<Outcome>>,
}

impl BuildTicket {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where the build is now.
    pub fn stage(&self) -> Stage {
        self.stage.borrow().clone()
    }

    /// The engine's handle (events, snapshot) once the build leaves the queue; `None` when it
    /// ended without running.
    pub async fn handle(&self) -> Option<BuildHandle> {
        let mut stage = self.stage.clone();
        let s = stage
            .wait_for(|s| !matches!(s, Stage::Queued))
            .await
            .map(|s| s.clone())
            .unwrap_or(Stage::Ended(None));
        match s {
            Stage::Running(h) => Some(h),
            _ => None,
        }
    }

    /// Wait for the build to end.
    pub async fn finished(&self) -> Option<Finished> {
        let mut stage = self.stage.clone();
        let ended = stage
            .wait_for(|s| matches!(s, Stage::Ended(_)))
            .await
            .map(|s| s.clone());
        let outcome = match ended {
            Ok(Stage::Ended(o)) => o,
            _ => None,
        };
        let record = match &outcome {
            Some(o) => o.build.clone(),
            None => self.service.record(&self.id)?,
        };
        Some(Finished { record, outcome })
    }

    /// Its current record.
    pub fn record(&self) -> Option<Build> {
        self.service.record(&self.id)
    }

    /// Stop it without waiting.
    pub fn stop(&self) {
        self.service.stop_soon(&self.id);
    }
}

impl BuildService {
    /// Batches running now.
    pub fn running_batches(&self) -> Vec<BatchHandle> {
        self.inner().batches.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>(_: T) {}

    /// The server awaits these inside request handlers, which must be `Send`.
    #[allow(dead_code, unreachable_code, clippy::diverging_sub_expression)]
    fn futures_are_send(service: Arc<BuildService>, ticket: BuildTicket) {
        send(service.stop("p:u"));
        send(service.stop_all());
        send(ticket.finished());
        send(ticket.handle());
    }
}
