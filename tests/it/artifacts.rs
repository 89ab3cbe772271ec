//! End-to-end: artifacts, reports, cache and the symlink escape, through the real binary and a
//! real Docker daemon (`localbuild-test/busybox:1`). Docker unreachable = these tests fail.

use super::util::localbuild;
use std::io::Read;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const IMAGE: &str = "localbuild-test/busybox:1";

/// A source folder with `buildspec`, a store, and an output folder.
struct Case {
    tmp: TempDir,
}

impl Case {
    fn new(buildspec: &str) -> Case {
        let tmp = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(tmp.path().join("src")).unwrap();
        std::fs::write(tmp.path().join("src/buildspec.yml"), buildspec).unwrap();
        Case { tmp }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
    /// Run a build; returns (exit code, stdout).
    fn run(&self, extra: &[&str]) -> (i32, String) {
        let out = localbuild()
            .env("LOCALBUILD_HOME", self.p("home"))
            .args(["run", "-i", IMAGE, "--project", "arts", "-s"])
            .arg(self.p("src"))
            .arg("--build-json")
            .arg(self.p("build.json"))
            .args(extra)
            .output()
            .expect("run localbuild");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("cannot connect to the Docker daemon"),
            "Docker is unreachable: {stderr}"
        );
        (
            out.status.code().unwrap_or(-1),
            format!("{stdout}\n{stderr}"),
        )
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.p("build.json")).unwrap()).unwrap()
    }
}

fn files_under(root: &Path) -> Vec<String> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

const TREE: &str = r#"
      - mkdir -p my-build-1 my-build-2/my-subdirectory my-build-2/skip
      - echo one > my-build-1/my-file-1.txt
      - echo two > my-build-2/my-file-2.txt
      - echo three > my-build-2/my-subdirectory/my-file-3.txt
      - echo no > my-build-2/skip/x.txt
"#;

#[test]
fn primary_and_secondary_artifacts_follow_codebuild_rules() {
    let case = Case::new(&format!(
        r#"version: 0.2
phases:
  build:
    commands:{TREE}
artifacts:
  files: ['**/*']
  base-directory: 'my-build*'
  discard-paths: yes
  exclude-paths: ['skip/**/*']
  name: app-$CODEBUILD_BUILD_NUMBER
  secondary-artifacts:
    nested:
      files: ['*/my-file-3.txt']
      base-directory: my-build-2
"#
    ));
    let (code, out) = case.run(&["-a", case.p("out").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Expanding base directory path: my-build*"),
        "{out}"
    );
    assert!(out.contains("Found 3 file(s)"), "{out}");
    assert!(
        out.contains("Preparing to copy secondary artifacts nested"),
        "{out}"
    );
    assert_eq!(
        files_under(&case.p("out/app-1")),
        ["my-file-1.txt", "my-file-2.txt", "my-file-3.txt"]
    );
    assert_eq!(
        files_under(&case.p("out/nested")),
        ["my-subdirectory/my-file-3.txt"]
    );
    assert_eq!(
        std::fs::read_to_string(case.p("out/app-1/my-file-3.txt")).unwrap(),
        "three\n"
    );
    let json = case.json();
    assert!(
        json["artifacts"]["location"]
            .as_str()
            .unwrap()
            .ends_with("out/app-1")
    );
    assert_eq!(
        json["secondaryArtifacts"][0]["artifactIdentifier"],
        "nested"
    );

    // --zip: the same selection as zips.
    let (code, out) = case.run(&["-a", case.p("zips").to_str().unwrap(), "--zip"]);
    assert_eq!(code, 0, "{out}");
    let mut zip = zip::ZipArchive::new(std::fs::File::open(case.p("zips/app-2.zip")).unwrap())
        .expect("a zip");
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(names, ["my-file-1.txt", "my-file-2.txt", "my-file-3.txt"]);
    let mut s = String::new();
    zip.by_name("my-file-2.txt")
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "two\n");
    assert!(case.p("zips/nested.zip").is_file());
}

#[test]
fn no_matching_artifact_paths_fails_the_build() {
    let case = Case::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\nartifacts:\n  files: ['target/*.jar']\n",
    );
    let (code, out) = case.run(&[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("Skipping invalid file path target/*.jar"),
        "{out}"
    );
    let json = case.json();
    assert_eq!(json["buildStatus"], "FAILED");
    let upload = json["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "UPLOAD_ARTIFACTS")
        .unwrap();
    assert_eq!(upload["phaseStatus"], "FAILED");
    assert_eq!(upload["contexts"][0]["statusCode"], "CLIENT_ERROR");
    assert_eq!(
        upload["contexts"][0]["message"],
        "no matching artifact paths found"
    );
}

#[test]
fn junit_report_is_summarised_and_written() {
    let junit = std::fs::read_to_string(
        super::util::root().join("crates/engine/tests/fixtures/reports/junit.xml"),
    )
    .unwrap();
    let case = Case::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\nreports:\n  unit:\n    files: ['reports/*.xml']\n    file-format: JUNITXML\n",
    );
    std::fs::create_dir_all(case.p("src/reports")).unwrap();
    std::fs::write(case.p("src/reports/junit.xml"), junit).unwrap();
    std::fs::write(case.p("src/reports/broken.xml"), "<testsuite><testcase").unwrap();
    let (code, out) = case.run(&["-r", case.p("rep").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Report unit: 5 total, 2 passed, 2 failed, 1 skipped"),
        "{out}"
    );
    assert!(
        out.contains("FAILED calc.MathTest.subtracts: expected 1 but was 2"),
        "{out}"
    );
    assert!(
        out.contains("reports/broken.xml"),
        "malformed file named: {out}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case.p("rep/unit.json")).unwrap()).unwrap();
    assert_eq!(summary["testSummary"]["total"], 5);
    assert_eq!(summary["testSummary"]["statusCounts"]["FAILED"], 1);
    assert!(case.p("rep/unit/reports/junit.xml").is_file());
    let arn = case.json()["reportArns"][0].as_str().unwrap().to_owned();
    assert!(arn.contains(":report/arts-unit:"), "{arn}");
}

#[test]
fn cache_carries_files_to_the_next_build_and_a_new_key_misses() {
    let spec = |key: &str| {
        format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - cat deps/stamp.txt || echo MISSING\n      - mkdir -p deps && echo build-$CODEBUILD_BUILD_NUMBER > deps/stamp.txt\ncache:\n  key: {key}\n  paths: ['deps/**/*']\n"
        )
    };
    let case = Case::new(&spec("deps-v1"));
    let (code, out) = case.run(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("MISSING"), "{out}");
    assert!(case.p("home/cache/arts/deps-v1.tar").is_file());
    let (code, out) = case.run(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("\nbuild-1\n"),
        "second build sees the first's files: {out}"
    );
    assert!(out.contains("already exists; not saving"), "{out}");
    std::fs::write(case.p("src/buildspec.yml"), spec("deps-v2")).unwrap();
    let (code, out) = case.run(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("MISSING"), "a new key misses: {out}");
    let (_, out) = case.run(&["--no-cache"]);
    assert!(out.contains("MISSING"), "--no-cache: {out}");
    let ls = localbuild()
        .env("LOCALBUILD_HOME", case.p("home"))
        .args(["cache", "ls"])
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.contains("deps-v1") && ls.contains("deps-v2"), "{ls}");
    localbuild()
        .env("LOCALBUILD_HOME", case.p("home"))
        .args(["cache", "rm", "arts", "deps-v1"])
        .assert()
        .success();
    assert!(!case.p("home/cache/arts/deps-v1.tar").exists());
}

#[test]
fn symlinks_made_by_the_build_never_write_outside_the_destination() {
    let host = tempfile::tempdir().unwrap();
    let h = host.path().display().to_string();
    let case = Case::new(&format!(
        r#"version: 0.2
phases:
  build:
    commands:
      - mkdir -p {h} out && echo pwned > {h}/owned.txt
      - ln -s {h} out/escape
      - ln -s {h}/owned.txt out/file-link
      - ln -s ../../../../../../../../{h}/owned.txt out/relative-link
      - echo real > out/real.txt
artifacts:
  files: ['out/**/*']
  secondary-artifacts:
    zipped:
      files: ['out/**/*']
      enable-symlinks: yes
"#
    ));
    let (code, out) = case.run(&["-a", case.p("a").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        std::fs::read_dir(host.path()).unwrap().count(),
        0,
        "nothing written on the host target"
    );
    // Links to files are resolved inside the container: their content, as regular files.
    let link = case.p("a/primary/out/file-link");
    assert!(
        !std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&link).unwrap(), "pwned\n");
    // The link to a folder is skipped with a warning.
    assert!(!case.p("a/primary/out/escape").exists());
    assert!(out.contains("symbolic link to a folder"), "{out}");
    // With --zip and enable-symlinks, links stay links inside the zip.
    let (code, out) = case.run(&["-a", case.p("z").to_str().unwrap(), "--zip"]);
    assert_eq!(code, 0, "{out}");
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(case.p("z/zipped.zip")).unwrap()).unwrap();
    let entry = zip.by_name("out/escape").unwrap();
    assert!(entry.is_symlink());
    drop(entry);
    assert_eq!(std::fs::read_dir(host.path()).unwrap().count(), 0);
}
