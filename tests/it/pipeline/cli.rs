//! `localbuild pipeline` against the running server: create, update, start, approve.

use super::*;

/// `localbuild ARGS` against the running server, signed with its keys: exit code, stdout, stderr.
fn cli_to(s: &Serve, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .env("LOCALBUILD_HOME", s.home.path())
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env("AWS_ACCESS_KEY_ID", &s.keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &s.keys.1)
        .env_remove("LOCALBUILD_LOG")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_creates_updates_starts_and_approves_through_the_running_server() {
    let s = Serve::with_credentials("AKIDCLI", "cli-secret");
    let dir = tempfile::tempdir().unwrap();
    plain_repo(&s, "clirepo");
    let conn = connection(&s);
    inline_project(&s, "clibuild", &["echo built"]);
    // The `--pipeline` form: the declaration alone.
    let definition = dir.path().join("pipeline.json");
    let declaration = &staged("clipipe", &conn, "clirepo", "clibuild", true)["pipeline"];
    std::fs::write(
        &definition,
        serde_json::to_string_pretty(declaration).unwrap(),
    )
    .unwrap();
    let definition = definition.to_str().unwrap();

    // A broken file is refused here, with its line and column, before any call.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"name\": \"x\",\n  \"stages\": [,]\n}\n").unwrap();
    let (code, _, err) = cli_to(&s, &["pipeline", "create", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("bad.json:3:14: SerializationException: not valid JSON"),
        "{err}"
    );
    // The server wants signed calls: without keys the CLI gets its AWS error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["pipeline", "create", definition])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MissingAuthenticationTokenException"), "{err}");

    // Create: the first execution starts and waits at the approval.
    let (code, out, err) = cli_to(&s, &["pipeline", "create", definition]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("Created pipeline clipipe (version 1)"),
        "{out}"
    );
    let (code, _, err) = cli_to(&s, &["pipeline", "create", definition]);
    assert_eq!(code, Some(1));
    assert!(err.contains("PipelineNameInUseException"), "{err}");
    let first = first_execution(&s, "clipipe");
    wait_action_running(&s, "clipipe", "Approve", &first);
    let (code, out, err) = cli_to(
        &s,
        &[
            "pipeline",
            "approve",
            "clipipe",
            "Approve",
            "Approval",
            "--summary",
            "ship",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "Approved Approve/Approval of clipipe");
    wait_execution(&s, "clipipe", &first, "to succeed", |e| {
        e["status"] == "Succeeded"
    });
    let (code, _, err) = cli_to(
        &s,
        &["pipeline", "approve", "clipipe", "Approve", "Approval"],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("is not waiting for approval"), "{err}");

    // Update: version 2. Start: a new execution, rejected this time.
    let (code, out, err) = cli_to(&s, &["pipeline", "update", definition]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "Updated pipeline clipipe to version 2");
    assert_eq!(
        s.ok(&["codepipeline", "get-pipeline", "--name", "clipipe"])["pipeline"]["version"],
        2
    );
    let (code, out, err) = cli_to(&s, &["pipeline", "start", "clipipe"]);
    assert_eq!(code, Some(0), "{err}");
    let second = out.trim().to_owned();
    assert_ne!(second, first);
    wait_action_running(&s, "clipipe", "Approve", &second);
    let (code, _, err) = cli_to(
        &s,
        &[
            "pipeline",
            "approve",
            "clipipe",
            "Approve",
            "Approval",
            "--reject",
            "--summary",
            "no",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let e = wait_execution(&s, "clipipe", &second, "to fail", |e| {
        e["status"] == "Failed"
    });
    assert_eq!(e["statusSummary"], "no");

    // Usage and a server that is not there.
    let (code, _, err) = cli_to(
        &s,
        &["pipeline", "start", "clipipe", "--variable", "novalue"],
    );
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = cli_to(
        &s,
        &[
            "pipeline",
            "start",
            "clipipe",
            "--endpoint-url",
            "http://127.0.0.1:1",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no localbuild serve answers at http://127.0.0.1:1"),
        "{err}"
    );
}
