//! Batch builds in the service: the live batches, their idempotency tokens, and the slots their
//! builds wait for in the service's one queue ([`QueueSlots`]), so that
//! `--max-concurrent-builds` and a project's `concurrentBuildLimit` count every build, batch or
//! not.

use crate::{BuildService, IDEMPOTENCY_WINDOW, ServiceError};
use localbuild_engine::buildspec::batch::Task;
use localbuild_engine::record::BuildBatch;
use localbuild_engine::{BatchConfig, BatchHandle, BuildRequest, RetryType, Slot, Slots};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// A batch build to start (or a finished one to run again).
pub struct StartBatch {
    /// The batch's own request (project, source, buildspec, environment).
    pub request: BuildRequest,
    /// Its expanded tasks.
    pub tasks: Vec<Task>,
    pub fast_fail: bool,
    pub combine_artifacts: bool,
    pub maximum_builds_allowed: Option<u32>,
    pub timeout: Option<Duration>,
    /// The project's `concurrentBuildLimit`.
    pub project_limit: Option<usize>,
    pub idempotency_token: Option<String>,
    /// RetryBuildBatch: the batch run again under its own id, and which tasks run.
    pub retry: Option<(BuildBatch, RetryType)>,
}

impl BuildService {
    /// The batch `token` named within [`IDEMPOTENCY_WINDOW`].
    pub fn batch_by_token(&self, token: &str) -> Option<String> {
        let mut inner = self.inner();
        inner
            .batch_tokens
            .retain(|_, (at, _)| at.elapsed() < IDEMPOTENCY_WINDOW);
        inner.batch_tokens.get(token).map(|(_, id)| id.clone())
    }

    /// Start a batch: the engine runs it, its builds wait in the queue. `on_accept` runs once
    /// the engine has accepted it, before it counts as live here (the API keeps its input).
    pub async fn start_batch<E: From<ServiceError>>(
        self: &Arc<Self>,
        start: StartBatch,
        on_accept: impl FnOnce(&BatchHandle) -> Result<(), E>,
    ) -> Result<BatchHandle, E> {
        if self.shutting_down() {
            return Err(ServiceError::ShuttingDown.into());
        }
        let config = BatchConfig {
            slots: Arc::new(QueueSlots {
                service: Arc::downgrade(self),
                limit: start.project_limit,
            }),
            fast_fail: start.fast_fail,
            combine_artifacts: start.combine_artifacts,
            maximum_builds_allowed: start.maximum_builds_allowed,
            timeout: start.timeout,
        };
        let started = match start.retry {
            None => {
                self.engine
                    .submit_batch(start.request, start.tasks, config)
                    .await
            }
            Some((prior, kind)) => {
                self.engine
                    .retry_batch(prior, start.request, start.tasks, config, kind)
                    .await
            }
        };
        let handle = started.map_err(ServiceError::from)?;
        on_accept(&handle)?;
        {
            let mut inner = self.inner();
            if let Some(token) = start.idempotency_token {
                inner
                    .batch_tokens
                    .insert(token, (Instant::now(), handle.id.clone()));
            }
            inner.batches.insert(handle.id.clone(), handle.clone());
        }
        let (service, watched) = (self.clone(), handle.clone());
        tokio::spawn(async move {
            let _ = watched.outcome().await;
            let mut inner = service.inner();
            // A retry may already run under the same id.
            if inner
                .batches
                .get(&watched.id)
                .is_some_and(|h| h.is(&watched))
            {
                inner.batches.remove(&watched.id);
            }
        });
        Ok(handle)
    }

    /// A running batch's handle.
    pub fn batch(&self, id: &str) -> Option<BatchHandle> {
        self.inner().batches.get(id).cloned()
    }

    /// The current record of a batch: live, else from the history.
    pub fn batch_record(&self, id: &str) -> Option<BuildBatch> {
        if let Some(live) = self.batch(id) {
            return Some(live.snapshot());
        }
        self.history.batch(id).ok()?
    }
}

/// A batch's builds wait in the service's build queue, behind and beside single builds.
struct QueueSlots {
    service: Weak<BuildService>,
    limit: Option<usize>,
}

impl Slots for QueueSlots {
    fn acquire(&self, project: &str) -> Pin<Box<dyn Future<Output = Slot> + Send>> {
        let Some(service) = self.service.upgrade() else {
            return Box::pin(async { Box::new(()) as Slot });
        };
        // Queued now, so that tasks queue in the order they ask.
        let id = format!("batch-task:{}", uuid::Uuid::new_v4());
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = service.inner();
            inner.queue.push(&id, project, self.limit);
            inner.slot_waiters.insert(id.clone(), tx);
        }
        // From here on, dropping the guard gives the place or the slot back.
        let guard = QueueSlot {
            service: self.service.clone(),
            id,
        };
        service.pump();
        Box::pin(async move {
            let _ = rx.await;
            Box::new(guard) as Slot
        })
    }
}

/// A place in the queue, then a slot: dropping it frees either.
struct QueueSlot {
    service: Weak<BuildService>,
    id: String,
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        let Some(service) = self.service.upgrade() else {
            return;
        };
        {
            let mut inner = service.inner();
            inner.slot_waiters.remove(&self.id);
            if !inner.queue.cancel(&self.id) {
                inner.queue.finished(&self.id);
            }
        }
        service.pump();
    }
}
