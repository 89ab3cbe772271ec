//! A full disk never strands a build: on a real, small tmpfs (the tests run as root), a build
//! whose output fills the disk ends FAILED with a context naming the write error, the API
//! answers its final status (BatchGetBuilds, StopBuild) while the disk is full, and the record
//! reaches the disk once there is room again. The same under `localbuild run`. A pipeline
//! execution whose record the history refuses is reported on serve's log and saved once there
//! is room.

use crate::api::Serve;
use crate::harness::{Build, eventually};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs of a few MiB mounted on a folder; unmounted (and the folder removed) on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            dir,
        );
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    /// Make room: the same files on a bigger disk.
    fn grow(&self, size: &str) {
        mount(&["-o", &format!("remount,size={size}")], &self.dir);
    }
}

fn mount(args: &[&str], dir: &Path) {
    let out = Command::new("mount").args(args).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "mount {args:?} {}: {} (these tests need root)",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

const FILL: &str = "yes | head -c 10000000";
const NO_SPACE: &str = "No space left on device (os error 28)";

/// The one phase that FAILED, and its context (status code, message).
fn failed_phase(b: &Value) -> (String, String, String) {
    let failed: Vec<&Value> = b["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["phaseStatus"] == "FAILED")
        .collect();
    assert_eq!(failed.len(), 1, "{b:#}");
    let p = failed[0];
    (
        p["phaseType"].as_str().unwrap().to_owned(),
        p["contexts"][0]["statusCode"].as_str().unwrap().to_owned(),
        p["contexts"][0]["message"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn a_build_that_fills_the_disk_under_serve_ends_failed_and_is_saved_once_there_is_room() {
    // The whole LOCALBUILD_HOME (history database included) is on the small disk.
    let home = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(home.path(), "4m");
    let s = Serve::start_in(home, &[]);
    s.create_project("full", &[FILL, "echo after"]);
    let id = s.start_build("full")["id"].as_str().unwrap().to_owned();

    let b = s.wait(&id, 60, "the build ends", |b| b["buildComplete"] == true);
    assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
    let (phase, code, message) = failed_phase(&b);
    assert_eq!(phase, "BUILD");
    assert_eq!(code, "CLIENT_ERROR");
    let log = disk.dir.join("builds/full/1/build.log");
    assert_eq!(
        message,
        format!("cannot write the build log {}: {NO_SPACE}", log.display())
    );
    assert_eq!(
        b["phases"].as_array().unwrap().last().unwrap()["phaseType"],
        "COMPLETED"
    );
    // StopBuild answers the final status, not IN_PROGRESS; the server goes on serving.
    let stopped = s.ok(&["codebuild", "stop-build", "--id", &id]);
    assert_eq!(stopped["build"]["buildStatus"], "FAILED", "{stopped:#}");
    assert_eq!(s.build(&id)["buildStatus"], "FAILED");
    s.ok(&["codebuild", "list-projects"]);
    let on_disk = || -> Option<Value> {
        let json = std::fs::read(disk.dir.join("builds/full/1/build.json")).ok()?;
        serde_json::from_slice(&json).ok()
    };
    assert_ne!(
        on_disk().map(|r| r["buildComplete"].clone()),
        Some(Value::Bool(true)),
        "the disk is full: the final record cannot be on it yet"
    );

    disk.grow("64m");
    let saved = eventually(
        "the final record to reach the disk",
        Duration::from_secs(60),
        || on_disk().filter(|r| r["buildComplete"] == true),
    );
    assert_eq!(saved["buildStatus"], "FAILED");
    assert_eq!(failed_phase(&saved).2, message);
    let db = localbuild_db::Db::open(&disk.dir.join("localbuild.db")).unwrap();
    let row = db.get_build(&id).unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.complete), ("FAILED", true));
    assert_eq!(s.build(&id)["buildStatus"], "FAILED");
    drop(s);
}

#[test]
fn a_build_that_fills_the_disk_under_run_ends_failed_and_says_why_once() {
    let b = Build::new(&format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - {FILL}\n      - echo after\n"
    ));
    // The builds folder is the small disk; the history database is beside it.
    let disk = Tmpfs::mount(&b.home.path().join("builds"), "4m");
    let f = b.run();
    assert_eq!(f.code, 1, "{}", f.stderr);
    assert_eq!(f.status(), "FAILED");
    let log = disk.dir.join("it/1/build.log");
    let why = format!("cannot write the build log {}: {NO_SPACE}", log.display());
    assert_eq!(
        f.context("BUILD"),
        ("CLIENT_ERROR".to_owned(), why.clone()),
        "{}",
        f.stderr
    );
    assert_eq!(f.stderr.matches(&why).count(), 1, "{}", f.stderr);
    assert!(!f.stdout.contains("\nafter\n"), "{}", f.stdout);
    // The history (beside the full disk) has the final record.
    let (_, json, _) = b.cli(&["builds", "show", "it:1", "--json"]);
    let kept: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(kept["buildStatus"], "FAILED");
    drop(disk);
}

/// Fill the disk at `dir` (a file of zeros written until the disk refuses more).
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    // The last partial block: byte by byte until nothing fits.
    while f.write_all(&[0]).is_ok() {}
}

#[test]
fn a_pipeline_execution_the_history_cannot_take_is_reported_and_saved_once_there_is_room() {
    let home = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(home.path(), "4m");
    let log = tempfile::NamedTempFile::new().unwrap();
    let s = Serve::start_with_stderr(home, &[], log.reopen().unwrap());
    let object = disk.dir.join("s3/src-bucket/app.zip");
    std::fs::create_dir_all(object.parent().unwrap()).unwrap();
    {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::fs::File::create(&object).unwrap());
        z.start_file("index.html", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(b"<h1>one</h1>\n").unwrap();
        z.finish().unwrap();
    }
    let declaration = serde_json::json!({"pipeline": {
        "name": "site",
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "src-bucket", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "Site"}]}]},
            {"name": "Deploy", "actions": [{
                "name": "Publish",
                "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"BucketName": "web", "Extract": "true"},
                "inputArtifacts": [{"name": "Site"}]}]}]}});
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), declaration.to_string()).unwrap();
    let input = format!("file://{}", file.path().display());
    s.ok(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &input,
    ]);
    let executions = || {
        s.ok(&[
            "codepipeline",
            "list-pipeline-executions",
            "--pipeline-name",
            "site",
        ])["pipelineExecutionSummaries"]
            .as_array()
            .unwrap()
            .clone()
    };
    let first = eventually(
        "the first execution to end",
        Duration::from_secs(60),
        || {
            executions()
                .first()
                .filter(|e| e["status"] != "InProgress")
                .cloned()
        },
    );
    assert_eq!(first["status"], "Succeeded", "{first:#}");

    fill(&disk.dir);
    let id = s.ok(&["codepipeline", "start-pipeline-execution", "--name", "site"])
        ["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let said = format!("pipeline site: execution {id} could not be saved to the history");
    eventually(
        "serve's log to report the refused record",
        Duration::from_secs(60),
        || {
            std::fs::read_to_string(log.path())
                .unwrap()
                .contains(&said)
                .then_some(())
        },
    );
    // Nothing of it reached the history yet; the server goes on answering.
    assert_eq!(executions().len(), 1);

    disk.grow("64m");
    let second = eventually(
        "the final record to reach the history",
        Duration::from_secs(60),
        || {
            executions()
                .into_iter()
                .find(|e| e["pipelineExecutionId"] == id.as_str())
        },
    );
    assert_ne!(second["status"], "InProgress", "{second:#}");
    let execution = s.ok(&[
        "codepipeline",
        "get-pipeline-execution",
        "--pipeline-name",
        "site",
        "--pipeline-execution-id",
        &id,
    ]);
    assert_eq!(
        execution["pipelineExecution"]["status"], second["status"],
        "{execution:#}"
    );
    drop(s);
}
