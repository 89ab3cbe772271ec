//! `checkout`, `resolve_version` and `work_tree_files` against real git
//! repositories.

mod common;

use std::path::{Path, PathBuf};

use common::{Fixture, git, write};
use localbuild_sources::{SourceError, checkout, resolve_version, work_tree_files};

fn head(dir: &Path) -> String {
    git(dir, &["rev-parse", "HEAD"])
}

fn commit_count(dir: &Path) -> usize {
    git(dir, &["rev-list", "--count", "HEAD"]).parse().unwrap()
}

/// The branch `HEAD` is on, `None` when detached.
fn current_branch(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["symbolic-ref", "--quiet", "--short", "HEAD"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn is_shallow(dir: &Path) -> bool {
    git(dir, &["rev-parse", "--is-shallow-repository"]) == "true"
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn default_checkout_is_latest_main_without_untracked_or_ignored_files() {
    let fx = Fixture::new();
    let dest = fx.dest("default");
    let co = checkout(&fx.src, None, None, &dest).unwrap();

    assert_eq!(co.commit, fx.c2);
    assert_eq!(co.reference.as_deref(), Some("refs/heads/main"));
    assert_eq!(co.dir, dest);
    assert!(dest.join(".git").is_dir());
    assert_eq!(head(&dest), fx.c2);
    assert_eq!(current_branch(&dest).as_deref(), Some("main"));
    assert_eq!(
        git(&dest, &["rev-parse", "--abbrev-ref", "main@{upstream}"]),
        "origin/main"
    );

    // Committed content, not the source's uncommitted edit.
    assert_eq!(read(dest.join("a.txt")), "two\n");
    assert_eq!(read(dest.join("dir/b.txt")), "bee\n");
    assert!(dest.join(".gitignore").is_file());
    assert!(!dest.join("node_modules").exists());
    assert!(!dest.join("untracked.txt").exists());
    assert!(!dest.join("feature.txt").exists());
    // A clean work tree.
    assert_eq!(git(&dest, &["status", "--porcelain"]), "");
    // Full history, all branches and tags, origin = the source.
    assert!(!is_shallow(&dest));
    assert_eq!(commit_count(&dest), 2);
    assert_eq!(
        git(&dest, &["rev-parse", "refs/remotes/origin/feature"]),
        fx.feat
    );
    assert_eq!(git(&dest, &["rev-parse", "v1^{commit}"]), fx.c1);
    assert_eq!(
        PathBuf::from(git(&dest, &["remote", "get-url", "origin"])),
        fx.src
    );
}

#[test]
fn branch_names_check_out_the_branch() {
    let fx = Fixture::new();
    for (i, version) in ["feature", "refs/heads/feature"].into_iter().enumerate() {
        let dest = fx.dest(&format!("branch{i}"));
        let co = checkout(&fx.src, Some(version), None, &dest).unwrap();
        assert_eq!(co.commit, fx.feat, "{version}");
        assert_eq!(co.reference.as_deref(), Some("refs/heads/feature"));
        assert_eq!(head(&dest), fx.feat);
        assert_eq!(current_branch(&dest).as_deref(), Some("feature"));
        assert_eq!(
            git(&dest, &["rev-parse", "--abbrev-ref", "feature@{upstream}"]),
            "origin/feature"
        );
        assert_eq!(read(dest.join("feature.txt")), "feature\n");
        assert_eq!(read(dest.join("a.txt")), "one\n");
        assert_eq!(git(&dest, &["status", "--porcelain"]), "");
    }
}

#[test]
fn tags_and_commits_are_detached() {
    let fx = Fixture::new();
    let short = &fx.c1[..7];
    let cases: [(&str, &str, Option<&str>); 6] = [
        ("v1", &fx.c1, Some("refs/tags/v1")),
        ("light", &fx.c1, Some("refs/tags/light")),
        ("refs/tags/v1", &fx.c1, Some("refs/tags/v1")),
        (&fx.c1, &fx.c1, None),
        (short, &fx.c1, None),
        (&fx.feat, &fx.feat, None),
    ];
    for (i, (version, want, reference)) in cases.into_iter().enumerate() {
        let dest = fx.dest(&format!("detached{i}"));
        let co = checkout(&fx.src, Some(version), None, &dest).unwrap();
        assert_eq!(co.commit, want, "{version}");
        assert_eq!(co.reference.as_deref(), reference, "{version}");
        assert_eq!(head(&dest), want, "{version}");
        assert_eq!(current_branch(&dest), None, "{version} should be detached");
        assert_eq!(git(&dest, &["status", "--porcelain"]), "");
    }
    // An uppercase full SHA works too.
    let dest = fx.dest("upper");
    let co = checkout(&fx.src, Some(&fx.c1.to_uppercase()), None, &dest).unwrap();
    assert_eq!(co.commit, fx.c1);
}

#[test]
fn pull_request_refs() {
    let fx = Fixture::new();
    for (i, version) in ["refs/pull/7/head", "pr/7"].into_iter().enumerate() {
        for depth in [None, Some(1)] {
            let dest = fx.dest(&format!("pr{i}-{depth:?}"));
            let co = checkout(&fx.src, Some(version), depth, &dest).unwrap();
            assert_eq!(co.commit, fx.pr, "{version} {depth:?}");
            assert_eq!(co.reference.as_deref(), Some("refs/pull/7/head"));
            assert_eq!(head(&dest), fx.pr);
            assert_eq!(current_branch(&dest), None);
            assert_eq!(read(dest.join("pr.txt")), "pr\n");
        }
    }
}

#[test]
fn reference_with_pinned_commit() {
    let fx = Fixture::new();
    let version = format!("refs/heads/main^{{{}}}", fx.c1);
    for depth in [None, Some(1)] {
        let dest = fx.dest(&format!("pinned-{depth:?}"));
        let co = checkout(&fx.src, Some(&version), depth, &dest).unwrap();
        assert_eq!(co.commit, fx.c1);
        assert_eq!(co.reference.as_deref(), Some("refs/heads/main"));
        assert_eq!(head(&dest), fx.c1);
        assert_eq!(current_branch(&dest), None);
        assert_eq!(read(dest.join("a.txt")), "one\n");
    }
    assert_eq!(resolve_version(&fx.src, Some(&version)).unwrap(), fx.c1);

    // The commit must be on the reference.
    let bad = format!("refs/heads/main^{{{}}}", fx.feat);
    let err = resolve_version(&fx.src, Some(&bad)).unwrap_err();
    assert!(matches!(err, SourceError::VersionNotFound { .. }), "{err}");
    assert!(err.to_string().contains("not reachable"), "{err}");
}

#[test]
fn shallow_checkouts_have_exactly_depth_commits() {
    let fx = Fixture::new();
    let cases: [(Option<&str>, u32, &str, usize); 6] = [
        (None, 1, &fx.c2, 1),
        (Some("main"), 2, &fx.c2, 2),
        (Some("main"), 50, &fx.c2, 2),
        (Some("v1"), 1, &fx.c1, 1),
        (Some(&fx.c1), 1, &fx.c1, 1),
        (Some(&fx.feat[..8]), 1, &fx.feat, 1),
    ];
    for (i, (version, depth, want, count)) in cases.into_iter().enumerate() {
        let dest = fx.dest(&format!("shallow{i}"));
        let co = checkout(&fx.src, version, Some(depth), &dest).unwrap();
        assert_eq!(co.commit, want, "{version:?}");
        assert_eq!(head(&dest), want);
        assert_eq!(commit_count(&dest), count, "{version:?} depth {depth}");
        if depth == 1 {
            assert!(is_shallow(&dest), "{version:?}");
        }
        assert!(!dest.join("node_modules").exists());
        assert!(!dest.join("untracked.txt").exists());
        assert_eq!(git(&dest, &["status", "--porcelain"]), "");
        assert_eq!(
            PathBuf::from(git(&dest, &["remote", "get-url", "origin"])),
            fx.src
        );
    }

    // A shallow branch checkout is still on the branch, tracking origin.
    let dest = fx.dest("shallow-branch");
    checkout(&fx.src, Some("feature"), Some(1), &dest).unwrap();
    assert_eq!(current_branch(&dest).as_deref(), Some("feature"));
    assert_eq!(commit_count(&dest), 1);
    assert_eq!(
        git(&dest, &["rev-parse", "--abbrev-ref", "feature@{upstream}"]),
        "origin/feature"
    );
    // The annotated tag object itself was fetched.
    let dest = fx.dest("shallow-tag");
    checkout(&fx.src, Some("v1"), Some(1), &dest).unwrap();
    assert_eq!(git(&dest, &["cat-file", "-t", "refs/tags/v1"]), "tag");
}

#[test]
fn depth_zero_means_full_history() {
    let fx = Fixture::new();
    let dest = fx.dest("zero");
    let co = checkout(&fx.src, Some("main"), Some(0), &dest).unwrap();
    assert_eq!(co.commit, fx.c2);
    assert!(!is_shallow(&dest));
    assert_eq!(commit_count(&dest), 2);
}

#[test]
fn unknown_versions_are_client_errors_naming_version_and_repo() {
    let fx = Fixture::new();
    for version in ["no-such-branch", "refs/heads/nope", "deadbeef", "pr/99"] {
        let dest = fx.dest(version);
        let err = checkout(&fx.src, Some(version), None, &dest).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, SourceError::VersionNotFound { .. }), "{msg}");
        assert!(msg.starts_with("CLIENT_ERROR:"), "{msg}");
        assert!(msg.contains(version), "{msg}");
        assert!(msg.contains(&fx.src.display().to_string()), "{msg}");
        // Nothing was left behind.
        assert!(!dest.exists(), "{version}: {} left behind", dest.display());
    }
    let full = "0123456789abcdef0123456789abcdef01234567";
    let err = resolve_version(&fx.src, Some(full)).unwrap_err();
    assert!(err.to_string().contains(full), "{err}");
}

#[test]
fn option_like_and_malformed_versions_are_rejected() {
    let fx = Fixture::new();
    for version in [
        "--upload-pack=touch /tmp/pwned",
        "-b",
        "main~1",
        "main:x",
        "a b",
    ] {
        let err = resolve_version(&fx.src, Some(version)).unwrap_err();
        assert!(
            matches!(err, SourceError::InvalidVersion { .. }),
            "{version}: {err}"
        );
    }
}

#[test]
fn resolve_version_matches_checkout() {
    let fx = Fixture::new();
    assert_eq!(resolve_version(&fx.src, None).unwrap(), fx.c2);
    assert_eq!(resolve_version(&fx.src, Some("")).unwrap(), fx.c2);
    assert_eq!(resolve_version(&fx.src, Some("main")).unwrap(), fx.c2);
    assert_eq!(resolve_version(&fx.src, Some("feature")).unwrap(), fx.feat);
    assert_eq!(resolve_version(&fx.src, Some("v1")).unwrap(), fx.c1);
    assert_eq!(
        resolve_version(&fx.src, Some("refs/tags/v1")).unwrap(),
        fx.c1
    );
    assert_eq!(resolve_version(&fx.src, Some(&fx.c1[..10])).unwrap(), fx.c1);
    assert_eq!(resolve_version(&fx.src, Some("pr/7")).unwrap(), fx.pr);
}

#[test]
fn bare_repository_as_source() {
    let fx = Fixture::new();
    let bare = fx.bare();
    assert_eq!(resolve_version(&bare, None).unwrap(), fx.c2);

    let dest = fx.dest("bare-default");
    let co = checkout(&bare, None, None, &dest).unwrap();
    assert_eq!(co.commit, fx.c2);
    assert_eq!(current_branch(&dest).as_deref(), Some("main"));
    assert_eq!(read(dest.join("a.txt")), "two\n");
    assert!(dest.join(".git").is_dir());

    let dest = fx.dest("bare-feature-shallow");
    let co = checkout(&bare, Some("feature"), Some(1), &dest).unwrap();
    assert_eq!(co.commit, fx.feat);
    assert_eq!(commit_count(&dest), 1);
    assert_eq!(current_branch(&dest).as_deref(), Some("feature"));

    let dest = fx.dest("bare-pr");
    let co = checkout(&bare, Some("pr/7"), None, &dest).unwrap();
    assert_eq!(co.commit, fx.pr);

    let dest = fx.dest("bare-sha");
    let co = checkout(&bare, Some(&fx.c1[..7]), Some(1), &dest).unwrap();
    assert_eq!(co.commit, fx.c1);
    assert_eq!(commit_count(&dest), 1);
}

#[test]
fn source_with_detached_head_defaults_to_that_commit() {
    let fx = Fixture::new();
    git(&fx.src, &["stash", "--quiet"]);
    git(&fx.src, &["checkout", "--quiet", "--detach", &fx.feat]);
    let dest = fx.dest("detached-source");
    let co = checkout(&fx.src, None, None, &dest).unwrap();
    assert_eq!(co.commit, fx.feat);
    assert_eq!(co.reference, None);
    assert_eq!(current_branch(&dest), None);
}

#[test]
fn paths_with_spaces_and_percent_signs() {
    let fx = Fixture::in_subdir("my src %20 dir");
    let dest = fx.tmp.path().join("out dir %41").join("co");
    let co = checkout(&fx.src, Some(&fx.c1), Some(1), &dest).unwrap();
    assert_eq!(co.commit, fx.c1);
    assert_eq!(commit_count(&dest), 1);
}

#[test]
fn destination_must_be_empty_and_is_kept_when_given() {
    let fx = Fixture::new();
    let dest = fx.dest("busy");
    write(&dest.join("something"), "x");
    let err = checkout(&fx.src, None, None, &dest).unwrap_err();
    assert!(matches!(err, SourceError::DestinationNotEmpty(_)), "{err}");
    assert!(dest.join("something").exists());

    // An existing empty folder is used, and kept (emptied) on failure.
    let empty = fx.dest("empty");
    std::fs::create_dir_all(&empty).unwrap();
    checkout(&fx.src, Some("feature"), Some(1), &empty).unwrap();
    assert!(empty.join("feature.txt").exists());

    let empty2 = fx.dest("empty2");
    std::fs::create_dir_all(&empty2).unwrap();
    let dangling = "0123456789abcdef0123456789abcdef01234567";
    assert!(checkout(&fx.src, Some(dangling), Some(1), &empty2).is_err());
    assert!(empty2.is_dir());
    assert_eq!(std::fs::read_dir(&empty2).unwrap().count(), 0);
}

#[test]
fn not_a_repository() {
    let fx = Fixture::new();
    let plain = fx.tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let err = checkout(&plain, None, None, &fx.dest("x")).unwrap_err();
    assert!(matches!(err, SourceError::RepositoryNotFound(_)), "{err}");
    assert!(err.to_string().contains(&plain.display().to_string()));
    // A folder inside a work tree is not taken for the repository.
    let err = resolve_version(&fx.src.join("dir"), None).unwrap_err();
    assert!(matches!(err, SourceError::RepositoryNotFound(_)), "{err}");
}

#[test]
fn empty_repository_has_no_default_branch_commit() {
    let tmp = tempfile::TempDir::new().unwrap();
    git(
        tmp.path(),
        &["init", "--quiet", "--initial-branch=main", "empty"],
    );
    let err = resolve_version(&tmp.path().join("empty"), None).unwrap_err();
    assert!(matches!(err, SourceError::VersionNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("refs/heads/main has no commits"),
        "{err}"
    );
}

#[test]
fn work_tree_files_skip_ignored_and_keep_untracked() {
    let fx = Fixture::new();
    write(&fx.src.join("dir/new.txt"), "new\n");
    write(&fx.src.join("dir/node_modules/y"), "ignored\n");
    std::fs::remove_file(fx.src.join("dir/b.txt")).unwrap(); // tracked, deleted

    let files = work_tree_files(&fx.src).unwrap().expect("a work tree");
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(
        names,
        [".gitignore", "a.txt", "dir/new.txt", "untracked.txt"],
        "{names:?}"
    );

    // From a subfolder: relative to it, limited to it.
    let files = work_tree_files(&fx.src.join("dir")).unwrap().unwrap();
    assert_eq!(files, [PathBuf::from("new.txt")]);

    // Not a work tree.
    let plain = fx.tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    assert_eq!(work_tree_files(&plain).unwrap(), None);
    assert_eq!(work_tree_files(&fx.bare()).unwrap(), None);
    assert_eq!(work_tree_files(&fx.src.join(".git")).unwrap(), None);
}
