//! `localbuild plan`: buildspec lookup, text and JSON output, errors.

use crate::util::{fixture, localbuild};
use predicates::prelude::*;

#[test]
fn text_plan_lists_all_phases_and_sections() {
    let f = fixture("full.yml");
    let out = localbuild()
        .args(["plan", "-b", &f])
        .assert()
        .code(0)
        .stderr("");
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for needle in [
        "Buildspec: tests/fixtures/full.yml (version 0.2)",
        "Shell: bash",
        "Run as: codebuild-user",
        "  DOTNET_FRAMEWORK=4.8\n",
        "  DEBUG=true\n",
        "  DB_PASSWORD <- parameter-store /prod/db/password\n",
        "  API_TOKEN <- secrets-manager prod/api:token:AWSCURRENT\n",
        "  INSTALL\n    run-as: codebuild-user\n    on-failure: default\n    runtime-versions: python 3.10\n    commands:\n      1. pip install -r requirements.txt\n",
        "  PRE_BUILD (not defined: no commands)\n",
        "    run-as: root\n    on-failure: RETRY (up to 2 times, when the error matches /connection reset/)\n",
        "    finally:\n      1. make clean\n",
        "    on-failure: CONTINUE\n    commands:\n      1. echo done\n",
        "  unit (JUNITXML)\n    files: reports/*.xml\n",
        "  secondary docs\n    files: docs/**/*\n    base-directory: site\n",
        "  key: pip-$(codebuild-hash-files requirements.txt)\n  action: save\n",
        "Batch: build-list (fast-fail no), 2 task(s)\n  linux image=aws/codebuild/standard:7.0\n  arm ignore-failure\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn json_plan() {
    let f = fixture("full.yml");
    let out = localbuild()
        .args(["plan", "-b", &f, "--json"])
        .assert()
        .code(0);
    let v: serde_json::Value =
        serde_json::from_slice(&out.get_output().stdout).expect("plan --json prints JSON");
    assert_eq!(v["version"], "0.2");
    let phases = v["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]);
    assert_eq!(phases[1]["defined"], false);
    assert_eq!(phases[2]["on_failure"]["mode"], "RETRY");
    assert_eq!(phases[2]["on_failure"]["count"], 2);
    assert_eq!(phases[2]["on_failure"]["pattern"], "connection reset");
    assert_eq!(
        v["env"]["parameter_store"][0]["parameter"],
        "/prod/db/password"
    );
    assert_eq!(v["env"]["secrets_manager"][0]["secret_id"], "prod/api");
    assert_eq!(v["env"]["secrets_manager"][0]["json_key"], "token");
    assert_eq!(v["artifacts"]["secondary"][0]["identifier"], "docs");
    assert_eq!(v["cache"]["action"], "save");
    assert_eq!(v["batch"]["tasks"][1]["identifier"], "arm");
}

#[test]
fn default_buildspec_in_source_dir() {
    localbuild()
        .args(["plan", "-s", &fixture("srcdir")])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(
            "Buildspec: tests/fixtures/srcdir/buildspec.yml (version 0.2)\n",
        ));
}

#[test]
fn missing_buildspec_names_the_path() {
    localbuild()
        .args(["plan", "-s", "tests/fixtures"])
        .assert()
        .code(1)
        .stdout("")
        .stderr(
            "tests/fixtures/buildspec.yml: error: buildspec not found (YAML file does not exist)\n",
        );
    localbuild()
        .args(["plan", "-b", "nope.yml"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("nope.yml: error: "));
}

#[test]
fn invalid_buildspec_prints_diagnostics() {
    let f = fixture("bad-phase.yml");
    localbuild()
        .args(["plan", "-b", &f])
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::starts_with(format!(
            "{f}:3:3: error: Invalid buildspec phase name: biuld."
        )));
}

#[test]
fn hello_example_plan() {
    localbuild()
        .args(["plan", "-b", "buildspecs/hello.yml"])
        .assert()
        .code(0)
        .stdout(
            predicate::str::contains("  GREETING=Hello\n")
                .and(predicate::str::contains("  POST_BUILD\n")),
        );
}

#[test]
fn batch_tasks_come_from_the_expansion_run_uses() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("b.yml");
    std::fs::write(
        &f,
        "version: 0.2\nbatch:\n  build-fanout:\n    parallelism: 2\nphases:\n  build:\n    commands:\n      - echo hi\n",
    )
    .unwrap();
    let out = localbuild().args(["plan", "-b"]).arg(&f).assert().code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("Batch: build-fanout (fast-fail no), 2 task(s)\n  note: build-fanout: every shard runs the whole buildspec")
            && text.contains("  shard-1\n  shard-2\n"),
        "{text}"
    );
    std::fs::write(
        &f,
        "version: 0.2\nbatch:\n  build-graph:\n    - identifier: a\n      depend-on: [b]\n    - identifier: b\n      depend-on: [a]\n",
    )
    .unwrap();
    localbuild()
        .args(["plan", "-b"])
        .arg(&f)
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            ":7:19: error: 'batch.build-graph' has a dependency cycle: a -> b -> a",
        ));
}
