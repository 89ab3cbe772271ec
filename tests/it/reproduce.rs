//! `localbuild reproduce`: records shaped like real `aws codebuild batch-get-builds` answers
//! (`tests/fixtures/reproduce/`, commits filled in per test), run through the real binary on
//! the busybox test image: the commit the cloud built under `--git-root` or from the user's
//! clone, S3 zip and secondary sources, secrets, the side-by-side verdict, bad records, and
//! `--project` against a running `serve`.

use crate::harness::{IMAGE, require_docker};
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const FAILING_ID: &str = "web:3f9a8c1e-5b7d-4e2a-9c61-0d4b7e8a1f23";
const FAILING_ARN: &str =
    "arn:aws:codebuild:eu-west-1:123456789012:build/web:3f9a8c1e-5b7d-4e2a-9c61-0d4b7e8a1f23";
const PASSING_ID: &str = "web:8c2e4a17-9d3b-4f6e-b105-7a9e2c4d6b80";

/// The buildspec of the web repository: prints its variables, then runs its test.
const BUILDSPEC: &str = r#"version: 0.2
phases:
  build:
    commands:
      - echo "stage=$STAGE token=$TOKEN db=$DB_PASSWORD"
      - echo "at $CODEBUILD_RESOLVED_SOURCE_VERSION"
      - sh test.sh
"#;

const SECRETS: &str = "parameter-store:\n  /web/ci/token: tok-123456\nsecrets-manager:\n  web/ci/db: '{\"password\": \"pw-98765\"}'\n";

/// Run git in `dir` with a fixed identity; its trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
        .arg(dir)
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

fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

/// A history (`LOCALBUILD_HOME`) with the web repository under its git root
/// (`git/acme/web`): a commit whose test fails, then `main` moved on to one whose test passes.
struct Cloud {
    home: tempfile::TempDir,
    failing: String,
    passing: String,
}

impl Cloud {
    fn new() -> Cloud {
        require_docker();
        let home = tempfile::tempdir().unwrap();
        let repo = home.path().join("git/acme/web");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let failing = commit(
            &repo,
            &[
                ("buildspec.yml", BUILDSPEC),
                ("test.sh", "echo 'FAIL: login page'; exit 1\n"),
            ],
            "login page",
        );
        let passing = commit(
            &repo,
            &[("test.sh", "echo 'ok: login page'\n")],
            "fix login",
        );
        Cloud {
            home,
            failing,
            passing,
        }
    }

    fn repo(&self) -> PathBuf {
        self.home.path().join("git/acme/web")
    }

    /// A fixture with its commit placeholders filled in, written into the home; its path.
    fn record(&self, name: &str, extra: &[(&str, &str)]) -> PathBuf {
        let mut text = std::fs::read_to_string(
            crate::util::root().join(format!("tests/fixtures/reproduce/{name}")),
        )
        .unwrap();
        for (k, v) in [
            ("@FAILING@", self.failing.as_str()),
            ("@PASSING@", &self.passing),
        ]
        .iter()
        .chain(extra)
        {
            text = text.replace(k, v);
        }
        let path = self.home.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn secrets(&self) -> PathBuf {
        let p = self.home.path().join("secrets.yml");
        std::fs::write(&p, SECRETS).unwrap();
        p
    }

    /// `localbuild reproduce ARGS` on the busybox image with this history.
    fn reproduce(&self, args: &[&str], stdin: Option<&str>) -> Reproduced {
        let record_json = self.home.path().join("local-record.json");
        let _ = std::fs::remove_file(&record_json);
        let mut child = Command::new(env!("CARGO_BIN_EXE_localbuild"))
            .arg("reproduce")
            .args(["-i", IMAGE, "--build-json"])
            .arg(&record_json)
            .args(args)
            .env("LOCALBUILD_HOME", self.home.path())
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.home.path().join("config"))
            .env_remove("LOCALBUILD_LOG")
            .current_dir(self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("localbuild starts");
        {
            let mut input = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                input.write_all(text.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        let record: Value = std::fs::read(&record_json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        if let Some(id) = record["id"].as_str() {
            crate::util::assert_nothing_left(id);
        }
        Reproduced {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            record,
        }
    }

    /// The `reproduce` document the history keeps for a local build.
    fn link(&self, local_id: &str) -> Value {
        let db = localbuild_db::Db::open(&self.home.path().join("localbuild.db")).unwrap();
        let doc = db
            .get_doc("reproduce", local_id)
            .unwrap()
            .expect("the link to the cloud build is kept");
        serde_json::from_str(&doc).unwrap()
    }
}

struct Reproduced {
    code: i32,
    stdout: String,
    stderr: String,
    record: Value,
}

impl Reproduced {
    fn both(&self) -> String {
        format!("{}\n--- stderr ---\n{}", self.stdout, self.stderr)
    }

    /// The side-by-side row of a phase: `(cloud, local)` cells.
    fn row(&self, phase: &str) -> (String, String) {
        let line = self
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{phase} ")) && l.contains(" | "))
            .unwrap_or_else(|| panic!("no row for {phase}:\n{}", self.both()));
        let (cloud, local) = line[phase.len()..].split_once(" | ").unwrap();
        (cloud.trim().to_owned(), local.trim().to_owned())
    }
}

#[test]
fn a_failing_cloud_build_is_reproduced_at_the_commit_it_built() {
    let c = Cloud::new();
    let record = c.record("failing-build.json", &[]);
    let secrets = c.secrets();
    let r = c.reproduce(
        &[
            record.to_str().unwrap(),
            "--secrets-file",
            secrets.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 1, "FAILED, as run says: {}", r.both());
    // resolvedSourceVersion, not sourceVersion (`main` has moved on to the fix).
    assert!(
        r.stdout.contains(&format!("at {}", c.failing)),
        "{}",
        r.both()
    );
    assert!(r.stdout.contains("FAIL: login page"), "{}", r.both());
    // PLAINTEXT with its value; the secrets from the secrets file, masked.
    assert!(
        r.stdout.contains("stage=ci token=*** db=***"),
        "{}",
        r.both()
    );
    assert!(!r.stdout.contains("tok-123456") && !r.stdout.contains("pw-98765"));
    let (cloud, local) = r.row("BUILD");
    assert!(
        cloud.starts_with("FAILED") && cloud.contains("48s COMMAND_EXECUTION_ERROR"),
        "{cloud}"
    );
    assert!(
        local.starts_with("FAILED") && local.contains("COMMAND_EXECUTION_ERROR: Error while"),
        "{local}"
    );
    let (cloud, local) = r.row("PROVISIONING");
    assert!(
        cloud.starts_with("SUCCEEDED") && cloud.contains("23s"),
        "{cloud}"
    );
    assert!(local.starts_with("SUCCEEDED"), "{local}");
    assert!(
        r.stdout
            .contains("Verdict: reproduced (the cloud build was FAILED, so is the local one)"),
        "{}",
        r.both()
    );
    // The record: the cloud's project, source, commit, environment; initiator and link.
    let b = &r.record;
    assert_eq!(b["projectName"], "web");
    assert_eq!(b["initiator"], format!("reproduce/{FAILING_ID}"));
    assert_eq!(b["resolvedSourceVersion"], c.failing.as_str());
    assert_eq!(b["source"]["type"], "GITHUB");
    assert_eq!(b["source"]["location"], "https://github.com/acme/web.git");
    assert_eq!(b["environment"]["computeType"], "BUILD_GENERAL1_MEDIUM");
    assert_eq!(b["timeoutInMinutes"], 20);
    assert!(
        b["arn"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:codebuild:eu-west-1:"),
        "the cloud build's region: {b:#}"
    );
    let link = c.link(b["id"].as_str().unwrap());
    assert_eq!(link["cloudBuildArn"], FAILING_ARN);
    assert_eq!(link["verdict"], "reproduced");
}

#[test]
fn missing_secrets_are_listed_at_once_before_anything_starts() {
    let c = Cloud::new();
    let record = c.record("failing-build.json", &[]);
    let r = c.reproduce(&[record.to_str().unwrap()], None);
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr
            .contains("2 variables of the cloud build have no local value"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("  TOKEN (PARAMETER_STORE): parameter-store: /web/ci/token"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("  DB_PASSWORD (SECRETS_MANAGER): secrets-manager: web/ci/db"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "nothing started: {}", r.stdout);
    assert_eq!(r.record, Value::Null);
    let (code, out, _) = builds_list(&c);
    assert_eq!(code, 0);
    assert!(!out.contains("web:"), "no build in the history: {out}");
}

fn builds_list(c: &Cloud) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args(["builds", "list"])
        .env("LOCALBUILD_HOME", c.home.path())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn build_chooses_one_of_several_and_reads_standard_input() {
    let c = Cloud::new();
    let record = c.record("two-builds.json", &[]);
    let text = std::fs::read_to_string(&record).unwrap();
    // Without --build: which ones there are.
    let r = c.reproduce(&["-"], Some(&text));
    assert_eq!(r.code, 2, "{}", r.both());
    assert!(
        r.stderr.contains(&format!(
            "-: the answer holds 2 builds: choose one with --build ({FAILING_ID}, {PASSING_ID})"
        )),
        "{}",
        r.stderr
    );
    // The succeeding cloud build, from standard input, without a secrets file (it has none).
    let r = c.reproduce(&["-", "--build", PASSING_ID], Some(&text));
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.stdout.contains(&format!("at {}", c.passing)),
        "{}",
        r.both()
    );
    assert!(r.stdout.contains("ok: login page"), "{}", r.both());
    let (cloud, local) = r.row("BUILD");
    assert!(
        cloud.starts_with("SUCCEEDED") && cloud.contains("51s"),
        "{cloud}"
    );
    assert!(local.starts_with("SUCCEEDED"), "{local}");
    assert!(
        r.stdout
            .contains("Verdict: reproduced (the cloud build was SUCCEEDED"),
        "{}",
        r.both()
    );
    assert_eq!(r.record["initiator"], format!("reproduce/{PASSING_ID}"));
}

#[test]
fn a_build_that_now_passes_differs_from_the_failed_phase_on() {
    let c = Cloud::new();
    // The cloud's failing build, but the record says it built the commit that passes.
    let record = c.record("failing-build.json", &[]);
    let text = std::fs::read_to_string(&record)
        .unwrap()
        .replace(&c.failing, &c.passing);
    let secrets = c.secrets();
    let r = c.reproduce(
        &["-", "--secrets-file", secrets.to_str().unwrap()],
        Some(&text),
    );
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.stdout.contains(
            "Verdict: differs from phase BUILD on (cloud: FAILED COMMAND_EXECUTION_ERROR, local: SUCCEEDED)"
        ),
        "{}",
        r.both()
    );
}

#[test]
fn source_dir_builds_the_commit_from_a_clone_without_touching_it() {
    let c = Cloud::new();
    // The user's clone: somewhere else, on `main` (the fix), with an uncommitted change.
    let mine = tempfile::tempdir().unwrap();
    let clone = mine.path().join("web");
    let out = Command::new("git")
        .args(["clone", "-q"])
        .arg(c.repo())
        .arg(&clone)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::write(clone.join("notes.txt"), "mine\n").unwrap();
    std::fs::write(clone.join("test.sh"), "echo local edit\n").unwrap();
    let head = git(&clone, &["rev-parse", "HEAD"]);
    let status = git(&clone, &["status", "--porcelain"]);
    let record = c.record("failing-build.json", &[]);
    let secrets = c.secrets();
    // No repository under the git root: only the clone has the commit.
    std::fs::remove_dir_all(c.repo()).unwrap();
    let r = c.reproduce(
        &[
            record.to_str().unwrap(),
            "--source",
            clone.to_str().unwrap(),
            "--secrets-file",
            secrets.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.both());
    assert!(
        r.stdout.contains(&format!("at {}", c.failing)),
        "{}",
        r.both()
    );
    assert!(r.stdout.contains("FAIL: login page"), "{}", r.both());
    assert!(!r.stdout.contains("local edit"), "{}", r.both());
    assert!(r.stdout.contains("Verdict: reproduced"), "{}", r.both());
    assert_eq!(git(&clone, &["rev-parse", "HEAD"]), head);
    assert_eq!(git(&clone, &["status", "--porcelain"]), status);
    assert_eq!(git(&clone, &["branch", "--show-current"]), "main");
}

/// A zip of `files` at `path`.
fn zip(path: &Path, files: &[(&str, &str)]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, text) in files {
        z.start_file(*name, zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(text.as_bytes()).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn s3_zip_and_secondary_sources_come_from_the_local_stores() {
    let c = Cloud::new();
    let s3 = c.home.path().join("s3/acme-web-sources/web");
    zip(
        &s3.join("source.zip"),
        &[
            (
                "ci/buildspec.yml",
                "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"stage=$STAGE app=$(cat app.txt)\"\n      - echo \"tools=$(cat $CODEBUILD_SRC_DIR_tools/VERSION)\"\n      - echo \"font=$(cat $CODEBUILD_SRC_DIR_fonts/inter.txt)\"\n",
            ),
            ("app.txt", "from-zip"),
        ],
    );
    zip(&s3.join("fonts.zip"), &[("inter.txt", "Inter 4.0")]);
    // The secondary GitLab repository: the cloud built v2; its branch has moved to v3.
    let tools = c.home.path().join("git/acme/tools");
    std::fs::create_dir_all(&tools).unwrap();
    git(&tools, &["init", "-q", "-b", "main"]);
    let v2 = commit(&tools, &[("VERSION", "tools v2")], "v2");
    commit(&tools, &[("VERSION", "tools v3")], "v3");
    let record = c.record("s3-secondary-sources.json", &[("@TOOLS@", &v2)]);
    let r = c.reproduce(&[record.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.both());
    assert!(
        r.stdout.contains("stage=nightly app=from-zip"),
        "{}",
        r.both()
    );
    assert!(r.stdout.contains("tools=tools v2"), "{}", r.both());
    assert!(r.stdout.contains("font=Inter 4.0"), "{}", r.both());
    assert!(r.stdout.contains("Verdict: reproduced"), "{}", r.both());
    assert_eq!(r.record["source"]["type"], "S3");
    assert_eq!(
        r.record["source"]["location"],
        "acme-web-sources/web/source.zip"
    );
}

/// The failing record with one field changed.
fn edited(c: &Cloud, pointer: &str, value: Value) -> String {
    let path = c.record("failing-build.json", &[]);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    *v.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
    v.to_string()
}

#[test]
fn bad_records_get_one_clear_error_naming_the_field() {
    let c = Cloud::new();
    let b = "/builds/0";
    let cases: Vec<(String, &str)> = vec![
        (
            edited(&c, &format!("{b}/buildStatus"), json!("IN_PROGRESS")),
            "`buildStatus` is IN_PROGRESS: the cloud build has not finished; wait until it has",
        ),
        (
            edited(&c, &format!("{b}/environment/type"), json!("ARM_CONTAINER")),
            "`environment.type` is ARM_CONTAINER: localbuild runs x86-64 Linux containers",
        ),
        (
            edited(
                &c,
                &format!("{b}/environment/type"),
                json!("WINDOWS_SERVER_2022_CONTAINER"),
            ),
            "`environment.type` is WINDOWS_SERVER_2022_CONTAINER: localbuild runs Linux containers only",
        ),
        (
            edited(
                &c,
                &format!("{b}/environment/type"),
                json!("LINUX_LAMBDA_CONTAINER"),
            ),
            "`environment.type` is LINUX_LAMBDA_CONTAINER: Lambda compute",
        ),
        (
            edited(&c, &format!("{b}/source/type"), json!("SUBVERSION")),
            "`source.type` is SUBVERSION: expected one of CODECOMMIT, CODEPIPELINE",
        ),
        (
            edited(&c, &format!("{b}/source/type"), json!("CODEPIPELINE")),
            "`source.type` is CODEPIPELINE: the build's input came from a pipeline artifact, which the record does not hold; give the folder with that input with --source DIR",
        ),
        (
            edited(
                &c,
                &format!("{b}/resolvedSourceVersion"),
                json!("0badc0ffee0badc0ffee0badc0ffee0badc0ffee"),
            ),
            "`resolvedSourceVersion` 0badc0ffee0badc0ffee0badc0ffee0badc0ffee is not in the local repository",
        ),
        (
            "{\n  \"builds\": [\n    {\"id\": \"web:1\",}\n  ]\n}\n".to_owned(),
            "-:3:20: not valid JSON: trailing comma",
        ),
    ];
    let secrets = c.secrets();
    for (text, wanted) in cases {
        let r = c.reproduce(
            &["-", "--secrets-file", secrets.to_str().unwrap()],
            Some(&text),
        );
        assert_eq!(r.code, 2, "{wanted}: {}", r.both());
        assert!(r.stderr.contains(wanted), "{wanted}:\n{}", r.stderr);
        assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
        assert!(r.stdout.is_empty(), "{wanted}: nothing ran: {}", r.stdout);
    }
}

#[test]
fn project_creates_the_cloud_project_in_a_running_serve() {
    let s = crate::api::Serve::start(&[]);
    let repo = s.home.path().join("git/acme/web");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    commit(&repo, &[("README", "web\n")], "first");
    let text =
        std::fs::read_to_string(crate::util::root().join("tests/fixtures/reproduce/project.json"))
            .unwrap()
            .replace("@IMAGE@", IMAGE);
    let file = s.home.path().join("project.json");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args(["reproduce", "--project"])
        .arg(&file)
        .args(["--endpoint-url", &format!("http://{}", s.addr)])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .contains("Created project web (arn:aws:codebuild:us-east-1:000000000000:project/web)"),
        "{stdout}"
    );
    let p = s.ok(&["codebuild", "batch-get-projects", "--names", "web"])["projects"][0].clone();
    assert_eq!(p["source"]["location"], "https://github.com/acme/web.git");
    assert_eq!(p["description"], "The web front end");
    assert_eq!(p["tags"], json!([{"key": "team", "value": "web"}]));
    assert!(p.get("webhook").is_none(), "{p:#}");
    // It starts as it is: the record's inline buildspec and variables, the repository under
    // the server's git root.
    let id = s.start_build("web")["id"].as_str().unwrap().to_owned();
    let done = s.wait_complete(&id);
    assert_eq!(done["buildStatus"], "SUCCEEDED", "{done:#}");
    // A second time: the server's own error.
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args(["reproduce", "--project"])
        .arg(&file)
        .args(["--endpoint-url", &format!("http://{}", s.addr)])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ResourceAlreadyExistsException"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
