//! A closed stdout (`localbuild … | head`) ends every command quietly: exit 0, no panic, no
//! message; `run` and `run --batch` stop their builds and leave nothing behind. And errors
//! still go through the one error path: `error: …` on stderr with the command's exit code.

use crate::harness::Build;
use crate::util::{assert_nothing_left, fixture, localbuild};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a command may take to notice its reader left (a build stops within seconds).
const BOUND: Duration = Duration::from_secs(120);

/// The exit code and stderr of `child`, whose stdout's read end is already closed; killed
/// and failed when it does not end within [`BOUND`].
fn ended(mut child: Child) -> (i32, String) {
    let pid = child.id();
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        let status = child.wait().expect("wait for localbuild");
        let _ = tx.send((status.code().unwrap_or(-1), text));
    });
    rx.recv_timeout(BOUND).unwrap_or_else(|_| {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("localbuild did not end within {BOUND:?} after its stdout was closed")
    })
}

/// Run `cmd` with a stdout whose reader closes before reading anything.
fn with_closed_stdout(mut cmd: Command) -> (i32, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("localbuild starts");
    drop(child.stdout.take());
    ended(child)
}

fn assert_quiet(what: &str, (code, stderr): (i32, String)) {
    assert_eq!(
        code, 0,
        "{what}: exit status with a closed stdout\n{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.to_lowercase().contains("broken pipe"),
        "{what}: stderr\n{stderr}"
    );
}

/// `localbuild ARGS` with `b`'s history.
fn cli(b: &Build, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbuild"));
    cmd.args(args)
        .env("LOCALBUILD_HOME", b.home.path())
        .env("XDG_CONFIG_HOME", b.home.path().join("config"))
        .env("NO_COLOR", "1")
        .env_remove("LOCALBUILD_LOG");
    cmd
}

#[test]
fn a_reader_that_leaves_stops_the_build_and_run_ends_quietly() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 300\n",
    );
    let mut child = b
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("localbuild starts");
    // As `| head -1`: one line read, then the reader is gone.
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut first)
        .expect("read the first line");
    assert!(first.starts_with("[Container] "), "{first}");
    let (code, stderr) = ended(child);
    assert_quiet("run", (code, stderr.clone()));

    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(b.home.path().join("record.json")).expect("--build-json written"),
    )
    .unwrap();
    assert_eq!(record["buildStatus"], "STOPPED", "{stderr}");
    assert_nothing_left(record["id"].as_str().unwrap());
}

#[test]
fn a_build_that_ended_keeps_its_status_when_only_the_summary_goes_unread() {
    let b = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - exit 1\n");
    let mut child = b
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("localbuild starts");
    // The whole live log (its last line is UPLOAD_ARTIFACTS' context), then the reader leaves.
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let mut seen = String::new();
    let mut uploaded = false;
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the log ended early:\n{seen}"))
            .unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if uploaded && line.contains("Phase context status code:") {
            break;
        }
        uploaded |= line.contains("Phase complete: UPLOAD_ARTIFACTS");
    }
    drop(lines);
    let (code, stderr) = ended(child);
    assert_eq!(code, 1, "the FAILED build's status\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.home.path().join("record.json")).unwrap()).unwrap();
    assert_eq!(record["buildStatus"], "FAILED");
    assert_nothing_left(record["id"].as_str().unwrap());
}

#[test]
fn json_output_to_a_closed_stdout_stops_the_build_too() {
    let b = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 300\n")
        .args(&["--output", "json"]);
    let (code, stderr) = with_closed_stdout(b.command());
    assert_quiet("run --output json", (code, stderr));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.home.path().join("record.json")).unwrap()).unwrap();
    assert_eq!(record["buildStatus"], "STOPPED");
    assert_nothing_left(record["id"].as_str().unwrap());
}

#[test]
fn a_batch_whose_reader_leaves_is_stopped_with_every_task() {
    let b = Build::new(
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: one\n    - identifier: two\nphases:\n  build:\n    commands:\n      - sleep 300\n",
    )
    .args(&["--batch", "--parallel", "2"]);
    let (code, stderr) = with_closed_stdout(b.command());
    assert_quiet("run --batch", (code, stderr.clone()));
    let batch: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.home.path().join("record.json")).unwrap()).unwrap();
    assert_eq!(batch["buildBatchStatus"], "STOPPED", "{stderr}");
    let mut tasks = 0;
    for e in std::fs::read_dir(b.home.path().join("builds/it")).unwrap() {
        let path = e.unwrap().path().join("build.json");
        let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_ne!(rec["buildStatus"], "SUCCEEDED", "{rec}");
        assert_nothing_left(rec["id"].as_str().unwrap());
        tasks += 1;
    }
    assert!(tasks <= 2, "{tasks} task builds");
}

#[test]
fn history_views_end_quietly_when_their_reader_leaves() {
    let b = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - echo hello\n");
    let f = b.run();
    assert_eq!(f.code, 0, "{}", f.stderr);
    let id = f.record["id"].as_str().unwrap().to_owned();
    for args in [
        vec!["builds", "list"],
        vec!["builds", "batches"],
        vec!["builds", "show", &id],
        vec!["builds", "show", &id, "--json"],
        vec!["builds", "logs", &id],
        vec!["builds", "logs", "-f", &id],
        vec!["pipeline", "list"],
        vec!["pipeline", "list", "--json"],
        vec!["cache", "ls"],
    ] {
        assert_quiet(&args.join(" "), with_closed_stdout(cli(&b, &args)));
    }
}

#[test]
fn commands_without_docker_end_quietly_when_their_reader_leaves() {
    let root = crate::util::root();
    let bare = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbuild"));
        cmd.args(args)
            .current_dir(&root)
            .env("XDG_CONFIG_HOME", "/nonexistent/localbuild-tests")
            .env_remove("LOCALBUILD_LOG");
        cmd
    };
    let spec = fixture("full.yml");
    assert!(root.join(&spec).is_file(), "{spec}");
    for args in [
        vec!["plan", "-b", &spec],
        vec!["plan", "-b", &spec, "--json"],
        vec!["list", "-b", &spec],
        vec!["validate", &spec],
        vec!["config", "-s", "tests/fixtures"],
        vec!["completions", "bash"],
        vec!["man"],
        vec!["--help"],
    ] {
        assert_quiet(&args.join(" "), with_closed_stdout(bare(&args)));
    }
}

/// Errors keep their wording and exit codes (decision U16) now that one place prints them.
#[test]
fn errors_still_print_error_with_their_exit_code() {
    let home = tempfile::tempdir().unwrap();
    let cases: [(&[&str], i32, &str); 7] = [
        (
            &["builds", "show", "it:9"],
            1,
            "error: no build it:9 (give a build id or PROJECT:NUMBER)\n",
        ),
        (
            &["man", "nope"],
            2,
            "error: no subcommand 'nope' (see `localbuild --help`)\n",
        ),
        (
            &["cache", "rm", "../x"],
            2,
            "error: '../x' is not a valid project name",
        ),
        (
            &["run", "-s", "/nonexistent/src"],
            2,
            "error: -s: source directory '/nonexistent/src' does not exist or is not a directory\n",
        ),
        (
            &["pipeline", "start", "p", "--endpoint-url", "ftp://x"],
            2,
            "error: --endpoint-url: expected http://HOST:PORT",
        ),
        (
            &[
                "pipeline",
                "start",
                "p",
                "--endpoint-url",
                "http://127.0.0.1:1",
            ],
            1,
            "error: no localbuild serve answers at http://127.0.0.1:1",
        ),
        (
            &["list", "-b", "nope.yml"],
            1,
            "nope.yml: error: buildspec not found (YAML file does not exist)\n",
        ),
    ];
    for (args, code, start) in cases {
        let out = localbuild()
            .args(args)
            .env("LOCALBUILD_HOME", home.path())
            .env_remove("AWS_ENDPOINT_URL")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.starts_with(start), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
