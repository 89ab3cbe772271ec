//! Checking out git sources with the `git` CLI.
//!
//! See the crate documentation for why the CLI is used and how every
//! invocation is hardened. In short: a clean `GIT_*` environment, no
//! prompts, no hooks, no fsmonitor, no background maintenance, `LC_ALL=C`
//! so git's messages can be recognised.
//!
//! A checkout is made the way CodeBuild makes it: a real clone with `.git`,
//! `origin` pointing at the source repository, the requested version
//! checked out (on a local branch when a branch was asked for, detached
//! otherwise). Full clones use `git clone --local` (objects are hard-linked
//! when possible, so they are cheap); shallow clones `git init` and then
//! `git fetch --depth N` from a `file://` URL, because git ignores
//! `--depth` for plain local paths.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::SourceError;
use crate::resolve::is_git_repository;

/// `-c` settings passed to every git invocation.
const HARDENING: &[&str] = &[
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "protocol.file.allow=always",
    "advice.detachedHead=false",
    "gc.auto=0",
    "maintenance.auto=false",
];

/// The upload side of our local fetches. Protocol v2 already serves any
/// object id that is asked for; `allowAnySHA1InWant` makes fetching a bare
/// commit id work even if a user's configuration forces protocol v0.
const UPLOAD_PACK: &str = "git -c uploadpack.allowAnySHA1InWant=true upload-pack";

/// The result of [`checkout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkout {
    /// The root of the new work tree (the `dest` given to [`checkout`],
    /// made absolute); `.git` is directly inside it.
    pub dir: PathBuf,
    /// The full commit id that `HEAD` points to.
    pub commit: String,
    /// The full reference the version named, if it named one: e.g.
    /// `refs/heads/main` for `main` (and for the default branch),
    /// `refs/tags/v1` for `v1`, `refs/pull/7/head` for `pr/7`. `None` when
    /// the version was a commit id (or the source's `HEAD` was detached).
    pub reference: Option<String>,
}

/// Make a clean checkout of `version` of the local repository `repo` in
/// `dest`, like CodeBuild's `DOWNLOAD_SOURCE` clone.
///
/// `repo` is a work tree or a bare repository (e.g. from
/// [`crate::resolve`]). `dest` must be an empty directory or not exist yet
/// (it is created). The result is a real clone: `.git` is present, `origin`
/// points at `repo`, and only the files tracked at the chosen commit are
/// there — uncommitted changes, untracked and ignored files of the source
/// work tree never appear.
///
/// `version` may be:
/// * `None` (or empty): the source's `HEAD`, i.e. its default branch;
/// * a full commit id, or a short one (at least 4 hex digits, resolved in
///   the source; ambiguity is an error);
/// * a branch name or a tag name (a branch wins over a tag of the same
///   name);
/// * a full reference: `refs/heads/x`, `refs/tags/x`, `refs/pull/N/head`, …;
/// * `pr/N`, CodeBuild's GitHub pull-request form (= `refs/pull/N/head`);
/// * `REF^{FULL-SHA}`, CodeBuild's "reference and commit" form: the commit,
///   which must be reachable from the reference.
///
/// When a branch was asked for (or the default branch), that branch is
/// checked out, tracking `origin/<branch>`; otherwise `HEAD` is detached at
/// the commit, as in CodeBuild.
///
/// `depth`: `None` or `Some(0)` clones the full history (all branches and
/// tags); `Some(n)` makes a shallow clone with `n` commits of just the
/// requested version.
///
/// On error, anything written to `dest` is removed again.
///
/// # Errors
///
/// [`SourceError::RepositoryNotFound`] if `repo` is not a repository,
/// [`SourceError::InvalidVersion`] / [`SourceError::VersionNotFound`] for a
/// bad or unknown version (the message names the version and the
/// repository), [`SourceError::DestinationNotEmpty`], and
/// [`SourceError::Git`] / [`SourceError::Io`] with git's stderr or the I/O
/// error.
pub fn checkout(
    repo: &Path,
    version: Option<&str>,
    depth: Option<u32>,
    dest: &Path,
) -> Result<Checkout, SourceError> {
    let repo = absolute(repo)?;
    let wanted = resolve_wanted(&repo, version)?;
    let dest = absolute(dest)?;
    let created = prepare_dest(&dest)?;
    let result = clone_into(&repo, &wanted, depth.filter(|&d| d > 0), &dest);
    if result.is_err() {
        cleanup_dest(&dest, created);
    }
    result
}

/// Resolve `version` to a full commit id in the local repository `repo`
/// without checking anything out (for validating a `StartBuild`).
///
/// Accepts the same versions as [`checkout`], with the same errors.
pub fn resolve_version(repo: &Path, version: Option<&str>) -> Result<String, SourceError> {
    let repo = absolute(repo)?;
    Ok(resolve_wanted(&repo, version)?.commit)
}

/// The contents of the file `path` (relative to the repository's root) at `version` of the
/// local repository `repo` (the same versions as [`checkout`]), with the commit it was read
/// from; `Ok(None)` when that commit has no such file. Nothing is checked out.
pub fn read_file(
    repo: &Path,
    version: Option<&str>,
    path: &str,
) -> Result<(String, Option<Vec<u8>>), SourceError> {
    let repo = absolute(repo)?;
    let commit = resolve_wanted(&repo, version)?.commit;
    let out = GitCmd::new(Some(&repo))
        .arg("show")
        .arg(format!("{commit}:{path}"))
        .output()?;
    Ok((commit, out.status.success().then_some(out.stdout)))
}

/// List the files of the work tree at `dir` that git does not ignore.
///
/// Returns `Ok(None)` when `dir` is not inside a git work tree (no
/// repository at all, a bare repository, or inside `.git`). Otherwise
/// returns the paths, relative to `dir`, of tracked files and of untracked
/// files that are not ignored (`.gitignore`, `.git/info/exclude`,
/// `core.excludesFile`), sorted, limited to `dir` when it is a subfolder of
/// the work tree. Tracked files deleted from disk are left out. A submodule
/// or an untracked nested repository is listed as one entry naming its
/// folder; a caller copying files should copy such a folder whole.
pub fn work_tree_files(dir: &Path) -> Result<Option<Vec<PathBuf>>, SourceError> {
    let out = GitCmd::new(Some(dir))
        .arg("rev-parse")
        .arg("--is-inside-work-tree")
        .output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("not a git repository") {
            return Ok(None);
        }
        if !dir.is_dir() {
            return Err(SourceError::io(
                format!("listing {}", dir.display()),
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            ));
        }
        return Err(git_failure(&["rev-parse", "--is-inside-work-tree"], &out));
    }
    if String::from_utf8_lossy(&out.stdout).trim() != "true" {
        return Ok(None);
    }
    let listing = GitCmd::new(Some(dir))
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .run()?;
    let mut files: Vec<PathBuf> = listing
        .split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .map(path_from_bytes)
        .filter(|rel| dir.join(rel).symlink_metadata().is_ok())
        .collect();
    files.sort();
    files.dedup();
    Ok(Some(files))
}

// ---------------------------------------------------------------------------
// Version resolution
// ---------------------------------------------------------------------------

/// What [`checkout`] has to produce.
#[derive(Debug)]
struct Wanted {
    /// Full reference named by the version, if any.
    reference: Option<String>,
    /// Commit id in the source repository.
    commit: String,
    /// `REF^{SHA}`: check out `commit`, not the tip of `reference`.
    pinned: bool,
}

impl Wanted {
    fn branch(&self) -> Option<&str> {
        if self.pinned {
            return None;
        }
        self.reference.as_deref()?.strip_prefix("refs/heads/")
    }
}

fn resolve_wanted(repo: &Path, version: Option<&str>) -> Result<Wanted, SourceError> {
    if !is_git_repository(repo) {
        return Err(SourceError::RepositoryNotFound(repo.to_path_buf()));
    }
    let not_found = |version: &str, detail: Option<String>| SourceError::VersionNotFound {
        version: version.to_string(),
        repo: repo.to_path_buf(),
        detail,
    };

    let Some(v) = version.filter(|v| !v.is_empty()) else {
        // The default branch: whatever HEAD is in the source.
        return match symbolic_head(repo)? {
            Some(branch) => match peel(repo, &branch)? {
                Some(commit) => Ok(Wanted {
                    reference: Some(branch.clone()),
                    commit,
                    pinned: false,
                }),
                None => Err(not_found(
                    "HEAD",
                    Some(format!("the default branch {branch} has no commits")),
                )),
            },
            None => match peel(repo, "HEAD")? {
                Some(commit) => Ok(Wanted {
                    reference: None,
                    commit,
                    pinned: false,
                }),
                None => Err(not_found("HEAD", None)),
            },
        };
    };

    check_version_syntax(v)?;

    if let Some((name, sha)) = split_pinned(v) {
        let Some((reference, tip)) = lookup_ref(repo, name)? else {
            return Err(not_found(v, Some(format!("no reference {name}"))));
        };
        let Some(commit) = peel(repo, sha)? else {
            return Err(not_found(v, Some(format!("no commit {sha}"))));
        };
        if !is_ancestor(repo, &commit, &tip)? {
            return Err(not_found(
                v,
                Some(format!("commit {commit} is not reachable from {reference}")),
            ));
        }
        return Ok(Wanted {
            reference: Some(reference),
            commit,
            pinned: true,
        });
    }

    if is_full_sha(v) {
        return match peel(repo, v)? {
            Some(commit) => Ok(Wanted {
                reference: None,
                commit,
                pinned: false,
            }),
            None => Err(not_found(v, None)),
        };
    }

    if let Some((reference, commit)) = lookup_ref(repo, v)? {
        return Ok(Wanted {
            reference: Some(reference),
            commit,
            pinned: false,
        });
    }

    if v.len() >= 4 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        let out = GitCmd::new(Some(repo))
            .args(["rev-parse", "--verify", "--quiet"])
            .arg(format!("{v}^{{commit}}"))
            .output()?;
        if out.status.success() {
            return Ok(Wanted {
                reference: None,
                commit: stdout_line(&out),
                pinned: false,
            });
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let detail = stderr
            .lines()
            .find(|l| l.contains("ambiguous"))
            .map(|l| l.trim_start_matches("error: ").to_string());
        return Err(not_found(v, detail));
    }

    Err(not_found(v, None))
}

/// Reject versions that git could read as an option, or that contain
/// characters no ref name and no commit id can contain.
fn check_version_syntax(v: &str) -> Result<(), SourceError> {
    let invalid = |reason: &str| SourceError::InvalidVersion {
        version: v.to_string(),
        reason: reason.to_string(),
    };
    if v.starts_with('-') {
        return Err(invalid("must not start with `-`"));
    }
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("must not contain whitespace or control characters"));
    }
    let name = split_pinned(v).map_or(v, |(name, _)| name);
    let full = if name.starts_with("refs/") {
        name.to_string()
    } else {
        format!("refs/heads/{name}")
    };
    if !is_valid_ref_name(&full) {
        return Err(invalid(
            "not a valid branch, tag, reference or commit id (or REF^{FULL-SHA})",
        ));
    }
    Ok(())
}

/// `REF^{SHA}` with a full SHA → `(REF, SHA)`.
fn split_pinned(v: &str) -> Option<(&str, &str)> {
    let inner = v.strip_suffix('}')?;
    let (name, sha) = inner.rsplit_once("^{")?;
    (!name.is_empty() && is_full_sha(sha)).then_some((name, sha))
}

fn is_full_sha(v: &str) -> bool {
    (v.len() == 40 || v.len() == 64) && v.bytes().all(|b| b.is_ascii_hexdigit())
}

/// git's ref name rules (`git check-ref-format`), for a full name.
fn is_valid_ref_name(name: &str) -> bool {
    if name.is_empty()
        || name == "@"
        || name.ends_with('/')
        || name.ends_with('.')
        || name.contains("..")
        || name.contains("@{")
        || name.contains("//")
    {
        return false;
    }
    if name
        .chars()
        .any(|c| c.is_control() || " ~^:?*[\\".contains(c))
    {
        return false;
    }
    name.split('/')
        .all(|comp| !comp.is_empty() && !comp.starts_with('.') && !comp.ends_with(".lock"))
}

/// A version naming a reference → `(full reference, commit)`.
fn lookup_ref(repo: &Path, name: &str) -> Result<Option<(String, String)>, SourceError> {
    let candidates: Vec<String> = if name.starts_with("refs/") {
        vec![name.to_string()]
    } else if let Some(n) = name
        .strip_prefix("pr/")
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        vec![format!("refs/pull/{n}/head")]
    } else {
        vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
    };
    for full in candidates {
        if !is_valid_ref_name(&full) || !ref_exists(repo, &full)? {
            continue;
        }
        if let Some(commit) = peel(repo, &full)? {
            return Ok(Some((full, commit)));
        }
    }
    Ok(None)
}

/// Whether the exact reference `full` exists.
fn ref_exists(repo: &Path, full: &str) -> Result<bool, SourceError> {
    let out = GitCmd::new(Some(repo))
        .args(["show-ref", "--verify", "--quiet", full])
        .output()?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(git_failure(
            &["show-ref", "--verify", "--quiet", full],
            &out,
        )),
    }
}

/// `rev^{commit}` → commit id, `None` if there is no such commit. `rev` must
/// already be validated (no leading `-`).
fn peel(repo: &Path, rev: &str) -> Result<Option<String>, SourceError> {
    let spec = format!("{rev}^{{commit}}");
    let out = GitCmd::new(Some(repo))
        .args(["rev-parse", "--verify", "--quiet", &spec])
        .output()?;
    match out.status.code() {
        Some(0) => Ok(Some(stdout_line(&out))),
        Some(1) => Ok(None),
        _ => Err(git_failure(
            &["rev-parse", "--verify", "--quiet", &spec],
            &out,
        )),
    }
}

/// The branch `HEAD` points to, `None` if `HEAD` is detached.
fn symbolic_head(repo: &Path) -> Result<Option<String>, SourceError> {
    let out = GitCmd::new(Some(repo))
        .args(["symbolic-ref", "--quiet", "HEAD"])
        .output()?;
    match out.status.code() {
        Some(0) => Ok(Some(stdout_line(&out))),
        Some(1) => Ok(None),
        _ => Err(git_failure(&["symbolic-ref", "--quiet", "HEAD"], &out)),
    }
}

fn is_ancestor(repo: &Path, commit: &str, tip: &str) -> Result<bool, SourceError> {
    let out = GitCmd::new(Some(repo))
        .args(["merge-base", "--is-ancestor", commit, tip])
        .output()?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(git_failure(
            &["merge-base", "--is-ancestor", commit, tip],
            &out,
        )),
    }
}

// ---------------------------------------------------------------------------
// Cloning
// ---------------------------------------------------------------------------

/// Where a fetched reference is stored in the clone: branches as
/// remote-tracking branches, everything else under its own name.
fn local_name(reference: &str) -> String {
    match reference.strip_prefix("refs/heads/") {
        Some(branch) => format!("refs/remotes/origin/{branch}"),
        None => reference.to_string(),
    }
}

fn clone_into(
    repo: &Path,
    wanted: &Wanted,
    depth: Option<u32>,
    dest: &Path,
) -> Result<Checkout, SourceError> {
    let local = wanted.reference.as_deref().map(local_name);
    // A commit id has to be fetched by id when nothing else names it.
    let want_commit_by_id = wanted.pinned || wanted.reference.is_none();

    match depth {
        None => {
            GitCmd::new(None)
                .args(["clone", "--quiet", "--no-checkout", "--"])
                .arg(repo)
                .arg(dest)
                .run()?;
            let mut refspecs = Vec::new();
            if let (Some(reference), Some(local)) = (&wanted.reference, &local)
                && !ref_exists(dest, local)?
            {
                // e.g. refs/pull/N/head, which `git clone` does not copy.
                refspecs.push(format!("+{reference}:{local}"));
            }
            if want_commit_by_id && peel(dest, &wanted.commit)?.is_none() {
                refspecs.push(wanted.commit.clone());
            }
            if !refspecs.is_empty() {
                fetch(dest, repo, None, &refspecs)?;
            }
        }
        Some(n) => {
            GitCmd::new(None)
                .args(["init", "--quiet", "--"])
                .arg(dest)
                .run()?;
            GitCmd::new(Some(dest))
                .args(["config", "remote.origin.url"])
                .arg(repo)
                .run()?;
            GitCmd::new(Some(dest))
                .args([
                    "config",
                    "remote.origin.fetch",
                    "+refs/heads/*:refs/remotes/origin/*",
                ])
                .run()?;
            let mut refspecs = Vec::new();
            if let (Some(reference), Some(local)) = (&wanted.reference, &local) {
                refspecs.push(format!("+{reference}:{local}"));
            }
            if want_commit_by_id {
                refspecs.push(wanted.commit.clone());
            }
            fetch(dest, repo, Some(n), &refspecs)?;
        }
    }

    let commit = match (&local, want_commit_by_id) {
        (Some(local), false) => peel(dest, local)?.ok_or_else(|| SourceError::VersionNotFound {
            version: local.clone(),
            repo: dest.to_path_buf(),
            detail: Some("the fetched reference is not a commit".to_string()),
        })?,
        _ => wanted.commit.clone(),
    };

    let mut co = GitCmd::new(Some(dest));
    co.args(["checkout", "--quiet", "--force"]);
    match (wanted.branch(), &local) {
        (Some(branch), Some(local)) => {
            co.args(["-B", branch, "--track", local.as_str()]);
        }
        _ => {
            co.args(["--detach", commit.as_str()]);
        }
    }
    co.run()?;

    Ok(Checkout {
        dir: dest.to_path_buf(),
        commit,
        reference: wanted.reference.clone(),
    })
}

/// `git fetch` from the source repository over `file://`, which (unlike a
/// plain path) honours `--depth` and can fetch a bare commit id.
fn fetch(
    dest: &Path,
    repo: &Path,
    depth: Option<u32>,
    refspecs: &[String],
) -> Result<(), SourceError> {
    let mut cmd = GitCmd::new(Some(dest));
    cmd.args([
        "-c",
        "protocol.version=2",
        "fetch",
        "--quiet",
        "--no-tags",
        "--recurse-submodules=no",
        "--upload-pack",
        UPLOAD_PACK,
    ]);
    if let Some(n) = depth {
        cmd.arg(format!("--depth={n}"));
    }
    cmd.arg("--").arg(file_url(repo)).args(refspecs);
    cmd.run().map(drop)
}

/// `file://` URL for an absolute path; git percent-decodes these, so every
/// byte outside the unreserved set is encoded.
fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_encoded_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// Make sure `dest` is an empty directory; returns whether it was created.
fn prepare_dest(dest: &Path) -> Result<bool, SourceError> {
    match std::fs::metadata(dest) {
        Ok(meta) if !meta.is_dir() => Err(SourceError::DestinationNotEmpty(dest.to_path_buf())),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dest)
                .map_err(|e| SourceError::io(format!("reading {}", dest.display()), e))?;
            if entries.next().is_some() {
                Err(SourceError::DestinationNotEmpty(dest.to_path_buf()))
            } else {
                Ok(false)
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dest)
                .map_err(|e| SourceError::io(format!("creating {}", dest.display()), e))?;
            Ok(true)
        }
        Err(e) => Err(SourceError::io(format!("reading {}", dest.display()), e)),
    }
}

/// Undo a failed checkout: `dest` was empty (or absent) before we started,
/// so everything in it is ours. Best effort.
fn cleanup_dest(dest: &Path, created: bool) {
    if created {
        let _ = std::fs::remove_dir_all(dest);
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dest) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
                _ => std::fs::remove_file(&path),
            };
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, SourceError> {
    std::path::absolute(path)
        .map_err(|e| SourceError::io(format!("making {} absolute", path.display()), e))
}

// ---------------------------------------------------------------------------
// Running git
// ---------------------------------------------------------------------------

/// One hardened git invocation.
struct GitCmd {
    cmd: Command,
    args: Vec<OsString>,
}

impl GitCmd {
    fn new(cwd: Option<&Path>) -> Self {
        let mut cmd = Command::new("git");
        for (key, _) in std::env::vars_os() {
            if key.as_encoded_bytes().starts_with(b"GIT_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        for setting in HARDENING {
            cmd.arg("-c").arg(setting);
        }
        GitCmd {
            cmd,
            args: Vec::new(),
        }
    }

    fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    fn output(&mut self) -> Result<Output, SourceError> {
        self.cmd.args(&self.args);
        self.cmd.output().map_err(|e| {
            SourceError::io(
                format!("running `git {}` (is git installed?)", self.display()),
                e,
            )
        })
    }

    /// Run, requiring success; returns stdout.
    fn run(&mut self) -> Result<Vec<u8>, SourceError> {
        let out = self.output()?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(SourceError::Git {
                command: self.display(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    fn display(&self) -> String {
        self.args
            .iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn git_failure(args: &[&str], out: &Output) -> SourceError {
    SourceError::Git {
        command: args.join(" "),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn stdout_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[cfg(unix)]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    PathBuf::from(OsStr::from_bytes(bytes))
}

#[cfg(not(unix))]
fn path_from_bytes(bytes: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_name_rules() {
        for ok in ["refs/heads/main", "refs/heads/feat/x-1", "refs/pull/3/head"] {
            assert!(is_valid_ref_name(ok), "{ok}");
        }
        for bad in [
            "refs/heads/a..b",
            "refs/heads/a~1",
            "refs/heads/a^",
            "refs/heads/a:b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/x/",
            "refs/heads/x.",
            "refs/heads/a@{1}",
            "refs/heads/a//b",
            "refs/heads/a*",
        ] {
            assert!(!is_valid_ref_name(bad), "{bad}");
        }
    }

    #[test]
    fn version_syntax() {
        assert!(check_version_syntax("main").is_ok());
        assert!(check_version_syntax("pr/25").is_ok());
        assert!(check_version_syntax("abc1234").is_ok());
        let sha = "a".repeat(40);
        assert!(check_version_syntax(&format!("refs/heads/main^{{{sha}}}")).is_ok());
        for bad in ["--upload-pack=x", "-b", "main~1", "a b", "HEAD@{1}", "x:y"] {
            let err = check_version_syntax(bad).unwrap_err();
            assert!(matches!(err, SourceError::InvalidVersion { .. }), "{bad}");
        }
    }

    #[test]
    fn pinned_split() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            split_pinned(&format!("refs/heads/main^{{{sha}}}")),
            Some(("refs/heads/main", sha))
        );
        assert_eq!(split_pinned("main^{abc}"), None);
        assert_eq!(split_pinned(&format!("^{{{sha}}}")), None);
    }

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(file_url(Path::new("/a b/%20/c")), "file:///a%20b/%2520/c");
    }
}
