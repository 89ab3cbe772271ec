//! Mapping CodeBuild source locations onto this machine.
//!
//! Cloud locations (clone URLs, S3 object keys) are mapped onto two local
//! folders, the [`Roots`]: git repositories live under `git_root`, S3
//! objects under `s3_root` (`<s3_root>/BUCKET/KEY`). A location is untrusted
//! input (a request body, a pipeline declaration): its path segments become a
//! path under a root only through `localbuild_confine::Root::confined`, which
//! refuses `.`/`..` segments and symbolic links that lead out of the root. A
//! location that names a path on this machine (an absolute path, `file://`)
//! is refused: repositories are served from the git root only.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{SourceError, SourceKind};

const GIT_ROOT_HINT: &str = "set --git-root";
const S3_ROOT_HINT: &str = "S3 locations map to the S3 store, $LOCALBUILD_HOME/s3/BUCKET/KEY";

/// The local folders that stand in for remote source providers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// Folder holding local git repositories (bare or with a work tree),
    /// as `OWNER/REPO` or just `REPO`.
    pub git_root: PathBuf,
    /// Folder standing in for S3: `<s3_root>/BUCKET/KEY`.
    pub s3_root: PathBuf,
}

/// What a source location is on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A local git repository: a work tree (with `.git`) or a bare
    /// repository. Check it out with [`crate::checkout`].
    Git {
        /// The repository folder.
        repo: PathBuf,
    },
    /// A folder (an S3 "folder" location): use its contents as is.
    Dir(PathBuf),
    /// A zip file (an S3 object): extract it.
    Zip(PathBuf),
    /// `NO_SOURCE`: there is nothing to fetch.
    None,
}

/// Map a CodeBuild source location to this machine.
///
/// Rules, by source type:
///
/// * `GITHUB`, `GITHUB_ENTERPRISE`, `GITLAB`, `GITLAB_SELF_MANAGED`,
///   `BITBUCKET`: `https://HOST/OWNER/REPO` (also `http://`, a `.git`
///   suffix, a trailing slash, `user@` in the host, GitLab subgroups
///   `OWNER/SUB/REPO`) maps to the first git repository among
///   `<git_root>/OWNER/REPO`, `<git_root>/OWNER/REPO.git`,
///   `<git_root>/REPO` and `<git_root>/REPO.git`.
/// * `CODECOMMIT`: `https://git-codecommit.REGION.amazonaws.com/v1/repos/NAME`
///   maps to `<git_root>/NAME` (or `<git_root>/NAME.git`).
/// * For all git types, a plain absolute path or a `file://` URL is refused
///   ([`SourceError::OutsideGitRoot`]): only the git root is served.
/// * `S3`: `BUCKET/KEY`, `arn:aws:s3:::BUCKET/KEY` or `s3://BUCKET/KEY`
///   maps to `<s3_root>/BUCKET/KEY`, which must be a folder
///   ([`Resolved::Dir`]) or a zip file ([`Resolved::Zip`]).
/// * `NO_SOURCE`: [`Resolved::None`], whatever the location.
///
/// A "git repository" is a folder with a `.git` entry (work tree, linked
/// work tree or submodule) or a bare repository (`HEAD`, `objects/`,
/// `refs/`).
///
/// # Errors
///
/// [`SourceError::InvalidLocation`] for a malformed location or one with a
/// `.`/`..` segment; [`SourceError::Unresolved`] when nothing local matches,
/// whose message lists every path looked at, e.g. `source location
/// https://github.com/acme/app.git resolves to no local repository: looked
/// for /x/acme/app, /x/acme/app.git, /x/app and /x/app.git (set --git-root)`.
pub fn resolve(kind: SourceKind, location: &str, roots: &Roots) -> Result<Resolved, SourceError> {
    match kind {
        SourceKind::NoSource => Ok(Resolved::None),
        SourceKind::S3 => resolve_s3(location, &roots.s3_root),
        SourceKind::Codecommit => resolve_git(location, &roots.git_root, codecommit_candidates),
        SourceKind::Github
        | SourceKind::GithubEnterprise
        | SourceKind::Gitlab
        | SourceKind::GitlabSelfManaged
        | SourceKind::Bitbucket => resolve_git(location, &roots.git_root, hosted_candidates),
    }
}

fn invalid(location: &str, reason: impl Into<String>) -> SourceError {
    SourceError::InvalidLocation {
        location: location.to_string(),
        reason: reason.into(),
    }
}

/// Split a `/`-separated path into its non-empty segments, rejecting `.`
/// and `..` (which could escape a root) and control characters.
fn segments<'a>(location: &str, path: &'a str) -> Result<Vec<&'a str>, SourceError> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    for seg in &segs {
        if *seg == "." || *seg == ".." {
            return Err(invalid(
                location,
                format!("`{seg}` path components are not allowed"),
            ));
        }
        if seg.chars().any(|c| c.is_control()) {
            return Err(invalid(location, "control characters are not allowed"));
        }
    }
    Ok(segs)
}

/// Whether `path` looks like a git repository: a work tree (`.git` folder
/// or gitfile) or a bare repository.
pub(crate) fn is_git_repository(path: &Path) -> bool {
    if !path.is_dir() {
        return false;
    }
    path.join(".git").exists()
        || (path.join("HEAD").is_file()
            && path.join("objects").is_dir()
            && path.join("refs").is_dir())
}

type Candidates = fn(&str, &[&str]) -> Result<Vec<PathBuf>, SourceError>;

fn resolve_git(
    location: &str,
    git_root: &Path,
    candidates: Candidates,
) -> Result<Resolved, SourceError> {
    if location.is_empty() {
        return Err(invalid(location, "a git source needs a location"));
    }
    if local_path(location)?.is_some() {
        return Err(SourceError::OutsideGitRoot {
            location: location.to_string(),
            git_root: git_root.to_path_buf(),
        });
    }
    let path =
        url_path(location).ok_or_else(|| invalid(location, "expected an https:// clone URL"))?;
    let segs = segments(location, path)?;
    let relative = candidates(location, &segs)?;

    let mut looked = Vec::new();
    let mut not_repositories = Vec::new();
    let root = localbuild_confine::Root::new(git_root);
    for rel in relative {
        let path = root
            .confined("source location", &rel.to_string_lossy())
            .map_err(|e| invalid(location, e.to_string()))?;
        if looked.contains(&path) {
            continue;
        }
        if is_git_repository(&path) {
            return Ok(Resolved::Git { repo: path });
        }
        if path.exists() {
            not_repositories.push(path.clone());
        }
        looked.push(path);
    }
    Err(SourceError::Unresolved {
        location: location.to_string(),
        wanted: "repository",
        looked,
        not_repositories,
        hint: Some(GIT_ROOT_HINT),
    })
}

/// `/abs/path` or `file://[localhost]/abs/path` → the path; anything else →
/// `None`. `..` components are rejected like everywhere else.
fn local_path(location: &str) -> Result<Option<PathBuf>, SourceError> {
    let raw = if let Some(rest) = strip_prefix_ignore_case(location, "file://") {
        let rest = rest.strip_prefix("localhost").unwrap_or(rest);
        if !rest.starts_with('/') {
            return Err(invalid(location, "file:// URLs must name an absolute path"));
        }
        percent_decode(rest).ok_or_else(|| invalid(location, "bad percent-encoding"))?
    } else if location.starts_with('/') {
        location.to_string()
    } else {
        return Ok(None);
    };
    let segs = segments(location, &raw)?;
    let mut path = PathBuf::from("/");
    path.extend(segs);
    Ok(Some(path))
}

/// The path part of an `http(s)://[user@]host[:port]/path[?query][#frag]`
/// URL.
fn url_path(location: &str) -> Option<&str> {
    let rest = strip_prefix_ignore_case(location, "https://")
        .or_else(|| strip_prefix_ignore_case(location, "http://"))?;
    let slash = rest.find('/')?;
    let (authority, path) = rest.split_at(slash);
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() {
        return None;
    }
    let end = path.find(['?', '#']).unwrap_or(path.len());
    Some(&path[..end])
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `OWNER[/SUB…]/REPO[.git]` → `OWNER/REPO`, `OWNER/REPO.git`, `REPO`,
/// `REPO.git`.
fn hosted_candidates(location: &str, segs: &[&str]) -> Result<Vec<PathBuf>, SourceError> {
    let [owner @ .., last] = segs else {
        return Err(invalid(location, "expected https://HOST/OWNER/REPO"));
    };
    let repo = last.strip_suffix(".git").unwrap_or(last);
    if owner.is_empty() || repo.is_empty() {
        return Err(invalid(location, "expected https://HOST/OWNER/REPO"));
    }
    let full: PathBuf = owner.iter().collect();
    Ok(vec![
        full.join(repo),
        full.join(format!("{repo}.git")),
        PathBuf::from(repo),
        PathBuf::from(format!("{repo}.git")),
    ])
}

/// `v1/repos/NAME` → `NAME`, `NAME.git`.
fn codecommit_candidates(location: &str, segs: &[&str]) -> Result<Vec<PathBuf>, SourceError> {
    match segs {
        ["v1", "repos", name] => {
            let name = name.strip_suffix(".git").unwrap_or(name);
            if name.is_empty() {
                return Err(invalid(location, "empty repository name"));
            }
            Ok(vec![
                PathBuf::from(name),
                PathBuf::from(format!("{name}.git")),
            ])
        }
        _ => Err(invalid(
            location,
            "expected https://git-codecommit.REGION.amazonaws.com/v1/repos/NAME",
        )),
    }
}

fn resolve_s3(location: &str, s3_root: &Path) -> Result<Resolved, SourceError> {
    let rest = if location.starts_with("arn:") {
        // arn:PARTITION:s3:::BUCKET/KEY
        let parts: Vec<&str> = location.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _partition, "s3", "", "", resource] => *resource,
            _ => return Err(invalid(location, "expected arn:aws:s3:::BUCKET/KEY")),
        }
    } else if let Some(rest) = strip_prefix_ignore_case(location, "s3://") {
        rest
    } else {
        location
    };
    let segs = segments(location, rest)?;
    if segs.is_empty() {
        return Err(invalid(location, "expected BUCKET/KEY"));
    }
    let path = localbuild_confine::Root::new(s3_root)
        .confined("source location", &segs.join("/"))
        .map_err(|e| invalid(location, e.to_string()))?;

    if path.is_dir() {
        return Ok(Resolved::Dir(path));
    }
    if path.is_file() {
        return if is_zip(&path)? {
            Ok(Resolved::Zip(path))
        } else {
            Err(invalid(
                location,
                format!("{} is neither a zip file nor a folder", path.display()),
            ))
        };
    }
    Err(SourceError::Unresolved {
        location: location.to_string(),
        wanted: "zip file or folder",
        looked: vec![path],
        not_repositories: Vec::new(),
        hint: Some(S3_ROOT_HINT),
    })
}

/// Zip local-file header, empty-archive end record, or spanned marker.
fn is_zip(path: &Path) -> Result<bool, SourceError> {
    let mut magic = [0u8; 4];
    let mut file =
        File::open(path).map_err(|e| SourceError::io(format!("opening {}", path.display()), e))?;
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(SourceError::io(format!("reading {}", path.display()), e)),
        }
    }
    Ok(read == 4 && matches!(&magic, b"PK\x03\x04" | b"PK\x05\x06" | b"PK\x07\x08"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_paths() {
        assert_eq!(url_path("https://github.com/a/b.git"), Some("/a/b.git"));
        assert_eq!(url_path("HTTP://github.com/a/b/"), Some("/a/b/"));
        assert_eq!(
            url_path("https://me@bitbucket.org/a/b.git?x=1#y"),
            Some("/a/b.git")
        );
        assert_eq!(url_path("https://host:8443/a/b"), Some("/a/b"));
        assert_eq!(url_path("git@github.com:a/b.git"), None);
        assert_eq!(url_path("https://"), None);
        assert_eq!(url_path("https:///a/b"), None);
    }

    #[test]
    fn hosted_candidate_order() {
        let c = hosted_candidates("x", &["acme", "app.git"]).unwrap();
        let c: Vec<String> = c.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(c, ["acme/app", "acme/app.git", "app", "app.git"]);
        let c = hosted_candidates("x", &["group", "sub", "app"]).unwrap();
        assert_eq!(c[0], PathBuf::from("group/sub/app"));
        assert!(hosted_candidates("x", &["app"]).is_err());
        assert!(hosted_candidates("x", &["acme", ".git"]).is_err());
    }

    #[test]
    fn local_paths() {
        assert_eq!(
            local_path("file:///a/b%20c").unwrap(),
            Some(PathBuf::from("/a/b c"))
        );
        assert_eq!(
            local_path("file://localhost/a").unwrap(),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(local_path("/a//b/").unwrap(), Some(PathBuf::from("/a/b")));
        assert_eq!(local_path("https://x/a").unwrap(), None);
        assert!(local_path("/a/../b").is_err());
        assert!(local_path("file://a/b").is_err());
        assert!(local_path("file:///a%2").is_err());
    }
}
