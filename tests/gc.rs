//! `localbuild gc` removes whatever a killed build left behind. Its own test binary: gc removes
//! every labelled resource, so it must not run beside other builds (test binaries run one after
//! another).

#[path = "it/harness.rs"]
mod harness;
#[path = "it/util.rs"]
#[allow(dead_code)]
mod util;

use harness::Build;
use std::process::Command;
use std::sync::Mutex;

/// The tests of this binary each run `gc`, which removes every labelled resource: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn gc_removes_labelled_containers_volumes_and_networks() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let docker = |args: &[&str]| {
        let out = Command::new("docker")
            .args(args)
            .output()
            .expect("docker CLI");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let label = "localbuild.build-id=gc-test:0";
    let name = format!("localbuild-gc-test-{}", std::process::id());
    docker(&[
        "create",
        "--name",
        &name,
        "--label",
        label,
        "localbuild-test/busybox:1",
        "true",
    ]);
    docker(&["volume", "create", "--label", label, &name]);
    docker(&["network", "create", "--label", label, &name]);

    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .arg("gc")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("removed container {name}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("removed volume {name}")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("removed network {name}")),
        "{stdout}"
    );
    for kind in [["ps", "-aq"], ["volume", "ls"], ["network", "ls"]] {
        let left = docker(&[
            kind[0],
            kind[1],
            "-q",
            "--filter",
            &format!("label={label}"),
        ]);
        assert!(left.is_empty(), "{kind:?} left: {left}");
    }
    // A second run finds nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .arg("gc")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to remove"));
}

#[test]
fn a_killed_run_is_finalised_by_gc_and_the_history_stays_whole() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let b = Build::new(
        "version: 0.2\nphases:\n  install:\n    commands:\n      - echo installed\n  build:\n    commands:\n      - if [ \"$CODEBUILD_BUILD_NUMBER\" = 2 ]; then sleep 300; fi\n",
    );
    // One finished build first: it must survive intact.
    assert_eq!(b.run().code, 0);
    let mut running = b.spawn();
    running.wait_for_line(|l| l.contains("Running command if"));
    let pid = running.pid();
    assert!(
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    // Reap the killed process (its record says IN_PROGRESS, BUILD).
    let _ = running.finish_killed();
    let (_, json, _) = b.cli(&["builds", "show", "it:2", "--json"]);
    let before: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(before["buildStatus"], "IN_PROGRESS");
    assert_eq!(before["currentPhase"], "BUILD");
    let id = before["id"].as_str().unwrap().to_owned();

    let (code, out, err) = b.cli(&["gc"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("finalised build {id}")), "{out}");
    assert!(
        util::containers_of(&id).is_empty(),
        "the killed build's container is gone"
    );

    let (_, json, _) = b.cli(&["builds", "show", "it:2", "--json"]);
    let after: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(after["buildStatus"], "FAILED");
    assert_eq!(after["buildComplete"], true);
    let build_phase = after["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "BUILD")
        .unwrap();
    assert_eq!(build_phase["phaseStatus"], "FAILED");
    assert!(
        build_phase["contexts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("localbuild stopped"),
        "{build_phase}"
    );
    // The finished build and its log are intact; the database is sound.
    let (_, json, _) = b.cli(&["builds", "show", "it:1", "--json"]);
    let first: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(first["buildStatus"], "SUCCEEDED");
    let (_, log, _) = b.cli(&["builds", "logs", "it:2"]);
    assert!(log.contains("installed\n"), "{log}");
    let db = localbuild_db::Db::open(&b.home.path().join("localbuild.db")).unwrap();
    assert!(db.integrity_check().unwrap());
}

#[test]
fn a_killed_batch_is_finalised_by_gc_with_its_unfinished_tasks() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let b = Build::new(
        "version: 0.2\nbatch:\n  build-graph:\n    - identifier: slow\n    - identifier: after\n      depend-on:\n        - slow\nphases:\n  build:\n    commands:\n      - echo started-$CODEBUILD_BATCH_BUILD_IDENTIFIER\n      - sleep 300\n",
    )
    .arg("--batch");
    let mut running = b.spawn();
    running.wait_for_line(|l| l.contains("started-slow"));
    assert!(
        Command::new("kill")
            .args(["-9", &running.pid().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let _ = running.finish_killed();
    let (_, list, _) = b.cli(&["builds", "batches"]);
    let id = list
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{list}"))
        .to_owned();
    assert!(list.contains("IN_PROGRESS"), "{list}");

    let (code, _, err) = b.cli(&["gc"]);
    assert_eq!(code, 0, "{err}");
    let (_, json, _) = b.cli(&["builds", "show", &id, "--json"]);
    let batch: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(batch["buildBatchStatus"], "FAILED", "{batch:#}");
    assert_eq!(batch["complete"], true);
    let groups = batch["buildGroups"].as_array().unwrap();
    assert_eq!(groups[0]["currentBuildSummary"]["buildStatus"], "FAILED");
    assert_eq!(groups[1]["currentBuildSummary"]["buildStatus"], "FAILED");
    let phases = batch["phases"].as_array().unwrap();
    assert_eq!(phases.last().unwrap()["phaseType"], "FAILED");
    let in_progress = &phases[phases.len() - 2];
    assert_eq!(in_progress["phaseType"], "IN_PROGRESS");
    assert!(
        in_progress["contexts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("localbuild stopped"),
        "{in_progress}"
    );
    // The task's build was finalised too and its container removed.
    let task = groups[0]["currentBuildSummary"]["arn"]
        .as_str()
        .unwrap()
        .split_once(":build/")
        .unwrap()
        .1
        .to_owned();
    let (_, json, _) = b.cli(&["builds", "show", &task, "--json"]);
    let build: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(build["buildStatus"], "FAILED");
    assert!(
        util::containers_of(&task).is_empty(),
        "the killed task's container is gone"
    );
}

#[test]
fn a_container_kept_with_keep_container_is_listed_by_dry_run_and_removed_by_gc() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let b = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - echo kept\n");
    let out = b.command().arg("--keep-container").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.home.path().join("record.json")).unwrap()).unwrap();
    let target = record["debugSession"]["sessionTarget"]
        .as_str()
        .unwrap()
        .to_owned();
    let running = |name: &str| {
        let out = Command::new("docker")
            .args(["ps", "-q", "--filter", &format!("name=^{name}$")])
            .output()
            .unwrap();
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    };
    assert!(running(&target), "the kept container runs");

    let (code, dry, _) = b.cli(&["gc", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(
        dry.lines()
            .any(|l| l == format!("would remove container {target}")),
        "{dry}"
    );
    assert!(running(&target), "--dry-run removes nothing");

    let (code, removed, _) = b.cli(&["gc"]);
    assert_eq!(code, 0);
    assert!(
        removed
            .lines()
            .any(|l| l == format!("removed container {target}")),
        "{removed}"
    );
    let finished = b.finished(std::process::Output {
        status: out.status,
        stdout: out.stdout,
        stderr: vec![],
    });
    finished.assert_nothing_left_behind();
}

/// A `localbuild serve` on the build's history (a free port), stopped on drop.
struct Serve {
    child: std::process::Child,
    addr: String,
}

impl Serve {
    fn start(home: &std::path::Path) -> Serve {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_localbuild"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("LOCALBUILD_HOME", home)
            .env_remove("LOCALBUILD_LOG")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("localbuild serve starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.strip_prefix("export AWS_ENDPOINT_URL=http://")
                    .map(str::to_owned)
            })
            .expect("serve prints its address");
        // Read the rest, so the server can write until it exits.
        std::thread::spawn(move || lines.for_each(drop));
        Serve { child, addr }
    }

    /// `aws ARGS --output json`, parsed.
    fn aws(&self, args: &[&str]) -> serde_json::Value {
        let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/aws");
        let aws = if venv.exists() { venv } else { "aws".into() };
        let out = Command::new(aws)
            .args(args)
            .args(["--output", "json"])
            .env("AWS_ENDPOINT_URL", format!("http://{}", self.addr))
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("aws runs");
        assert!(
            out.status.success(),
            "aws {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    fn build(&self, id: &str) -> serde_json::Value {
        self.aws(&["codebuild", "batch-get-builds", "--ids", id])["builds"][0].clone()
    }

    /// Poll the build (bounded) until `cond` holds.
    fn wait(
        &self,
        id: &str,
        what: &str,
        cond: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let b = self.build(id);
            if cond(&b) {
                return b;
            }
            assert!(std::time::Instant::now() < deadline, "{what}: {b:#}");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Let a build waiting in `until [ -e /tmp/go ]` go on.
fn release(container: &str) {
    let out = Command::new("docker")
        .args(["exec", container, "touch", "/tmp/go"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn gc_leaves_the_running_builds_of_a_live_serve_and_run_alone() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let wait = "until [ -e /tmp/go ]; do sleep 0.1; done";
    let b = Build::new(&format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - {wait}\n      - echo released\n"
    ));
    // A build of `localbuild run`, waiting.
    let mut run = b.spawn();
    run.wait_for_line(|l| l.contains("Running command until"));
    let (_, json, _) = b.cli(&["builds", "show", "it:1", "--json"]);
    let run_id = serde_json::from_str::<serde_json::Value>(&json).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A build of `localbuild serve` (same history), waiting too.
    let serve = Serve::start(b.home.path());
    let buildspec = format!("version: 0.2\nphases:\n  build:\n    commands:\n      - {wait}\n");
    serve.aws(&[
        "codebuild",
        "create-project",
        "--name",
        "served",
        "--source",
        &serde_json::json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string(),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        &serde_json::json!({"type": "LINUX_CONTAINER", "image": harness::IMAGE, "computeType": "BUILD_GENERAL1_SMALL"}).to_string(),
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let served =
        serve.aws(&["codebuild", "start-build", "--project-name", "served"])["build"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    serve.wait(&served, "the served build runs its command", |b| {
        b["currentPhase"] == "BUILD"
    });

    let (code, out, err) = b.cli(&["gc"]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("finalised build"), "{out}");
    for id in [&run_id, &served] {
        let containers = util::containers_of(id);
        assert_eq!(
            containers.len(),
            1,
            "build {id} keeps its container:\n{out}"
        );
        assert!(
            out.contains(&format!("build {id} is still running")),
            "{out}"
        );
    }
    let (_, dry, _) = b.cli(&["gc", "--dry-run"]);
    assert!(!dry.contains("would remove container"), "{dry}");

    // Both builds go on to succeed.
    release(&util::containers_of(&served)[0]);
    release(&util::containers_of(&run_id)[0]);
    let done = serve.wait(&served, "the served build ends", |b| {
        b["buildComplete"] == true
    });
    assert_eq!(done["buildStatus"], "SUCCEEDED", "{done:#}");
    let finished = run.finish();
    assert_eq!(finished.code, 0);
    assert_eq!(finished.status(), "SUCCEEDED");
    assert!(
        finished.stdout.contains("\nreleased\n"),
        "{}",
        finished.stdout
    );
}
