//! The executor's shared state ([`Executor`]: the history, the roots, the running executions
//! and their inboxes, QUEUED pipelines' turns, the watcher's wake-up) and the typed
//! [`ExecError`] the server maps to CodePipeline's exception types.

use super::{Builds, Deploys, Msg};
use localbuild_store::{Db, DbError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Why the executor refused to start or retry an execution; the server maps it to
/// CodePipeline's exception types.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// `PipelineNotFoundException`.
    #[error("{0}")]
    PipelineNotFound(String),
    /// `StageNotRetryableException`.
    #[error("{0}")]
    StageNotRetryable(String),
    /// The stored pipeline cannot be read (a service error).
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The executor: what every execution's task and the watcher share (the history, the
/// roots, the running executions) and what they need from outside ([`Builds`], [`Deploys`]).
pub struct Executor {
    pub db: Db,
    /// Git and S3 roots (`localbuild_sources::resolve`, the S3 store).
    pub roots: localbuild_sources::Roots,
    /// `$LOCALBUILD_HOME/tmp`: scratch folders of actions.
    pub tmp: PathBuf,
    pub builds: Arc<dyn Builds>,
    pub deploys: Arc<dyn Deploys>,
    /// Running executions: execution id → (pipeline, the task's inbox).
    execs: std::sync::Mutex<HashMap<String, (String, mpsc::UnboundedSender<Msg>)>>,
    /// QUEUED pipelines: one execution at a time, in order of start.
    turns: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// A pipeline was created or updated: the watcher looks again at once (and starts
    /// following its sources' files).
    pub declared: tokio::sync::Notify,
}

impl Executor {
    pub fn new(
        db: Db,
        roots: localbuild_sources::Roots,
        tmp: PathBuf,
        builds: Arc<dyn Builds>,
        deploys: Arc<dyn Deploys>,
    ) -> Executor {
        Executor {
            db,
            roots,
            tmp,
            builds,
            deploys,
            execs: Default::default(),
            turns: Default::default(),
            declared: Default::default(),
        }
    }

    /// The lock a QUEUED execution of `pipeline` holds while it runs.
    pub fn turn(&self, pipeline: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.turns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(pipeline.to_owned())
            .or_default()
            .clone()
    }

    /// The inboxes of `pipeline`'s running executions.
    pub fn of(&self, pipeline: &str) -> Vec<(String, mpsc::UnboundedSender<Msg>)> {
        self.lock()
            .iter()
            .filter(|(_, (p, _))| p == pipeline)
            .map(|(id, (_, tx))| (id.clone(), tx.clone()))
            .collect()
    }

    /// The running executions: id → (pipeline, inbox).
    pub fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (String, mpsc::UnboundedSender<Msg>)>> {
        self.execs.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One call's context: the executor and the region its ARNs and repositories use.
#[derive(Clone)]
pub struct Ctx {
    pub exec: Arc<Executor>,
    pub region: String,
}
