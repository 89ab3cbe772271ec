//! The build engine: runs one build from a [`BuildRequest`], reports through [`Event`]s, can be
//! cancelled, and ends in a [`record::Build`].
//!
//! Owns CodeBuild's build lifecycle (phases, transitions, log lines, variables). It talks to
//! Docker only through [`crate::docker`], and prints nothing: consumers render the events and
//! the record. A failing command is a phase result in the record, never an `Err`; `Err` means
//! no build could be attempted at all (Docker unreachable, the record folder unwritable).

pub mod hints;
pub mod images;
pub mod log;
pub mod machine;
pub mod record;
mod run;
pub mod shell;
pub mod source;
pub mod store;

use bytes::Bytes;
use std::path::PathBuf;
use std::time::Duration;

pub use run::run;
pub use tokio_util::sync::CancellationToken;

/// The default build image, built from `docker/standard` the first time it is needed.
pub const DEFAULT_IMAGE: &str = "localbuild/standard:1.0";

/// Everything a build needs to start.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// Project name: used in the build id, ARN and build number sequence.
    pub project: String,
    /// The primary source directory on this machine.
    pub source_dir: PathBuf,
    /// Secondary sources: identifier and directory (`-s ID:DIR`), in declaration order.
    pub secondary_sources: Vec<(String, PathBuf)>,
    /// The buildspec file; `None` = `buildspec.yml` in the source directory.
    pub buildspec: Option<PathBuf>,
    pub image: String,
    /// Bind-mount the source instead of copying it (the build may then modify it).
    pub bind_mount: bool,
    /// Privileged mode: docker commands in the build use the host daemon.
    pub privileged: bool,
    pub timeout: Duration,
    /// Variables that override the buildspec's (highest precedence), in order.
    pub env_overrides: Vec<(String, String)>,
    /// `CODEBUILD_INITIATOR` and the record's `initiator`.
    pub initiator: String,
    /// `AWS_REGION` / `AWS_DEFAULT_REGION` and the region in ARNs.
    pub region: String,
    /// Where build records and logs are kept (`<store>/builds/<project>/<number>/`), and the
    /// cache (`<store>/cache/<project>/`).
    pub store: PathBuf,
    /// Parameter Store and Secrets Manager values for `env.parameter-store` / `secrets-manager`.
    pub secrets: crate::secrets::SecretsFile,
    /// More values to mask everywhere (e.g. a forwarded `AWS_SECRET_ACCESS_KEY`).
    pub mask: Vec<String>,
    /// A host folder mounted read-only at `/root/.aws` (`-c`).
    pub aws_dir: Option<PathBuf>,
    /// `-a`: where artifacts go (default: `artifacts/` in the build's record folder).
    pub artifacts_dir: Option<PathBuf>,
    /// `-r`: where report files and summaries go (default: `reports/` in the record folder).
    pub reports_dir: Option<PathBuf>,
    /// Package artifacts as zips instead of folders.
    pub zip: bool,
    /// Neither restore nor save the cache.
    pub no_cache: bool,
}

impl BuildRequest {
    /// A request with CodeBuild's defaults: the default image, 60 minutes, `us-east-1`, no
    /// overrides, secrets, artifacts folder or cache changes.
    pub fn new(project: &str, source_dir: PathBuf, store: PathBuf) -> BuildRequest {
        BuildRequest {
            project: project.to_owned(),
            source_dir,
            secondary_sources: vec![],
            buildspec: None,
            image: DEFAULT_IMAGE.to_owned(),
            bind_mount: false,
            privileged: false,
            timeout: Duration::from_secs(60 * 60),
            env_overrides: vec![],
            initiator: "localbuild".to_owned(),
            region: "us-east-1".to_owned(),
            store,
            secrets: Default::default(),
            mask: vec![],
            aws_dir: None,
            artifacts_dir: None,
            reports_dir: None,
            zip: false,
            no_cache: false,
        }
    }
}

/// What a build reports while it runs.
#[derive(Debug, Clone)]
pub enum Event {
    /// An agent line of the build log, formatted (`[Container] … message`).
    Agent(String),
    /// One or more complete lines of command output (stdout and stderr), each ending in `\n`.
    Output(Bytes),
    /// localbuild's own progress (image pulls and builds); not part of the build log.
    Progress(String),
    PhaseStarted(record::PhaseType),
    PhaseEnded(record::PhaseType, record::Status),
}

/// A finished build: its record and where it is kept.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub build: record::Build,
    /// The folder holding `build.json` and `build.log`.
    pub dir: PathBuf,
    pub log_path: PathBuf,
    /// Images the build's docker commands built and pushed, per phase (not part of the
    /// CodeBuild record).
    pub images: Vec<images::PhaseImages>,
    /// One report per report group (not part of CodeBuild's `Build` record).
    pub reports: Vec<crate::reports::Report>,
    /// The artifacts written (folders or zips), primary first.
    pub artifacts: Vec<PathBuf>,
}

/// Why no build could be attempted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Docker(#[from] crate::docker::DockerError),
    #[error("cannot write the build record under {path}: {source}")]
    Store {
        path: PathBuf,
        source: std::io::Error,
    },
}
