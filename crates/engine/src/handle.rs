//! The engine's front door: [`Engine::submit`] accepts a build and returns a [`BuildHandle`]
//! at once; the handle watches, stops and awaits the build while it runs.
//!
//! Every event of a build goes through one [`Hub`]: it masks secrets, appends the event's text
//! to the build log, keeps the event in a bounded replay buffer and wakes the subscribers.
//! Subscribers read at their own pace; the build never waits for them. A subscriber that falls
//! further behind than the buffer holds gets one [`Event::Lagged`] with the log text it missed
//! (read back from the log file), then the live events again.

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
        let log = std::fs::File::create(&place.log).map_err(|source| StoreError {
            action: "create the build log",
            path: place.log.clone(),
            source,
        })?;
        let record = execute::new_record(&request, &build_id, &uuid, &place);
        let hub = Arc::new(Hub::new(record.clone(), log, place.log.clone()));
        let cancel = CancellationToken::new();
        let handle = BuildHandle {
            id: build_id,
            number: place.number,
            arn: record.arn.clone(),
            hub: hub.clone(),
            cancel: cancel.clone(),
        };
        hub.publish(Event::Started(Box::new(record)));
        let build = execute::Run::new(self.clone(), request, place, hub.clone(), cancel);
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
}

struct Entry {
    event: Event,
    /// The log file's length after this event was written.
    log_end: u64,
}

struct HubState {
    record: Build,
    masker: Masker,
    log: std::io::BufWriter<std::fs::File>,
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
    /// The log between two offsets (what a lagging subscriber missed).
    fn read_log(&mut self, from: u64, to: u64) -> Bytes {
        let _ = self.log.flush();
        let read = || -> std::io::Result<Vec<u8>> {
            let mut f = std::fs::File::open(&self.log_path)?;
            f.seek(std::io::SeekFrom::Start(from))?;
            let mut buf = Vec::with_capacity(to.saturating_sub(from) as usize);
            f.take(to.saturating_sub(from)).read_to_end(&mut buf)?;
            Ok(buf)
        };
        Bytes::from(read().unwrap_or_default())
    }
}

impl Hub {
    fn new(record: Build, log: std::fs::File, log_path: PathBuf) -> Hub {
        Hub {
            state: Mutex::new(HubState {
                record,
                masker: Masker::default(),
                log: std::io::BufWriter::with_capacity(64 * 1024, log),
                log_path,
                log_len: 0,
                history: VecDeque::new(),
                first: 0,
                weight: 0,
                evicted_log_end: 0,
                outcome: None,
            }),
            seq: watch::Sender::new(0),
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
    pub(crate) fn publish(&self, event: Event) -> Event {
        let mut state = self.lock();
        let event = mask(&state.masker, event);
        if let Some(text) = event.log_text() {
            // Written through at once: another process may follow the log, and a killed
            // process must leave every line it had published.
            let _ = state.log.write_all(&text);
            let _ = state.log.flush();
            state.log_len += text.len() as u64;
        }
        state.weight += event.weight();
        let log_end = state.log_len;
        state.history.push_back(Entry {
            event: event.clone(),
            log_end,
        });
        while state.weight > REPLAY_BUDGET && state.history.len() > 1 {
            let Some(old) = state.history.pop_front() else {
                break;
            };
            state.weight -= old.event.weight();
            state.evicted_log_end = old.log_end;
            state.first += 1;
        }
        let next = state.first + state.history.len() as u64;
        drop(state);
        self.seq.send_replace(next);
        event
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
        let _ = self.lock().log.flush();
    }

    /// The build is over: publish its last event and wake everyone waiting for the outcome.
    pub(crate) fn finish(&self, outcome: Outcome) {
        self.publish(Event::Finished(Box::new(outcome.build.clone())));
        let mut state = self.lock();
        let _ = state.log.flush();
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

/// Secret values never leave the hub.
fn mask(masker: &Masker, event: Event) -> Event {
    if masker.is_empty() {
        return event;
    }
    match event {
        Event::Agent { at, text } => Event::Agent {
            at,
            text: masker.mask(&text),
        },
        Event::Output(bytes) => match masker.mask_bytes(&bytes) {
            Some(masked) => Event::Output(Bytes::from(masked)),
            None => Event::Output(bytes),
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
