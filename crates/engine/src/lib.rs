//! localbuild's build engine: CodeBuild's build lifecycle over a container runtime.
//!
//! [`Engine::submit`] takes a [`BuildRequest`] and returns a [`BuildHandle`] at once: a live
//! snapshot of the CodeBuild `Build` record, typed [`Event`]s for any number of subscribers,
//! stop, and the [`Outcome`]. The engine prints nothing, owns no paths (the [`store::Store`]
//! says where things go) and never names Docker (it talks to a [`runtime::Runtime`]).
//!
//! * Pure: [`lifecycle`] (phase transitions and final status), [`shell`]'s script protocol,
//!   [`artifacts`] selection, [`reports`] parsing, [`hints`], [`images`], [`secrets`],
//!   [`testsplit`] (the statement of the container's test-splitting commands).
//! * Async: [`handle`] (engine, handles, the event hub), `execute` (carries out a build) and
//!   [`batch`] (runs a batch's builds through [`Engine::submit`]).
//!
//! A failing command is a phase result in the record, never an `Err`; `Err` from
//! [`Engine::submit`] means no build was started (a refused request, an unwritable store).
#![forbid(unsafe_code)]

pub use localbuild_buildspec as buildspec;

pub mod artifacts;
pub mod batch;
pub mod event;
mod execute;
pub use execute::new_record;
pub mod handle;
pub mod hints;
pub mod images;
pub mod lifecycle;
pub mod local_aws;
#[cfg(feature = "local-runtime")]
pub mod local_runtime;
pub mod log;
pub mod logindex;
pub mod record;
pub mod reports;
pub mod request;
pub mod runtime;
pub mod secrets;
pub mod shell;
pub mod source;
pub mod store;
pub mod testsplit;

pub use batch::{
    BatchConfig, BatchError, BatchEvent, BatchHandle, BatchOutcome, Parallel, RetryType, Slot,
    Slots, TaskOutcome,
};
pub use event::{Event, Pause};
pub use handle::{BuildHandle, Engine, SubmitError, Subscription};
pub use request::{
    ACCOUNT_ID, BatchMember, BuildRequest, BuildspecSource, DEFAULT_IMAGE, Debug, RequestError,
    S3Artifact, S3Cache, Source, check_account_id,
};
pub use tokio_util::sync::CancellationToken;

use std::path::PathBuf;

/// A finished build: its record and what it left.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub build: record::Build,
    /// The folder holding the build's files.
    pub dir: PathBuf,
    pub log_path: PathBuf,
    /// Images the build's docker commands built and pushed, per phase (not part of the
    /// CodeBuild record).
    pub images: Vec<images::PhaseImages>,
    /// One report per report group (not part of CodeBuild's `Build` record).
    pub reports: Vec<reports::Report>,
    /// The artifacts written (folders or zips), primary first.
    pub artifacts: Vec<PathBuf>,
    /// The record could not be kept in the store (the build's result above is still whole).
    pub store_error: Option<String>,
}
