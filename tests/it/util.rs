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
