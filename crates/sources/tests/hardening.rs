//! The git runner ignores the caller's `GIT_*` environment and does not let
//! a repository's configuration run commands.

mod common;

use std::process::Command;

use common::{Fixture, git};
use localbuild_sources::{checkout, resolve_version, work_tree_files};

#[test]
fn repository_fsmonitor_command_never_runs() {
    let fx = Fixture::new();
    let marker = fx.tmp.path().join("fsmonitor-ran");
    let script = fx.tmp.path().join("monitor.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    git(
        &fx.src,
        &["config", "core.fsmonitor", script.to_str().unwrap()],
    );
    // A post-checkout hook in the source must not matter either.
    git(
        &fx.src,
        &["config", "core.hooksPath", fx.tmp.path().to_str().unwrap()],
    );
    std::fs::copy(&script, fx.tmp.path().join("post-checkout")).unwrap();

    work_tree_files(&fx.src).unwrap().unwrap();
    resolve_version(&fx.src, Some("feature")).unwrap();
    checkout(&fx.src, Some("feature"), None, &fx.dest("a")).unwrap();
    checkout(&fx.src, Some("feature"), Some(1), &fx.dest("b")).unwrap();
    assert!(!marker.exists(), "a repository-configured command ran");
}

/// What `outer_git_environment_is_ignored` checks inside the re-executed test binary.
fn inner_with_hostile_git_environment() {
    let fx = Fixture::new();
    assert_eq!(resolve_version(&fx.src, Some("main")).unwrap(), fx.c2);
    let dest = fx.dest("env");
    let co = checkout(&fx.src, Some("feature"), Some(1), &dest).unwrap();
    assert_eq!(co.commit, fx.feat);
    let files = work_tree_files(&fx.src).unwrap().unwrap();
    assert!(files.iter().any(|f| f.ends_with("untracked.txt")));
}

/// The test re-executes itself with a hostile `GIT_*` environment (changing this process's
/// environment would need `unsafe`); in that child it runs the checks.
#[test]
fn outer_git_environment_is_ignored() {
    if std::env::var_os("LOCALBUILD_SOURCES_HOSTILE_CHILD").is_some() {
        return inner_with_hostile_git_environment();
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--exact",
            "outer_git_environment_is_ignored",
            "--test-threads=1",
        ])
        .env("LOCALBUILD_SOURCES_HOSTILE_CHILD", "1")
        .env("GIT_DIR", "/nonexistent/.git")
        .env("GIT_WORK_TREE", "/nonexistent")
        .env("GIT_INDEX_FILE", "/nonexistent/index")
        .env("GIT_OBJECT_DIRECTORY", "/nonexistent/objects")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "core.hooksPath")
        .env("GIT_CONFIG_VALUE_0", "/nonexistent")
        .env("GIT_TERMINAL_PROMPT", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "inner test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
