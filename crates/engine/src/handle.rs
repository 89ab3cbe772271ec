//! The engine's front door: [`Engine::submit`] accepts a build and returns a [`BuildHandle`]
//! at once; the handle watches, stops and awaits the build while it runs.
//!
//! Every event of a build goes through one [`Hub`]: it masks secrets (command output as a
//! stream, so a secret cut between two pieces is masked too), appends the event's text to the
//! build log and its lines to the log's index ([`crate::logindex`]), keeps the event in a
//! bounded replay buffer and wakes the subscribers.
//! Subscribers read at their own pace; the build never waits for them. A subscriber that falls
//! further behind than the buffer holds gets one [`Event::Lagged`] with the log text it missed
//! (read back from the log file), then the live events again.
//!
//! The hub also holds the build's first store failure (the log or the record could not be
//! written, e.g. a full disk): it is said once in the event stream and once in the process's
//! own output (`tracing`), and it fires the token the executor watches, so the build ends
//! instead of running on with output nobody keeps. After a log write error the log file is
//! left as it is (cut where the error happened); the events still reach subscribers.

use crate::event::Event;
use crate::record::Build;
use crate::request::{BuildRequest, RequestError};
use crate::runtime::Runtime;
use crate::secrets::Masker;
use crate::store::{Store, StoreError};
use crate::{Outcome, execute};
use bytes::Bytes;
use std::collections::VecDeque;
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The `tracing` target of the line that says a build's store failure in the process's own
/// output (a front end that prints the event stream, which says it too, may silence it).
pub const STORE_FAILURE_TARGET: &str = "localbuild::store_failure";

/// How much of a build's events the hub keeps for late or slow subscribers.
const REPLAY_BUDGET: usize = 4 << 20;

/// Why a build could not be accepted (nothing was started).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One engine per process: the runtime and the store every build uses. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    runtime: Arc<dyn Runtime>,
    store: Arc<dyn Store>,
}

impl Engine {
    pub fn new(runtime: Arc<dyn Runtime>, store: Arc<dyn Store>) -> Engine {
        Engine { runtime, store }
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Check the request, claim a build number and start the build. Returns as soon as the
    /// build is recorded as SUBMITTED.
    pub async fn submit(&self, request: BuildRequest) -> Result<BuildHandle, SubmitError> {
        self.submit_as(request, uuid::Uuid::new_v4().to_string())
            .await
    }

    /// [`Engine::submit`] with the build's UUID chosen by the caller (the build id is
    /// `<project>:<uuid>`): a server that queues builds hands out the id before the build
    /// reaches the engine.
    pub async fn submit_as(
        &self,
        request: BuildRequest,
        uuid: String,
    ) -> Result<BuildHandle, SubmitError> {
        request.check()?;
        let build_id = format!("{}:{uuid}", request.project);
        let store = self.store.clone();
        let (project, id) = (request.project.clone(), build_id.clone());
        let place = tokio::task::spawn_blocking(move || store.create(&project, &id))
            .await
            .map_err(|e| StoreError {
                action: "claim a build number in",
                path: PathBuf::new(),
                source: std::io::Error::other(e.to_string()),
            })??;
        // The index first: a reader that finds the log finds its index too.
        let index_path = crate::logindex::path_for(&place.log);
        let index = std::fs::File::create(&index_path).map_err(|source| StoreError {
            action: "create the build log index",
            path: index_path,
            source,
        })?;
        let log = std::fs::File::create(&place.log).map_err(|source| StoreError {
            action: "create the build log",
            path: place.log.clone(),
            source,
        })?;
        let record = execute::new_record(&request, &build_id, &uuid, &place);
        let hub = Arc::new(Hub::new(record.clone(), log, index, place.log.clone()));
        let broken = hub.broken.clone();
        let cancel = CancellationToken::new();
        let handle = BuildHandle {
            id: build_id,
            number: place.number,
            arn: record.arn.clone(),
            hub: hub.clone(),
            cancel: cancel.clone(),
        };
        hub.publish(Event::Started(Box::new(record)));
        let build =
            execute::BuildExecution::new(self.clone(), request, place, hub.clone(), cancel, broken);
        let task = tokio::spawn(build.run());
        // If the build task panics, the handle still ends (as a FAULT) instead of hanging.
        tokio::spawn(async move {
            if let Err(e) = task.await {
                hub.abandon(&format!("the build engine failed: {e}"));
            }
        });
        Ok(handle)
    }
}

/// A running (or finished) build. Clones watch the same build.
#[derive(Clone)]
pub struct BuildHandle {
    pub id: String,
    pub number: u64,
    pub arn: String,
    hub: Arc<Hub>,
    cancel: CancellationToken,
}

impl BuildHandle {
    /// The live record: phases so far, the current phase, the status.
    pub fn snapshot(&self) -> Build {
        self.hub.lock().record.clone()
    }

    /// The build's events from its start: first those already past (as far as the replay
    /// buffer reaches), then the live ones; `None` after [`Event::Finished`].
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            hub: self.hub.clone(),
            rx: self.hub.seq.subscribe(),
            next: 0,
            log_pos: 0,
        }
    }

    /// Stop the build: it ends STOPPED (unless it already ended).
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    pub fn is_finished(&self) -> bool {
        self.hub.lock().outcome.is_some()
    }

    /// Wait for the end of the build.
    pub async fn outcome(&self) -> Outcome {
        let mut rx = self.hub.seq.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(outcome) = &self.hub.lock().outcome {
                return (**outcome).clone();
            }
            // The sender lives in the hub this handle holds: `changed` cannot fail.
            let _ = rx.changed().await;
        }
    }
}

/// A reader of one build's events.
pub struct Subscription {
    hub: Arc<Hub>,
    rx: watch::Receiver<u64>,
    /// Sequence number of the next event to deliver.
    next: u64,
    /// How much of the build log the delivered events account for.
    log_pos: u64,
}

impl Subscription {
    /// The next event, waiting for it if need be; `None` once the build has finished and
    /// every event was delivered.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            self.rx.borrow_and_update();
            {
                let mut state = self.hub.lock();
                if self.next < state.first {
                    let to = state.evicted_log_end;
                    let log = state.read_log(self.log_pos, to);
                    self.next = state.first;
                    self.log_pos = to;
                    return Some(Event::Lagged { log });
                }
                let index = (self.next - state.first) as usize;
                if let Some(entry) = state.history.get(index) {
                    self.next += 1;
                    self.log_pos = entry.log_end;
                    return Some(entry.event.clone());
                }
                if state.outcome.is_some() {
                    return None;
                }
            }
            if self.rx.changed().await.is_err() {
                return None;
            }
        }
    }
}

/// The shared state of one build: the live record, the log, the replay buffer.
pub(crate) struct Hub {
    state: Mutex<HubState>,
    /// The sequence number of the next event; subscribers wait on its changes.
    seq: watch::Sender<u64>,
    /// Fired at the first store failure ([`Hub::store_failed`]): the build must end.
    broken: CancellationToken,
}

struct Entry {
    event: Event,
    /// The log file's length after this event was written.
    log_end: u64,
}

struct HubState {
    record: Build,
    masker: Masker,
    /// Command output held back by the masker (the start of a line that may hold a secret).
    carry: Vec<u8>,
    /// `None` once a write failed: the log is left as it was.
    log: Option<std::io::BufWriter<std::fs::File>>,
    /// The first failure to keep the build's log or record.
    store_failure: Option<String>,
    /// `build.log.idx`: where each line starts and its time ([`crate::logindex`]).
    index: std::io::BufWriter<std::fs::File>,
    lines: crate::logindex::Lines,
    /// Scratch space for the entries of one event.
    entries: Vec<u8>,
    log_path: PathBuf,
    log_len: u64,
    history: VecDeque<Entry>,
    /// Sequence number of `history[0]`.
    first: u64,
    weight: usize,
    /// The log length after the last event dropped from `history`.
    evicted_log_end: u64,
    outcome: Option<Arc<Outcome>>,
}

impl HubState {
    /// Mask a piece of command output. A piece that ends inside a line (a line longer than
    /// the splitter's limit arrives in parts) keeps back what could begin a secret.
    fn mask_output(&mut self, bytes: Bytes) -> Bytes {
        if self.carry.is_empty() && (self.masker.is_empty() || bytes.ends_with(b"\n")) {
            return match self.masker.mask_bytes(&bytes) {
                Some(masked) => Bytes::from(masked),
                None => bytes,
            };
        }
        Bytes::from(self.masker.mask_stream(&mut self.carry, &bytes))
    }

    /// Log a (masked) event and keep it for subscribers; a failure to write the log, said
    /// by the caller ([`Hub::store_failed`]).
    fn push(&mut self, event: Event) -> Option<String> {
        let mut failed = None;
        if let Some(text) = event.log_text() {
            // The lines' index entries go first: a reader that sees the text knows its lines.
            self.lines.entries(self.log_len, &text, &mut self.entries);
            if !self.entries.is_empty() {
                let _ = self.index.write_all(&self.entries);
                let _ = self.index.flush();
                self.entries.clear();
            }
            // Written through at once: another process may follow the log, and a killed
            // process must leave every line it had published.
            match self.write_log(&text) {
                Ok(()) => self.log_len += text.len() as u64,
                Err(e) => {
                    failed = Some(format!(
                        "cannot write the build log {}: {e}",
                        self.log_path.display()
                    ))
                }
            }
        }
        self.weight += event.weight();
        let log_end = self.log_len;
        self.history.push_back(Entry { event, log_end });
        while self.weight > REPLAY_BUDGET && self.history.len() > 1 {
            let Some(old) = self.history.pop_front() else {
                break;
            };
            self.weight -= old.event.weight();
            self.evicted_log_end = old.log_end;
            self.first += 1;
        }
        failed
    }

    /// The log between two offsets (what a lagging subscriber missed).
    fn read_log(&mut self, from: u64, to: u64) -> Bytes {
        self.flush();
        let read = || -> std::io::Result<Vec<u8>> {
            let mut f = std::fs::File::open(&self.log_path)?;
            f.seek(std::io::SeekFrom::Start(from))?;
            let mut buf = Vec::with_capacity(to.saturating_sub(from) as usize);
            f.take(to.saturating_sub(from)).read_to_end(&mut buf)?;
            Ok(buf)
        };
        Bytes::from(read().unwrap_or_default())
    }

    /// Write through to the log file; the error of the first write that fails (after which
    /// the log is no longer written: what was buffered is dropped, not flushed later).
    fn write_log(&mut self, text: &[u8]) -> Result<(), std::io::Error> {
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        let written = log.write_all(text).and_then(|()| log.flush());
        if let Err(e) = written {
            if let Some(log) = self.log.take() {
                let _ = log.into_parts();
            }
            return Err(e);
        }
        Ok(())
    }

    fn flush(&mut self) {
        if let Some(log) = &mut self.log
            && let Err(e) = log.flush()
        {
            // Said by the next `publish` that writes (or not at all if none does).
            tracing::debug!("flushing the build log failed: {e}");
        }
    }
}

impl Hub {
    fn new(record: Build, log: std::fs::File, index: std::fs::File, log_path: PathBuf) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                record,
                masker: Masker::default(),
                carry: Vec::new(),
                log: Some(std::io::BufWriter::with_capacity(64 * 1024, log)),
                store_failure: None,
                index: std::io::BufWriter::with_capacity(64 * 1024, index),
                lines: crate::logindex::Lines::default(),
                entries: Vec::new(),
                log_path,
                log_len: 0,
                history: VecDeque::new(),
                first: 0,
                weight: 0,
                evicted_log_end: 0,
                outcome: None,
            }),
            seq: watch::Sender::new(0),
            broken: CancellationToken::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// From now on, these values are masked in every event and in the log.
    pub(crate) fn set_masker(&self, masker: Masker) {
        self.lock().masker = masker;
    }

    /// Mask these values too, from now on.
    pub(crate) fn add_masked(&self, values: Vec<String>) {
        let mut state = self.lock();
        state.masker = state.masker.with(values);
    }

    /// The one choke point of a build's output: mask, log, buffer, wake subscribers.
    /// Returns the event as published (masked); command output may come out shorter, or
    /// empty, when its end could be the start of a secret (held back for the next piece).
    pub(crate) fn publish(&self, event: Event) -> Event {
        let mut guard = self.lock();
        let state = &mut *guard;
        let mut failed = None;
        let event = match event {
            Event::Output(bytes) => Event::Output(state.mask_output(bytes)),
            other => {
                // Output held back goes first, so the log keeps its order.
                if !state.carry.is_empty() {
                    let rest = state.masker.finish(&mut state.carry);
                    failed = state.push(Event::Output(Bytes::from(rest)));
                }
                mask(&state.masker, other)
            }
        };
        if !matches!(&event, Event::Output(b) if b.is_empty()) {
            failed = failed.or(state.push(event.clone()));
        }
        let next = state.first + state.history.len() as u64;
        drop(guard);
        self.seq.send_replace(next);
        if let Some(failure) = failed {
            self.store_failed(failure);
        }
        event
    }

    /// The build's log or record cannot be kept. The first failure is said once (an
    /// [`Event::Progress`] line and a `tracing` error) and fires the token that ends the
    /// build; later ones are only traced at debug level.
    pub(crate) fn store_failed(&self, failure: String) {
        let mut state = self.lock();
        if state.store_failure.is_some() {
            tracing::debug!(build = %state.record.id, "also: {failure}");
            return;
        }
        state.store_failure = Some(failure.clone());
        let id = state.record.id.clone();
        drop(state);
        tracing::error!(target: STORE_FAILURE_TARGET, build = %id, "{failure}");
        self.publish(Event::Progress(format!("error: {failure}")));
        self.broken.cancel();
    }

    /// The first failure to keep the build's log or record, if one happened.
    pub(crate) fn store_failure(&self) -> Option<String> {
        self.lock().store_failure.clone()
    }

    /// The live record.
    pub(crate) fn record(&self) -> Build {
        self.lock().record.clone()
    }

    /// The record changed (a phase began or ended).
    pub(crate) fn set_record(&self, record: &Build) {
        self.lock().record = record.clone();
    }

    pub(crate) fn mask(&self, text: &str) -> String {
        self.lock().masker.mask(text)
    }

    /// Flush the log file (at the end of the build, and before it is read back).
    pub(crate) fn flush_log(&self) {
        self.lock().flush();
    }

    /// The build is over: publish its last event and wake everyone waiting for the outcome.
    pub(crate) fn finish(&self, outcome: Outcome) {
        self.publish(Event::Finished(Box::new(outcome.build.clone())));
        let mut state = self.lock();
        state.flush();
        state.record = outcome.build.clone();
        state.outcome = Some(Arc::new(outcome));
        let next = state.first + state.history.len() as u64;
        drop(state);
        self.seq.send_replace(next);
    }

    /// The build task died without finishing (a bug): end it as a FAULT.
    fn abandon(&self, why: &str) {
        let state = self.lock();
        if state.outcome.is_some() {
            return;
        }
        let mut build = state.record.clone();
        build.build_status = crate::record::Status::Fault;
        build.build_complete = true;
        let log_path = state.log_path.clone();
        drop(state);
        self.publish(Event::Progress(format!("error: {why}")));
        self.finish(Outcome {
            dir: log_path.parent().map(PathBuf::from).unwrap_or_default(),
            log_path,
            build,
            images: vec![],
            reports: vec![],
            artifacts: vec![],
            store_error: None,
        });
    }
}

/// Secret values never leave the hub (command output: [`HubState::mask_output`]).
fn mask(masker: &Masker, event: Event) -> Event {
    if masker.is_empty() {
        return event;
    }
    match event {
        Event::Agent { at, text } => Event::Agent {
            at,
            text: masker.mask(&text),
        },
        Event::Progress(text) => Event::Progress(masker.mask(&text)),
        Event::PhaseEnded {
            phase,
            status,
            contexts,
            at,
        } => Event::PhaseEnded {
            phase,
            status,
            contexts: contexts.map(|cs| {
                cs.into_iter()
                    .map(|mut c| {
                        c.message = masker.mask(&c.message);
                        c
                    })
                    .collect()
            }),
            at,
        },
        other => other,
    }
}
