//! Shared fixtures for the integration tests: real git repositories in
//! temporary folders.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

/// Run git in `dir` (test-side helper, independent of the crate's runner)
/// and return trimmed stdout; panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .current_dir(dir)
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "tag.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn write(path: &Path, contents: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, contents).unwrap();
}

/// A source repository:
///
/// ```text
/// c1 (tag v1 annotated, tag light) ── c2  main
///   └── feat                              feature
///   └── pr                                refs/pull/7/head only
/// ```
///
/// plus, in the work tree, an ignored `node_modules/x`, an untracked
/// `untracked.txt` and an uncommitted edit of `a.txt`.
pub struct Fixture {
    pub tmp: TempDir,
    pub src: PathBuf,
    pub c1: String,
    pub c2: String,
    pub feat: String,
    pub pr: String,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::in_subdir("src")
    }

    /// The source repository at `<tmp>/<name>` (`name` may contain spaces
    /// or `%`).
    pub fn in_subdir(name: &str) -> Fixture {
        let tmp = TempDir::new().unwrap();
        let src = tmp.path().join(name);
        std::fs::create_dir_all(&src).unwrap();
        git(&src, &["init", "--quiet", "--initial-branch=main"]);
        write(&src.join(".gitignore"), "node_modules/\n");
        write(&src.join("a.txt"), "one\n");
        write(&src.join("dir/b.txt"), "bee\n");
        git(&src, &["add", "."]);
        git(&src, &["commit", "--quiet", "-m", "one"]);
        let c1 = git(&src, &["rev-parse", "HEAD"]);
        git(&src, &["tag", "-a", "v1", "-m", "version 1"]);
        git(&src, &["tag", "light"]);

        git(&src, &["checkout", "--quiet", "-b", "feature"]);
        write(&src.join("feature.txt"), "feature\n");
        git(&src, &["add", "feature.txt"]);
        git(&src, &["commit", "--quiet", "-m", "feature"]);
        let feat = git(&src, &["rev-parse", "HEAD"]);

        git(&src, &["checkout", "--quiet", "-b", "pr-branch", &c1]);
        write(&src.join("pr.txt"), "pr\n");
        git(&src, &["add", "pr.txt"]);
        git(&src, &["commit", "--quiet", "-m", "pull request"]);
        let pr = git(&src, &["rev-parse", "HEAD"]);
        git(&src, &["update-ref", "refs/pull/7/head", &pr]);

        git(&src, &["checkout", "--quiet", "main"]);
        git(&src, &["branch", "--quiet", "-D", "pr-branch"]);
        write(&src.join("a.txt"), "two\n");
        git(&src, &["commit", "--quiet", "-am", "two"]);
        let c2 = git(&src, &["rev-parse", "HEAD"]);

        write(&src.join("node_modules/x"), "ignored\n");
        write(&src.join("untracked.txt"), "untracked\n");
        write(&src.join("a.txt"), "uncommitted edit\n");

        Fixture {
            tmp,
            src,
            c1,
            c2,
            feat,
            pr,
        }
    }

    /// A fresh (not yet existing) destination folder.
    pub fn dest(&self, name: &str) -> PathBuf {
        self.tmp.path().join("out").join(name)
    }

    /// A bare clone of the source (all branches, tags and refs/pull).
    pub fn bare(&self) -> PathBuf {
        let bare = self.tmp.path().join("bare.git");
        git(
            self.tmp.path(),
            &[
                "clone",
                "--quiet",
                "--mirror",
                "--",
                self.src.to_str().unwrap(),
                "bare.git",
            ],
        );
        bare
    }
}
