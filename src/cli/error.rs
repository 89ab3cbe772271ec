//! The CLI's one error type. Every subcommand returns `Result<u8, CliError>` (the `u8` is the
//! exit code of an outcome that is not an error, e.g. a FAILED build); [`super::exit::finish`]
//! is the one place that prints a `CliError` (`error: …` on stderr, or its rendered
//! diagnostics) and picks its exit code with [`CliError::code`].
//!
//! [`CliError::Closed`] is not a failure: stdout's reader went away (`| head`), so the command
//! ends quietly, as ripgrep does; only writes to stdout produce it ([`super::out`]).

use super::api::CallError;
use super::config::ConfigError;
use super::exit;
use localbuild_buildspec::Diagnostic;
use localbuild_docker::DockerError;
use localbuild_docker::image::ImageError;
use localbuild_engine::request::RequestError;
use localbuild_engine::{BatchError, SubmitError};
use localbuild_server::ServeError;
use localbuild_store::DbError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// stdout was closed by its reader: the command stops writing and ends quietly.
    #[error("stdout is closed")]
    Closed,
    /// A bad flag or argument (exit 2).
    #[error("{0}")]
    Usage(String),
    /// An operation that failed (exit 1).
    #[error("{0}")]
    Failed(String),
    /// localbuild could not do its own part: no async runtime, no history to record a build in
    /// (exit 3).
    #[error("{0}")]
    Fault(String),
    /// A problem with a file the user named, worded `FILE: error: …` (exit 1).
    #[error("{file}: error: {message}")]
    InFile { file: String, message: String },
    /// An invalid buildspec: its problems, rendered compiler-style (exit 1).
    #[error("{name}: the buildspec is not valid")]
    Buildspec {
        name: String,
        text: Vec<u8>,
        diagnostics: Vec<Diagnostic>,
    },
    /// The history could not be opened for reading (exit 1).
    #[error("cannot open the build history: {0}")]
    History(#[source] DbError),
    #[error(transparent)]
    Db(#[from] DbError),
    /// A config or env file problem (exit 2), located in its file when it can be.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A request CodeBuild would refuse (exit 2).
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Submit(#[from] SubmitError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// Docker unreachable or failing (exit 3); rendered with the command that starts it.
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A call to a running `serve` gave no answer or an AWS error (exit 1).
    #[error(transparent)]
    Call(#[from] CallError),
}

impl CliError {
    /// A failed write to stdout: a closed pipe is [`CliError::Closed`].
    pub fn stdout(e: std::io::Error) -> CliError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::Closed
        } else {
            CliError::Failed(format!("cannot write to stdout: {e}"))
        }
    }

    /// The exit code (decision U16, see [`super::exit`]).
    pub fn code(&self) -> u8 {
        match self {
            CliError::Closed => exit::CLOSED,
            CliError::Usage(_)
            | CliError::Config(_)
            | CliError::Request(_)
            | CliError::Submit(SubmitError::Request(_))
            | CliError::Batch(BatchError::Request(_) | BatchError::Task { .. }) => exit::USAGE,
            CliError::Fault(_)
            | CliError::Docker(_)
            | CliError::Image(_)
            | CliError::Serve(_)
            | CliError::Submit(_)
            | CliError::Batch(BatchError::Store(_)) => exit::FAULT,
            CliError::Failed(_)
            | CliError::InFile { .. }
            | CliError::Buildspec { .. }
            | CliError::History(_)
            | CliError::Db(_)
            | CliError::Batch(_)
            | CliError::Call(_) => exit::FAILURE,
        }
    }

    /// What stderr shows (every line ends with a newline); nothing for [`CliError::Closed`].
    pub fn render(&self) -> String {
        match self {
            CliError::Closed => String::new(),
            CliError::InFile { .. } => format!("{self}\n"),
            CliError::Buildspec {
                name,
                text,
                diagnostics,
            } => diagnostics.iter().map(|d| d.render(name, text)).collect(),
            CliError::Config(e) => e.render(),
            CliError::Docker(e) => super::progress::docker_error(e),
            e => format!("error: {e}\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_quiet_and_other_write_errors_fail() {
        let closed = CliError::stdout(std::io::ErrorKind::BrokenPipe.into());
        assert!(matches!(closed, CliError::Closed));
        assert_eq!(
            (closed.code(), closed.render()),
            (exit::CLOSED, String::new())
        );
        let full = CliError::stdout(std::io::Error::other("No space left on device"));
        assert_eq!(full.code(), exit::FAILURE);
        assert_eq!(
            full.render(),
            "error: cannot write to stdout: No space left on device\n"
        );
    }

    #[test]
    fn errors_keep_their_exit_codes() {
        assert_eq!(CliError::Usage("x".into()).code(), exit::USAGE);
        assert_eq!(CliError::Fault("x".into()).code(), exit::FAULT);
        let in_file = CliError::InFile {
            file: "b.yml".into(),
            message: "cannot read".into(),
        };
        assert_eq!(in_file.code(), exit::FAILURE);
        assert_eq!(in_file.render(), "b.yml: error: cannot read\n");
    }
}
