//! The build test harness: write a buildspec into a temp source dir, run the real
//! `localbuild run` on the busybox test image, and inspect exit code, output and record.

#![allow(dead_code)] // helpers shared by several test modules

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The tiny test image (`scripts/build-test-images.sh`).
pub const IMAGE: &str = "localbuild-test/busybox:1";

/// Docker must be reachable: these tests never pass or skip without it.
pub fn require_docker() {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let ok = OK.get_or_init(|| {
        let out = Command::new("docker")
            .args(["image", "inspect", "-f", "{{.Id}}", IMAGE])
            .output()
            .map_err(|e| format!("cannot run the docker CLI: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "Docker or the test image {IMAGE} is not available: {}\n\
                 run `scripts/ensure-docker.sh && scripts/build-test-images.sh` first",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    });
    if let Err(e) = ok {
        panic!("{e}");
    }
}

/// A build to run: a source directory holding `buildspec.yml`, and the CLI arguments.
pub struct Build {
    pub src: TempDir,
    pub home: TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    image: String,
}

/// A finished `localbuild run`.
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub record: Value,
    pub home: PathBuf,
}

impl Build {
    pub fn new(buildspec: &str) -> Build {
        require_docker();
        let src = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("buildspec.yml"), buildspec).unwrap();
        Build {
            src,
            home: tempfile::tempdir().unwrap(),
            args: vec![],
            env: vec![],
            image: IMAGE.to_owned(),
        }
    }

    /// Add a file to the source directory.
    pub fn file(self, path: &str, contents: &str) -> Build {
        let p = self.src.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
        self
    }

    pub fn arg(mut self, arg: &str) -> Build {
        self.args.push(arg.to_owned());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Build {
        self.args.extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    pub fn image(mut self, image: &str) -> Build {
        self.image = image.to_owned();
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Build {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn src(&self) -> &Path {
        self.src.path()
    }

    /// Run git in the source directory (with a fixed identity); its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
            .arg(self.src.path())
            .args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .output()
            .expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Make the source directory a git repository (branch `main`) if it is not one yet, and
    /// commit every file that is not ignored.
    pub fn commit(self, message: &str) -> Build {
        if !self.src.path().join(".git").exists() {
            self.git(&["init", "-q", "-b", "main"]);
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self
    }

    /// Run a git command in the source directory (e.g. `["tag", "v1"]`), as a builder step.
    pub fn with_git(self, args: &[&str]) -> Build {
        self.git(args);
        self
    }

    /// The command that runs this build (for tests that drive the process themselves).
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbuild"));
        cmd.arg("run")
            .args(["-i", &self.image, "-s"])
            .arg(self.src.path())
            .args(["--project", "it"])
            .arg("--build-json")
            .arg(self.home.path().join("record.json"))
            .args(&self.args)
            .env("LOCALBUILD_HOME", self.home.path())
            .env("NO_COLOR", "1")
            // No user config file from the machine running the tests.
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env_remove("LOCALBUILD_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `localbuild ARGS` (any subcommand) with this build's history: exit code, stdout, stderr.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
            .args(args)
            .env("LOCALBUILD_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("localbuild runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Start the build and read its output as it comes (for tests that act while it runs).
    pub fn spawn(&self) -> Running<'_> {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("localbuild starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        // Lines arrive on a channel, so that a wait for one is bounded.
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            loop {
                let mut line = String::new();
                match stdout.read_line(&mut line) {
                    Ok(n) if n > 0 && tx.send(line).is_ok() => {}
                    _ => return,
                }
            }
        });
        Running {
            build: self,
            child,
            lines,
            seen: String::new(),
        }
    }

    pub fn run(&self) -> Finished {
        let out = self.command().output().expect("localbuild runs");
        self.finished(out)
    }

    /// Run with `extra` arguments after the builder's (several builds of one source).
    pub fn run_with(&self, extra: &[&str]) -> Finished {
        let out = self
            .command()
            .args(extra)
            .output()
            .expect("localbuild runs");
        self.finished(out)
    }

    pub fn finished(&self, out: Output) -> Finished {
        let record_path = self.home.path().join("record.json");
        let record = std::fs::read(&record_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        let finished = Finished {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            record,
            home: self.home.path().to_owned(),
        };
        finished.assert_nothing_left_behind();
        finished
    }
}

/// A build started with [`Build::spawn`].
pub struct Running<'a> {
    build: &'a Build,
    child: Child,
    /// The output's lines (with their newline), as they come.
    lines: std::sync::mpsc::Receiver<String>,
    seen: String,
}

impl Running<'_> {
    /// Read output lines until one satisfies `done` (synchronise on output, never on time),
    /// for at most 5 minutes: that line.
    pub fn wait_for_line(&mut self, done: impl Fn(&str) -> bool) -> String {
        use std::sync::mpsc::TryRecvError;
        let seen = &mut self.seen;
        let lines = &self.lines;
        eventually("an output line", Duration::from_secs(300), || {
            loop {
                match lines.try_recv() {
                    Ok(line) => {
                        seen.push_str(&line);
                        if done(&line) {
                            return Ok(line);
                        }
                    }
                    Err(TryRecvError::Empty) => return Err(format!("the output so far:\n{seen}")),
                    Err(TryRecvError::Disconnected) => panic!("the build ended early:\n{seen}"),
                }
            }
        })
    }

    /// Reap a process that was killed (`kill -9`): no record is expected.
    pub fn finish_killed(mut self) -> Option<i32> {
        self.child.wait().ok().and_then(|s| s.code())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Read the rest of the output, wait for the process, and inspect it like [`Build::run`].
    pub fn finish(mut self) -> Finished {
        self.seen.extend(self.lines.iter());
        let status = self.child.wait().expect("wait for localbuild");
        self.build.finished(Output {
            status,
            stdout: self.seen.into_bytes(),
            stderr: vec![],
        })
    }
}

impl Finished {
    /// `(phaseType, phaseStatus)` of every phase in the record.
    pub fn phases(&self) -> Vec<(String, String)> {
        self.record["phases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| {
                        (
                            p["phaseType"].as_str().unwrap_or("").to_owned(),
                            p["phaseStatus"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The phase list as `TYPE:STATUS` strings (COMPLETED has no status).
    pub fn phase_list(&self) -> Vec<String> {
        self.phases()
            .into_iter()
            .map(|(t, s)| if s.is_empty() { t } else { format!("{t}:{s}") })
            .collect()
    }

    pub fn phase(&self, name: &str) -> &Value {
        self.record["phases"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["phaseType"] == name))
            .unwrap_or(&Value::Null)
    }

    /// The context of a phase as `(statusCode, message)`.
    pub fn context(&self, name: &str) -> (String, String) {
        let c = &self.phase(name)["contexts"][0];
        (
            c["statusCode"].as_str().unwrap_or("").to_owned(),
            c["message"].as_str().unwrap_or("").to_owned(),
        )
    }

    pub fn status(&self) -> &str {
        self.record["buildStatus"].as_str().unwrap_or("")
    }

    /// The build log lines without the `[Container] <date> <time> ` prefix.
    pub fn log_lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(|l| match l.strip_prefix("[Container] ") {
                Some(rest) => rest.splitn(3, ' ').nth(2).unwrap_or("").to_owned(),
                None => l.to_owned(),
            })
            .collect()
    }

    /// The output lines printed between `Running command <cmd>` and the next agent line.
    pub fn output_of(&self, cmd: &str) -> Vec<String> {
        let lines: Vec<&str> = self.stdout.lines().collect();
        let start = lines
            .iter()
            .position(|l| {
                l.starts_with("[Container] ") && l.ends_with(&format!(" Running command {cmd}"))
            })
            .unwrap_or_else(|| panic!("no `Running command {cmd}` in:\n{}", self.stdout));
        lines[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with("[Container] "))
            .filter(|l| !l.is_empty())
            .map(|l| (*l).to_owned())
            .collect()
    }

    /// No container, volume or network of this build remains.
    pub fn assert_nothing_left_behind(&self) {
        let Some(id) = self.record["id"].as_str() else {
            return;
        };
        crate::util::assert_nothing_left(id);
    }
}

/// How long [`eventually`] waits between two checks.
const POLL: Duration = Duration::from_millis(100);

/// What one check of [`eventually`] found: done (with a value), or not yet, with how things
/// stand when the check can say (for the failure message).
pub trait Check<T> {
    fn done(self) -> Result<T, Option<String>>;
}

impl Check<()> for bool {
    fn done(self) -> Result<(), Option<String>> {
        if self { Ok(()) } else { Err(None) }
    }
}

impl<T> Check<T> for Option<T> {
    fn done(self) -> Result<T, Option<String>> {
        self.ok_or(None)
    }
}

impl<T, E: std::fmt::Display> Check<T> for Result<T, E> {
    fn done(self) -> Result<T, Option<String>> {
        self.map_err(|e| Some(e.to_string()))
    }
}

/// Check until `check` is done, for at most `limit`: its value. Past the limit the test fails,
/// naming `what` and what the last check reported. The one way the integration tests wait
/// for a condition they cannot be told about (never a bare sleep).
pub fn eventually<T, C: Check<T>>(what: &str, limit: Duration, check: impl FnMut() -> C) -> T {
    match within(limit, check) {
        Ok(v) => v,
        Err(Some(state)) => panic!("timed out after {limit:?} waiting for {what}: {state}"),
        Err(None) => panic!("timed out after {limit:?} waiting for {what}"),
    }
}

/// [`eventually`] for a caller that says itself what went wrong: `Err` with what the last
/// check reported when `limit` passed first.
pub fn within<T, C: Check<T>>(
    limit: Duration,
    mut check: impl FnMut() -> C,
) -> Result<T, Option<String>> {
    let deadline = Instant::now() + limit;
    loop {
        let last = match check().done() {
            Ok(v) => return Ok(v),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        std::thread::sleep(POLL);
    }
}
