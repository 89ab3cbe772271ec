//! Shared helpers for the integration tests.

use std::path::PathBuf;

/// `tests/fixtures/<name>`, relative to the crate root (the directory the CLI runs in).
pub fn fixture(name: &str) -> String {
    format!("tests/fixtures/{name}")
}

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `localbuild` binary, run from the crate root.
pub fn localbuild() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("localbuild").expect("binary built");
    cmd.current_dir(root());
    cmd.env_remove("LOCALBUILD_LOG");
    // No user config file from the machine running the tests.
    cmd.env("XDG_CONFIG_HOME", "/nonexistent/localbuild-tests");
    cmd
}

/// A client tool of the API tests (`aws`, `python3` with boto3): the one in the repository's
/// `.venv` (made by `scripts/python-env.sh`) when it exists, else the one on PATH.
pub fn client_tool(name: &str) -> PathBuf {
    let venv = root().join(".venv/bin").join(name);
    if venv.exists() {
        venv
    } else {
        PathBuf::from(name)
    }
}

/// The ids of a build's Docker objects: `kind` is `["ps", "-a"]`, `["volume", "ls"]` or
/// `["network", "ls"]`; everything localbuild creates carries `localbuild.build-id=<id>`.
pub fn labelled(kind: [&str; 2], build_id: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(kind)
        .args(["-q", "--filter"])
        .arg(format!("label=localbuild.build-id={build_id}"))
        .output()
        .expect("docker runs");
    assert!(out.status.success(), "docker {kind:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The build's containers, running or not.
pub fn containers_of(build_id: &str) -> Vec<String> {
    labelled(["ps", "-a"], build_id)
}

/// No container, volume or network of the build remains.
pub fn assert_nothing_left(build_id: &str) {
    for kind in [["ps", "-a"], ["volume", "ls"], ["network", "ls"]] {
        let left = labelled(kind, build_id);
        assert!(left.is_empty(), "build {build_id} left {kind:?}: {left:?}");
    }
}

/// `git ARGS` in `dir` with a fixed identity; its trimmed stdout (it must succeed).
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
        .arg(dir)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
