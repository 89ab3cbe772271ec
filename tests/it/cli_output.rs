//! `localbuild run --output json` (JSON Lines on stdout) and what the terminal shows around a
//! build: no progress escape codes when stderr is piped, nothing with `--quiet`.

use crate::harness::Build;
use serde_json::Value;

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
        .collect()
}

#[test]
fn cli_json_lines_end_with_the_record() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hello json\n      - echo to-stderr >&2\n      - exit 3\n",
    )
    .args(&["--output", "json"]);
    let f = b.run();
    assert_eq!(f.code, 1, "stderr: {}", f.stderr);
    let lines = json_lines(&f.stdout);
    assert!(!f.stdout.contains("PHASE "), "no text summary in JSON mode");

    assert_eq!(lines[0]["type"], "started");
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "build");
    assert_eq!(last["build"]["buildStatus"], "FAILED");
    assert_eq!(last["build"]["id"], f.record["id"]);
    assert_eq!(
        last["build"], f.record,
        "the last line is the same record as --build-json"
    );
    assert!(last["dir"].is_string());

    let outputs: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "output")
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(outputs.contains(&"hello json"), "{outputs:?}");
    assert!(outputs.contains(&"to-stderr"), "{outputs:?}");

    let agent = lines
        .iter()
        .find(|l| l["type"] == "agent" && l["text"] == "Running command echo hello json")
        .expect("agent line for the command");
    assert!(agent["at"].as_f64().unwrap() > 1.6e9);

    let ended = lines
        .iter()
        .find(|l| l["type"] == "phaseEnded" && l["phase"] == "BUILD")
        .expect("BUILD ended");
    assert_eq!(ended["status"], "FAILED");
    assert_eq!(
        ended["contexts"][0]["statusCode"],
        "COMMAND_EXECUTION_ERROR"
    );
    assert!(ended["at"].as_f64().is_some());
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "phaseStarted" && l["phase"] == "POST_BUILD")
    );
    // Every event line comes before the record; nothing after it.
    assert_eq!(lines.iter().filter(|l| l["type"] == "build").count(), 1);
}

const OK: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built\n";

/// With stdout and stderr on one stream (a terminal, `2>&1`), localbuild's own lines (here the
/// "skipping files ignored by git" note, said in DOWNLOAD_SOURCE) never land inside the
/// `[Container]` log: they come before its first line or after its last.
#[test]
fn cli_progress_lines_never_interleave_with_the_container_log() {
    let b = Build::new(OK)
        .file(".gitignore", "junk\n")
        .file("junk", "ignored\n")
        .commit("init");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("both.txt");
    let file = std::fs::File::create(&path).unwrap();
    let out = b
        .command()
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .output()
        .expect("localbuild runs");
    let f = b.finished(out);
    let both = std::fs::read_to_string(&path).unwrap();
    assert_eq!(f.code, 0, "{both}");
    let lines: Vec<&str> = both.lines().collect();
    let note = lines
        .iter()
        .position(|l| l.starts_with("skipping files ignored by git"))
        .unwrap_or_else(|| panic!("no note: {both}"));
    let first = lines
        .iter()
        .position(|l| l.starts_with("[Container]"))
        .unwrap();
    let last = lines
        .iter()
        .rposition(|l| l.starts_with("[Container]"))
        .unwrap();
    assert!(
        note < first || note > last,
        "the note is line {note}, inside the log (lines {first}..={last}):\n{both}"
    );
}

#[test]
fn cli_piped_stderr_has_plain_progress_lines() {
    // A git work tree: the "skipping files ignored by git" note is a progress line.
    let b = Build::new(OK).file(".gitignore", "junk\n").commit("init");
    let f = b.run();
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(
        f.stderr.contains("skipping files ignored by git"),
        "{}",
        f.stderr
    );
    assert!(
        !f.stderr.contains('\x1b'),
        "escape codes on a pipe: {:?}",
        f.stderr
    );
    assert!(!f.stderr.contains('\r'), "{:?}", f.stderr);

    // An image that has to be pulled (and cannot be): its steps are plain lines too.
    let f = Build::new(OK).image("127.0.0.1:1/localbuild-nope:1").run();
    assert_eq!(f.code, 3, "{}", f.stderr);
    assert!(
        f.stderr
            .contains("Pulling image 127.0.0.1:1/localbuild-nope:1\n"),
        "{}",
        f.stderr
    );
    assert!(!f.stderr.contains('\x1b'), "{:?}", f.stderr);
}

#[test]
fn cli_quiet_prints_no_progress_lines() {
    let b = Build::new(OK)
        .file(".gitignore", "junk\n")
        .commit("init")
        .arg("--quiet");
    let f = b.run();
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(
        f.stdout.contains("\nbuilt\n"),
        "the log still prints: {}",
        f.stdout
    );
    assert!(!f.stderr.contains("skipping files"), "{}", f.stderr);

    let f = Build::new(OK)
        .image("127.0.0.1:1/localbuild-nope:1")
        .arg("-q")
        .run();
    assert_eq!(f.code, 3, "{}", f.stderr);
    assert!(!f.stderr.contains("Pulling image"), "{}", f.stderr);
    // The hint is not progress: it still shows.
    assert!(f.stderr.contains("hint: "), "{}", f.stderr);
}

#[test]
fn cli_docker_unreachable_is_one_message() {
    let f = Build::new(OK)
        .env("DOCKER_HOST", "unix:///nonexistent/localbuild-test.sock")
        .run();
    assert_eq!(f.code, 3, "{}", f.stderr);
    assert!(
        f.stderr.starts_with(
            "error: cannot connect to the Docker daemon at unix:///nonexistent/localbuild-test.sock"
        ),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("DOCKER_HOST is set"), "{}", f.stderr);
    assert_eq!(f.stderr.matches("error:").count(), 1, "{}", f.stderr);
}
