//! Build sources for localbuild, the local AWS CodeBuild emulator.
//!
//! A CodeBuild project describes its source as a *type* (`GITHUB`, `S3`, …),
//! a *location* (a clone URL, `bucket/key`, …), a *source version* (branch,
//! tag, commit, pull request) and a *clone depth*. This crate turns that
//! description into something on this machine, checked out the way the
//! cloud would check it out:
//!
//! * [`SourceKind`] parses CodeBuild's source type strings.
//! * [`resolve`] maps a location onto local folders ([`Roots`]): clone URLs
//!   become local git repositories, S3 locations become local zip files or
//!   folders.
//! * [`checkout`] makes a clean clone of one version of a local repository,
//!   with `.git` present, full or shallow, on a branch or detached like
//!   CodeBuild; [`resolve_version`] only resolves the version to a commit, and
//!   [`read_file`] reads one file of it (a batch's buildspec).
//! * [`work_tree_files`] lists the files of a work tree that git does not
//!   ignore, for copying a work tree without `node_modules/` or `target/`.
//!
//! All functions are blocking (they run `git` and touch the file system);
//! async callers should use `spawn_blocking`.
//!
//! # Why the git CLI
//!
//! Git is driven through the `git` command line program rather than a
//! library binding: the CLI is what users already have and what CodeBuild
//! itself runs, so behaviour (ref resolution, shallow fetches, ignore rules,
//! the user's own configuration) is exactly git's, and there is no libgit2
//! or other native build to carry. Every invocation is hardened: all
//! `GIT_*` environment variables are removed (so an outer `GIT_DIR` or
//! `GIT_INDEX_FILE` cannot redirect us), `GIT_TERMINAL_PROMPT=0` and a null
//! stdin make sure git never prompts, `core.hooksPath=/dev/null` makes sure
//! no hook runs, `core.fsmonitor=false` stops a repository's configuration
//! from starting a monitor process, and automatic gc/maintenance is off so
//! no background process is left behind in a checkout. Git's own error text
//! (stderr) is carried in [`SourceError::Git`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod git;
mod kind;
mod resolve;

use std::path::PathBuf;

pub use git::{Checkout, checkout, read_file, resolve_version, work_tree_files};
pub use kind::SourceKind;
pub use resolve::{Resolved, Roots, resolve};

/// Everything that can go wrong while resolving or checking out a source.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source type string is not one of CodeBuild's source types.
    #[error(
        "unknown source type {0:?}: expected one of CODECOMMIT, GITHUB, GITHUB_ENTERPRISE, \
         GITLAB, GITLAB_SELF_MANAGED, BITBUCKET, S3, NO_SOURCE"
    )]
    UnknownKind(String),

    /// The location is malformed for its source type, or tries to escape
    /// the configured roots (`..` components).
    #[error("invalid source location {location:?}: {reason}")]
    InvalidLocation {
        /// The location as given.
        location: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The location names a path on this machine (an absolute path or a
    /// `file://` URL): only repositories under the git root are served.
    #[error(
        "source location {location:?} names a path on this machine; repositories are served \
         only from the git root {}: put the repository under it (OWNER/REPO or REPO) and use \
         its clone URL, e.g. https://github.com/OWNER/REPO.git (set --git-root to serve another folder)",
        .git_root.display()
    )]
    OutsideGitRoot {
        /// The location as given.
        location: String,
        /// The folder repositories are served from.
        git_root: PathBuf,
    },

    /// The location is well formed but nothing on this machine matches it.
    #[error("{}", unresolved_message(.location, .wanted, .looked, .not_repositories, .hint))]
    Unresolved {
        /// The location as given.
        location: String,
        /// What was looked for ("repository", "zip file or folder").
        wanted: &'static str,
        /// Every path that was looked at, in order.
        looked: Vec<PathBuf>,
        /// Paths among `looked` that exist but are not git repositories.
        not_repositories: Vec<PathBuf>,
        /// How to fix it (e.g. `set --git-root`), if there is a hint.
        hint: Option<&'static str>,
    },

    /// The source version is syntactically unusable (would be an option,
    /// contains characters no ref or commit can contain, …).
    #[error("invalid source version {version:?}: {reason}")]
    InvalidVersion {
        /// The version as given.
        version: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The repository has no branch, tag, reference or commit matching the
    /// version. Worded like CodeBuild's `DOWNLOAD_SOURCE` failure.
    #[error(
        "CLIENT_ERROR: repository not found or reference not found: {version} (repository {}){}",
        .repo.display(),
        .detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
    )]
    VersionNotFound {
        /// The version as given (`HEAD` for the default branch).
        version: String,
        /// The repository that was searched.
        repo: PathBuf,
        /// Extra explanation (ambiguous short SHA, unreachable commit, …).
        detail: Option<String>,
    },

    /// The path given as a repository is not a git repository.
    #[error("CLIENT_ERROR: repository not found: {} is not a git repository", .0.display())]
    RepositoryNotFound(PathBuf),

    /// The checkout destination exists and is not an empty directory.
    #[error("checkout destination {} is not an empty directory", .0.display())]
    DestinationNotEmpty(PathBuf),

    /// A git command failed; `stderr` is git's own explanation.
    #[error("`git {command}` failed ({status}): {}", .stderr.trim())]
    Git {
        /// The git arguments, for display.
        command: String,
        /// The exit status, for display.
        status: String,
        /// What git printed on stderr.
        stderr: String,
    },

    /// An I/O error outside git (creating folders, reading files, starting
    /// git itself).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SourceError::Io {
            context: context.into(),
            source,
        }
    }
}

fn unresolved_message(
    location: &str,
    wanted: &str,
    looked: &[PathBuf],
    not_repositories: &[PathBuf],
    hint: &Option<&'static str>,
) -> String {
    let mut msg = format!(
        "source location {location} resolves to no local {wanted}: looked for {}",
        join_paths(looked)
    );
    if let Some(hint) = hint {
        msg.push_str(&format!(" ({hint})"));
    }
    for p in not_repositories {
        msg.push_str(&format!(
            "; {} exists but is not a git repository",
            p.display()
        ));
    }
    msg
}

fn join_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    match shown.as_slice() {
        [] => "nothing".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
