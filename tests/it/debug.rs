//! Debugging a build where it stops (`run --debug` and `codebuild-breakpoint`, `localbuild
//! attach`, `--shell-on-failure`, `--keep-container` and `localbuild shell`), driven through
//! a real terminal: tmux on its own server per test, keys sent with `send-keys`, the screen
//! read with `capture-pane`. Every wait is for text on the screen, with a deadline.

use crate::harness::{Build, eventually};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// A breakpoint between `export STAGE=two; cd sub` and a later command.
const BREAKPOINT: &str = "version: 0.2
phases:
  build:
    commands:
      - mkdir -p sub
      - export STAGE=two; cd sub
      - codebuild-breakpoint
      - echo \"resumed with $STAGE\"
";

/// One tmux server (its own socket) with one session per terminal; killed on drop, also when
/// the test fails.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new() -> Tmux {
        Tmux {
            socket: format!("localbuild-test-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A new 120×40 terminal `name` running `cmd` (then a shell line saying how it exited,
    /// and the pane stays so its screen can be read).
    fn open(&self, name: &str, cmd: &Command) {
        let mut line = String::from("env");
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                line.push_str(&format!(" {}={}", quote(k), quote(v)));
            }
        }
        line.push(' ');
        line.push_str(&quote(cmd.get_program()));
        for a in cmd.get_args() {
            line.push(' ');
            line.push_str(&quote(a));
        }
        line.push_str("; echo \"[exited $?]\"; exec sleep 3600");
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "new-session", "-d", "-s", name])
            .args(["-x", "120", "-y", "40", &line])
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session {name}");
    }

    /// Type `keys` and Enter in terminal `name`.
    fn type_line(&self, name: &str, keys: &str) {
        self.tmux(&["send-keys", "-t", name, "-l", keys]);
        self.tmux(&["send-keys", "-t", name, "Enter"]);
    }

    /// Everything terminal `name` shows, with its scrollback, lines joined where they wrapped.
    fn screen(&self, name: &str) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-5000", "-t", name])
    }

    /// Wait (at most 60 s) until a line of terminal `name` satisfies `want`; the screen then.
    fn wait(&self, name: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
        eventually(
            &format!("terminal {name} to show {what}"),
            Duration::from_secs(60),
            || {
                let screen = self.screen(name);
                if screen.lines().any(|l| want(l.trim_end())) {
                    return Some(screen);
                }
                // A program that ended shows nothing more.
                assert!(
                    !screen.contains("[exited "),
                    "terminal {name} never showed {what}:\n{screen}"
                );
                None
            },
        )
    }

    /// Wait until terminal `name` shows a line equal to `text`.
    fn wait_line(&self, name: &str, text: &str) -> String {
        self.wait(name, text, |l| l == text)
    }

    /// Wait until terminal `name` shows a line containing `text`.
    fn wait_for(&self, name: &str, text: &str) -> String {
        self.wait(name, text, |l| l.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// Removes whatever is labelled with a build id (a kept container) on drop, also when the
/// test fails.
struct Leftovers(String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for id in crate::util::containers_of(&self.0) {
            let _ = Command::new("docker").args(["rm", "-f", &id]).output();
        }
    }
}

fn quote(s: &std::ffi::OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"))
}

/// `localbuild SUBCOMMAND ARGS` with the build's history, as a command for a terminal.
fn localbuild(b: &Build, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbuild"));
    cmd.args(args)
        .env("LOCALBUILD_HOME", b.home.path())
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", b.home.path().join("config"));
    cmd
}

/// The build id in a `localbuild attach <id>` / `localbuild shell <id>` line of `screen`.
fn build_id(screen: &str, verb: &str) -> String {
    let at = screen
        .find(&format!("localbuild {verb} "))
        .unwrap_or_else(|| panic!("no `localbuild {verb}` on the screen:\n{screen}"));
    screen[at..]
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches('`')
        .to_owned()
}

fn record(b: &Build) -> Value {
    let text = std::fs::read(b.home.path().join("record.json")).expect("--build-json written");
    serde_json::from_slice(&text).unwrap()
}

/// The shell's `pwd` line: the build's `sub` folder of its source.
fn is_sub_folder(line: &str) -> bool {
    line.starts_with("/codebuild/output/src") && line.ends_with("/src/sub")
}

#[test]
fn a_breakpoint_pauses_the_build_until_codebuild_resume_in_an_attached_shell() {
    let b = Build::new(BREAKPOINT);
    let term = Tmux::new();
    let mut run = b.command();
    run.arg("--debug");
    term.open("run", &run);
    // On a terminal, run offers a shell at once; this time, no.
    let screen = term.wait_for("run", "Open a shell in the paused build now? [Y/n]");
    assert!(
        screen.contains("Running command codebuild-breakpoint"),
        "{screen}"
    );
    let id = build_id(&screen, "attach");
    let _left = Leftovers(id.clone());
    term.type_line("run", "n");

    // From another terminal: the shell has the variables and folder the next command sees.
    term.open("attach", &localbuild(&b, &["attach", &id]));
    term.type_line("attach", "echo $STAGE; pwd");
    term.wait_line("attach", "two");
    term.wait("attach", "the sub folder", is_sub_folder);
    // Leaving without codebuild-resume keeps the build paused.
    term.type_line("attach", "exit");
    term.wait_for("attach", "[exited 0]");
    let (code, json, _) = b.cli(&["builds", "show", &id, "--json"]);
    assert_eq!(code, 0);
    let live: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(live["buildStatus"], "IN_PROGRESS");
    assert_eq!(live["currentPhase"], "BUILD");
    assert!(!term.screen("run").contains("resumed with"));

    // Again, and codebuild-resume: the build goes on and succeeds.
    term.open("again", &localbuild(&b, &["attach", &id]));
    term.type_line("again", "codebuild-resume");
    term.wait_for("again", "codebuild-resume: the build goes on");
    let screen = term.wait_for("run", "[exited 0]");
    assert!(screen.contains("resumed with two"), "{screen}");
    assert!(screen.contains("Build resumed"), "{screen}");
    assert!(
        screen.contains(&format!("Build #1 {id} SUCCEEDED")),
        "{screen}"
    );
    let record = record(&b);
    assert_eq!(record["buildStatus"], "SUCCEEDED");
    assert_eq!(record["debugSession"]["sessionEnabled"], true);
    let target = record["debugSession"]["sessionTarget"].as_str().unwrap();
    assert!(target.starts_with("localbuild-it-"), "{target}");
    // The shell still open in the container ends with it.
    term.wait("again", "the shell's end", |l| l.contains("[exited "));
    crate::util::assert_nothing_left(&id);
}

#[test]
fn run_debug_on_a_terminal_opens_the_shell_at_once() {
    let b = Build::new(BREAKPOINT);
    let term = Tmux::new();
    let mut run = b.command();
    run.arg("--debug");
    term.open("run", &run);
    let screen = term.wait_for("run", "Open a shell in the paused build now? [Y/n]");
    let _left = Leftovers(build_id(&screen, "attach"));
    term.type_line("run", "");
    term.type_line("run", "echo $STAGE; pwd");
    term.wait_line("run", "two");
    term.wait("run", "the sub folder", is_sub_folder);
    term.type_line("run", "codebuild-resume");
    term.wait_for("run", "codebuild-resume: the build goes on");
    term.type_line("run", "exit");
    let screen = term.wait_for("run", "[exited 0]");
    assert!(screen.contains("resumed with two"), "{screen}");
    assert_eq!(record(&b)["buildStatus"], "SUCCEEDED");
}

#[test]
fn shell_on_failure_opens_at_the_failed_commands_state_and_can_retry_it() {
    let b = Build::new(
        "version: 0.2
phases:
  build:
    commands:
      - mkdir -p sub
      - export STAGE=two; cd sub
      - test -f ready
      - echo \"ready in $STAGE\"
      - exit 3
      - echo never
",
    );
    let term = Tmux::new();
    let mut run = b.command();
    run.arg("--shell-on-failure");
    term.open("run", &run);
    term.wait_for("run", "Command did not exit successfully test -f ready");
    let screen = term.wait_for("run", "Build paused after the failed command");
    let _left = Leftovers(build_id(&screen, "attach"));
    // The shell opened by itself at the failed command's state.
    term.type_line("run", "echo $STAGE; pwd");
    term.wait_line("run", "two");
    term.wait("run", "the sub folder", is_sub_folder);
    // Fix it and run the command again.
    term.type_line("run", "touch ready; codebuild-resume --retry");
    term.wait_for("run", "codebuild-resume: the build goes on");
    term.type_line("run", "exit");
    term.wait_for("run", "ready in two");
    // The next failure opens the shell again; leaving it goes on with the failure.
    term.wait_for(
        "run",
        "Command did not exit successfully exit 3 exit status 3",
    );
    term.type_line("run", "echo \"in the shell: $CODEBUILD_LAST_EXIT\"");
    term.wait_line("run", "in the shell: 3");
    term.type_line("run", "exit");
    let screen = term.wait_for("run", "[exited 1]");
    assert!(
        screen.contains("Retrying command test -f ready"),
        "{screen}"
    );
    assert!(!screen.contains("\nnever\n"), "{screen}");
    let record = record(&b);
    assert_eq!(record["buildStatus"], "FAILED");
    let build = record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "BUILD")
        .unwrap();
    assert_eq!(
        build["contexts"][0]["message"],
        "Error while executing command: exit 3. Reason: exit status 3"
    );
    crate::util::assert_nothing_left(record["id"].as_str().unwrap());
}

#[test]
fn keep_container_leaves_it_for_localbuild_shell_and_gc() {
    let b = Build::new(
        "version: 0.2
phases:
  build:
    commands:
      - mkdir -p sub
      - export STAGE=two; cd sub
",
    );
    let out = b
        .command()
        .arg("--keep-container")
        .output()
        .expect("localbuild runs");
    let record = record(&b);
    let id = record["id"].as_str().unwrap().to_owned();
    let _left = Leftovers(id.clone());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("`localbuild shell {id}` opens a shell in it")),
        "{stdout}"
    );
    let target = record["debugSession"]["sessionTarget"].as_str().unwrap();
    assert_eq!(record["debugSession"]["sessionEnabled"], false);

    // Still labelled: gc would remove it.
    let (code, dry, _) = b.cli(&["gc", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        dry.lines()
            .any(|l| l == format!("would remove container {target}")),
        "{dry}"
    );

    let term = Tmux::new();
    term.open("shell", &localbuild(&b, &["shell", &id]));
    term.type_line("shell", "echo $STAGE; pwd");
    term.wait_line("shell", "two");
    term.wait("shell", "the sub folder", is_sub_folder);
    term.type_line("shell", "exit");
    term.wait_for("shell", "[exited 0]");

    // (`gc` itself removes every labelled resource, other tests' too: `tests/gc.rs`.)
    drop(_left);
    crate::util::assert_nothing_left(&id);
}

#[test]
fn without_debug_a_breakpoint_does_nothing_and_says_so() {
    let b = Build::new(
        "version: 0.2
phases:
  build:
    commands:
      - codebuild-breakpoint
      - sh -c 'codebuild-breakpoint && echo inside a script too'
",
    );
    let done = b.run();
    assert_eq!(done.code, 0, "{}", done.stdout);
    assert!(
        done.log_lines().iter().any(|l| l
            == "Session debugging is not enabled for this build: codebuild-breakpoint is ignored")
    );
    assert_eq!(
        done.output_of("sh -c 'codebuild-breakpoint && echo inside a script too'"),
        ["inside a script too"]
    );
    assert!(done.record.get("debugSession").is_none());
}

#[test]
fn shell_on_failure_without_a_terminal_says_it_opens_nothing() {
    let b = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - exit 4\n");
    let done = b.run_with(&["--shell-on-failure"]);
    assert_eq!(done.code, 1);
    assert!(
        done.stderr
            .contains("--shell-on-failure opens a shell only on an interactive terminal"),
        "{}",
        done.stderr
    );
    assert_eq!(done.status(), "FAILED");
}

#[test]
fn attach_refuses_a_build_that_is_not_paused() {
    let b = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - true\n");
    assert_eq!(b.run().code, 0);
    let term = Tmux::new();
    term.open("attach", &localbuild(&b, &["attach", "it:1"]));
    let screen = term.wait_for("attach", "[exited 1]");
    assert!(
        screen.contains("has no running container: it is not paused"),
        "{screen}"
    );
}
