//! `localbuild run --batch` on real Docker: graph order, failures with and without
//! `ignore-failure`, fast-fail, a build-matrix, fan-out shards and their test splitting
//! (`codebuild-tests-run`, `codebuild-glob-search`, also in a plain build), combined
//! artifacts and Ctrl-C.
//! `--build-json` writes the `BuildBatch`; each task's `Build` record is read from the store.

use crate::harness::{Build, Finished};
use localbuild_engine::buildspec::batch::Shard;
use localbuild_engine::testsplit::{Strategy, glob_matches, shard_files};
use serde_json::Value;
use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

/// The command every task runs: it prints its identifier and the matrix / task variables.
const ECHO: &str = "phases:\n  build:\n    commands:\n      - echo \"task=$CODEBUILD_BATCH_BUILD_IDENTIFIER triggered=$CODEBUILD_BUILD_BATCH_TRIGGERED A=$A B=$B\"\n      - test \"$FAIL\" != yes\n";

fn batch(yaml: &str) -> Build {
    Build::new(&format!("version: 0.2\n{yaml}{ECHO}"))
        .arg("--batch")
        .arg("--parallel")
        .arg("2")
}

/// Every task's `Build` record, by identifier (matched through the batch's build groups).
fn task_records(r: &Finished) -> HashMap<String, Value> {
    let mut by_arn = HashMap::new();
    let dir = r.home.join("builds/it");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if let Ok(bytes) = std::fs::read(e.path().join("build.json")) {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            by_arn.insert(v["arn"].as_str().unwrap_or("").to_owned(), v);
        }
    }
    let mut out = HashMap::new();
    for g in r.record["buildGroups"].as_array().expect("buildGroups") {
        let id = g["identifier"].as_str().unwrap().to_owned();
        if let Some(arn) = g["currentBuildSummary"]["arn"].as_str() {
            let rec = by_arn.remove(arn).unwrap_or_else(|| {
                panic!("no record for {id} ({arn}) in {dir:?}: {:?}", by_arn.keys())
            });
            assert_eq!(rec["buildBatchArn"], r.record["arn"], "{id}");
            out.insert(id, rec);
        }
    }
    out
}

/// No container, volume or network of any task remains.
fn assert_no_task_left(records: &HashMap<String, Value>) {
    for rec in records.values() {
        crate::util::assert_nothing_left(rec["id"].as_str().unwrap());
    }
}

fn group<'a>(r: &'a Finished, id: &str) -> &'a Value {
    r.record["buildGroups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["identifier"] == id)
        .unwrap_or_else(|| panic!("no group {id}"))
}

fn group_status(r: &Finished, id: &str) -> String {
    group(r, id)["currentBuildSummary"]["buildStatus"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

fn time(rec: &Value, key: &str) -> f64 {
    rec[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} in {rec}"))
}

#[test]
fn a_build_graph_diamond_runs_in_dependency_order() {
    let b = batch(
        "batch:\n  build-graph:\n    - identifier: a\n    - identifier: b\n      depend-on: [a]\n    - identifier: c\n      depend-on: [a]\n    - identifier: d\n      depend-on: [b, c]\n",
    );
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.record["buildBatchStatus"], "SUCCEEDED");
    assert_eq!(r.record["currentPhase"], "SUCCEEDED");
    let arn = r.record["arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:codebuild:us-east-1:000000000000:build-batch/it:"),
        "{arn}"
    );
    let phases: Vec<&str> = r.record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phaseType"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "SUBMITTED",
            "DOWNLOAD_BATCHSPEC",
            "IN_PROGRESS",
            "SUCCEEDED"
        ]
    );
    assert_eq!(group(&r, "d")["dependsOn"], serde_json::json!(["b", "c"]));
    let recs = task_records(&r);
    assert_eq!(recs.len(), 4);
    for id in ["a", "b", "c", "d"] {
        assert_eq!(recs[id]["buildStatus"], "SUCCEEDED", "{id}");
        assert!(
            r.stdout
                .lines()
                .any(|l| l == format!("[{id}] task={id} triggered=true A= B=")),
            "{id}:\n{}",
            r.stdout
        );
    }
    let (start, end) = (
        |id: &str| time(&recs[id], "startTime"),
        |id: &str| time(&recs[id], "endTime"),
    );
    assert!(start("b") >= end("a") && start("c") >= end("a"));
    assert!(start("d") >= end("b") && start("d") >= end("c"));
    assert!(r.stdout.contains("\nTASK "), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("batch: d SUCCEEDED; 0 running, 4 done, 0 failed")
    );
    assert_no_task_left(&recs);
}

#[test]
fn a_failed_task_fails_the_batch_and_its_dependents_never_start() {
    let b = batch(
        "batch:\n  build-graph:\n    - identifier: bad\n      env:\n        variables:\n          FAIL: yes\n    - identifier: after\n      depend-on: [bad]\n    - identifier: ok\n",
    );
    let r = b.run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.record["buildBatchStatus"], "FAILED");
    assert_eq!(group_status(&r, "bad"), "FAILED");
    assert_eq!(group_status(&r, "ok"), "SUCCEEDED");
    assert_eq!(group_status(&r, "after"), "FAILED");
    assert!(group(&r, "after")["currentBuildSummary"]["arn"].is_null());
    let recs = task_records(&r);
    assert_eq!(recs.len(), 2, "'after' never ran");
    assert!(
        r.stdout
            .contains("not started: its dependency 'bad' did not succeed")
    );
    assert_no_task_left(&recs);

    // The history lists the batch and shows its tasks.
    let id = r.record["id"].as_str().unwrap();
    let (code, list, err) = b.cli(&["builds", "batches", "--project", "it"]);
    assert_eq!(code, 0, "{err}");
    let row = list
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        row.contains("FAILED") && row.ends_with("1/3 succeeded"),
        "{row}"
    );
    let (code, list, _) = b.cli(&["builds", "batches", "--status", "succeeded"]);
    assert_eq!(code, 0);
    assert!(!list.contains(id), "{list}");
    let (code, table, err) = b.cli(&["builds", "show", id]);
    assert_eq!(code, 0, "{err}");
    let bad = recs["bad"]["id"].as_str().unwrap();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("bad") && l.contains("FAILED") && l.contains(bad)),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("after") && l.ends_with(" bad")),
        "{table}"
    );
    let (code, json, _) = b.cli(&["builds", "show", id, "--json"]);
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(shown, r.record);
}

#[test]
fn an_ignored_failure_lets_the_batch_succeed() {
    let b = batch(
        "batch:\n  build-graph:\n    - identifier: bad\n      ignore-failure: true\n      env:\n        variables:\n          FAIL: yes\n    - identifier: after\n      ignore-failure: true\n      depend-on: [bad]\n    - identifier: ok\n",
    );
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.record["buildBatchStatus"], "SUCCEEDED");
    assert_eq!(group_status(&r, "bad"), "FAILED");
    assert_eq!(group(&r, "bad")["ignoreFailure"], true);
    // A dependent of a failed task never starts, ignore-failure or not.
    assert_eq!(group_status(&r, "after"), "FAILED");
    assert!(group(&r, "after")["currentBuildSummary"]["arn"].is_null());
    assert_eq!(group_status(&r, "ok"), "SUCCEEDED");
}

#[test]
fn fast_fail_stops_a_long_running_sibling() {
    // The sources are bind-mounted (-m), so `slow` tells `bad` it is running through a file.
    let b = Build::new(
        "version: 0.2\nbatch:\n  fast-fail: true\n  build-list:\n    - identifier: slow\n      env:\n        variables:\n          ROLE: slow\n    - identifier: bad\n      env:\n        variables:\n          ROLE: bad\nphases:\n  build:\n    commands:\n      - |\n        if [ \"$ROLE\" = slow ]; then touch slow-is-running; sleep 300; fi\n      - |\n        if [ \"$ROLE\" = bad ]; then for i in $(seq 1 600); do [ -f slow-is-running ] && exit 1; sleep 0.1; done; fi\n",
    )
    .args(&["--batch", "--parallel", "2", "-m"]);
    let started = Instant::now();
    let r = b.run();
    assert!(started.elapsed() < Duration::from_secs(120));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.record["buildBatchStatus"], "FAILED");
    assert_eq!(group_status(&r, "bad"), "FAILED");
    assert_eq!(group_status(&r, "slow"), "STOPPED");
    let recs = task_records(&r);
    assert_eq!(recs["slow"]["buildStatus"], "STOPPED");
    assert_no_task_left(&recs);
}

#[test]
fn a_two_by_two_build_matrix_runs_every_combination() {
    let b = batch(
        "batch:\n  build-matrix:\n    dynamic:\n      env:\n        variables:\n          A: [a1, a2]\n          B: [b1, b2]\n",
    );
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let ids: Vec<&str> = r.record["buildGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["matrix-1", "matrix-2", "matrix-3", "matrix-4"]);
    for (id, a, b) in [
        ("matrix-1", "a1", "b1"),
        ("matrix-2", "a1", "b2"),
        ("matrix-3", "a2", "b1"),
        ("matrix-4", "a2", "b2"),
    ] {
        let line = format!("[{id}] task={id} triggered=true A={a} B={b}");
        assert!(r.stdout.lines().any(|l| l == line), "{line}:\n{}", r.stdout);
    }
    assert_no_task_left(&task_records(&r));
}

#[test]
fn a_fanout_runs_parallelism_shards_with_their_identifiers() {
    let b = batch("batch:\n  build-fanout:\n    parallelism: 3\n");
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for i in 1..=3 {
        let line = format!("[shard-{i}] task=shard-{i} triggered=true A= B=");
        assert!(r.stdout.lines().any(|l| l == line), "{line}:\n{}", r.stdout);
    }
    assert!(r.stderr.contains("note: build-fanout:"), "{}", r.stderr);
    assert_eq!(task_records(&r).len(), 3);
}

#[test]
fn combine_artifacts_puts_each_build_in_a_folder_named_by_its_identifier() {
    let out = tempfile::tempdir().unwrap();
    let b = Build::new(
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: one\n    - identifier: two\nphases:\n  build:\n    commands:\n      - echo \"from $CODEBUILD_BATCH_BUILD_IDENTIFIER\" > out.txt\nartifacts:\n  files:\n    - out.txt\n",
    )
    .args(&["--batch", "--combine-artifacts", "-a"])
    .arg(&out.path().display().to_string());
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.record["buildBatchConfig"]["combineArtifacts"], true);
    let phases: Vec<&str> = r.record["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phaseType"].as_str().unwrap())
        .collect();
    assert!(phases.contains(&"COMBINE_ARTIFACTS"), "{phases:?}");
    for id in ["one", "two"] {
        let file = out.path().join(id).join("primary/out.txt");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
            format!("from {id}\n")
        );
    }
}

#[test]
fn a_batch_runs_the_buildspec_of_its_source_version() {
    let at =
        |who: &str| format!("version: 0.2\nbatch:\n  build-list:\n    - identifier: {who}\n{ECHO}");
    let b = Build::new(&at("committed"))
        .commit("the batch")
        .file("buildspec.yml", &at("uncommitted"))
        .args(&["--batch", "--source-version", "main"]);
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .lines()
            .any(|l| l == "[committed] task=committed triggered=true A= B="),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("uncommitted"), "{}", r.stdout);
    let records = task_records(&r);
    let sha = b.git(&["rev-parse", "main"]);
    assert_eq!(records["committed"]["resolvedSourceVersion"], sha.as_str());
}

#[test]
fn a_batch_as_json_lines_tags_every_task_line_and_ends_with_the_batch() {
    let b = batch(
        "batch:\n  build-graph:\n    - identifier: one\n    - identifier: two\n      depend-on:\n        - one\n",
    )
    .args(&["--output", "json"]);
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let lines: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let last = lines.last().unwrap();
    assert_eq!(last["type"], "batch");
    assert_eq!(last["batch"]["buildBatchStatus"], "SUCCEEDED");
    assert_eq!(last["batch"], r.record, "the same record as --build-json");
    for task in ["one", "two"] {
        let of = |kind: &str| {
            lines
                .iter()
                .filter(|l| l["task"] == task && l["type"] == kind)
                .count()
        };
        assert_eq!(of("taskStarted"), 1, "{task}");
        assert_eq!(of("taskFinished"), 1, "{task}");
        assert_eq!(of("build"), 1, "{task}");
        let echoed = format!("task={task} triggered=true A= B=");
        assert!(
            lines.iter().any(|l| l["task"] == task
                && l["type"] == "output"
                && l["text"] == echoed.as_str()),
            "{task}: {}",
            r.stdout
        );
    }
    let started = |task: &str| {
        lines
            .iter()
            .position(|l| l["task"] == task && l["type"] == "taskStarted")
            .unwrap()
    };
    let finished_one = lines
        .iter()
        .position(|l| l["task"] == "one" && l["type"] == "taskFinished")
        .unwrap();
    assert!(started("one") < finished_one && finished_one < started("two"));
}

#[test]
fn a_batch_larger_than_maximum_builds_allowed_is_refused() {
    let b = batch("batch:\n  build-fanout:\n    parallelism: 3\n").args(&["--max-builds", "2"]);
    let r = b.run();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("more than the 2 allowed"), "{}", r.stderr);
    assert!(!r.home.join("builds").exists(), "nothing ran");
}

#[test]
fn ctrl_c_stops_every_running_task() {
    let b = Build::new(
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: one\n    - identifier: two\nphases:\n  build:\n    commands:\n      - echo \"ready $CODEBUILD_BATCH_BUILD_IDENTIFIER\"\n      - sleep 300\n",
    )
    .args(&["--batch", "--parallel", "2"]);
    let mut running = b.spawn();
    running
        .wait_for_line(|l| l.trim_end() == "[one] ready one" || l.trim_end() == "[two] ready two");
    running
        .wait_for_line(|l| l.trim_end() == "[one] ready one" || l.trim_end() == "[two] ready two");
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let r = running.finish();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(r.code, 130, "{}", r.stdout);
    assert_eq!(r.record["buildBatchStatus"], "STOPPED");
    let recs = task_records(&r);
    assert_eq!(recs.len(), 2);
    for id in ["one", "two"] {
        assert_eq!(recs[id]["buildStatus"], "STOPPED", "{id}");
    }
    assert_no_task_left(&recs);
}

/// Seven test files among others, for `codebuild-tests-run` and `codebuild-glob-search`.
const TEST_FILES: &[&str] = &[
    "tests/a_test.sh",
    "tests/b_test.sh",
    "tests/f_test.sh",
    "tests/g_test.sh",
    "tests/unit/c_test.sh",
    "tests/unit/d_test.sh",
    "tests/unit/deep/e_test.sh",
];
const OTHER_FILES: &[&str] = &["tests/helper.sh", "src/x_test.sh", "tests/unit/notes.txt"];

/// A buildspec whose build phase runs `codebuild-tests-run` over [`TEST_FILES`]; each file the
/// shard gets is printed as `FILE <f>` (from `CODEBUILD_CURRENT_SHARD_FILES`) and the
/// appended arguments as `ARGS <f>…`.
fn tests_run(batch: &str, strategy: &str) -> Build {
    let spec = format!(
        "version: 0.2\n{batch}phases:\n  build:\n    commands:\n      - |\n        codebuild-tests-run \\\n          --test-command 'for f in $CODEBUILD_CURRENT_SHARD_FILES; do echo \"FILE $f\"; done; echo ARGS' \\\n          --files-search \"codebuild-glob-search 'tests/**/*_test.sh'\"{strategy}\n"
    );
    let mut b = Build::new(&spec);
    for f in TEST_FILES.iter().chain(OTHER_FILES) {
        b = b.file(f, "");
    }
    b
}

/// The `FILE` lines and the `ARGS` line of one shard (`prefix`: `[shard-N] ` or empty).
fn shard_output(stdout: &str, prefix: &str) -> (Vec<String>, Vec<String>) {
    let lines: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect();
    let files = lines
        .iter()
        .filter_map(|l| l.strip_prefix("FILE "))
        .map(str::to_owned)
        .collect();
    let args = lines
        .iter()
        .find_map(|l| l.strip_prefix("ARGS"))
        .unwrap_or_else(|| panic!("no ARGS line for {prefix:?}:\n{stdout}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (files, args)
}

fn fanout_splits_the_test_files_between_the_shards(strategy: Strategy, name: &str) {
    let b = tests_run(
        "batch:\n  build-fanout:\n    parallelism: 3\n",
        &format!(" \\\n          --sharding-strategy {name}"),
    )
    .args(&["--batch", "--parallel", "3"]);
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let all: Vec<String> = TEST_FILES.iter().map(|f| f.to_string()).collect();
    let mut seen = std::collections::BTreeSet::new();
    for k in 1..=3 {
        let want = shard_files(
            &all,
            Shard {
                number: k,
                count: 3,
            },
            strategy,
        );
        let prefix = format!("[shard-{k}] ");
        let head = format!(
            "{prefix}codebuild-tests-run: shard {k} of 3 ({name}): {} of 7 test file(s)",
            want.len()
        );
        assert!(r.stdout.lines().any(|l| l == head), "{head}:\n{}", r.stdout);
        if want.is_empty() {
            continue;
        }
        let (files, args) = shard_output(&r.stdout, &prefix);
        assert_eq!(files, want, "shard {k}:\n{}", r.stdout);
        assert_eq!(
            args, want,
            "shard {k}: the files are appended to the test command"
        );
        for f in files {
            assert!(seen.insert(f), "a file ran in two shards:\n{}", r.stdout);
        }
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        all,
        "the shards ran every test file once"
    );
    assert_no_task_left(&task_records(&r));
}

#[test]
fn a_fanout_gives_each_shard_its_equal_distribution_share_of_the_test_files() {
    fanout_splits_the_test_files_between_the_shards(
        Strategy::EqualDistribution,
        "equal-distribution",
    );
}

#[test]
fn a_fanout_gives_each_shard_its_stability_share_of_the_test_files() {
    fanout_splits_the_test_files_between_the_shards(Strategy::Stability, "stability");
}

#[test]
fn codebuild_tests_run_outside_a_batch_runs_every_test_file_in_one_shard() {
    let r = tests_run("", "").run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let all: Vec<String> = TEST_FILES.iter().map(|f| f.to_string()).collect();
    assert!(
        r.stdout
            .lines()
            .any(|l| l
                == "codebuild-tests-run: shard 1 of 1 (equal-distribution): 7 of 7 test file(s)"),
        "{}",
        r.stdout
    );
    let (files, args) = shard_output(&r.stdout, "");
    assert_eq!(files, all);
    assert_eq!(args, all);
    r.assert_nothing_left_behind();
}

#[test]
fn codebuild_glob_search_in_a_build_matches_as_documented() {
    let patterns = ["tests/**/*_test.sh", "**/*.txt", "src/*", "tests/?_test.sh"];
    let quoted: Vec<String> = patterns.iter().map(|p| format!("'{p}'")).collect();
    let mut b = Build::new(&format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - codebuild-glob-search {}\n      - codebuild-glob-search '**/*.none'\n      - codebuild-glob-search\n",
        quoted.join(" ")
    ));
    for f in TEST_FILES.iter().chain(OTHER_FILES) {
        b = b.file(f, "");
    }
    let r = b.run();
    let mut want: Vec<String> = TEST_FILES
        .iter()
        .chain(OTHER_FILES)
        .chain(&["buildspec.yml"])
        .filter(|f| patterns.iter().any(|p| glob_matches(p, f)))
        .map(|f| f.to_string())
        .collect();
    want.sort();
    assert_eq!(
        r.output_of(&format!("codebuild-glob-search {}", quoted.join(" "))),
        want
    );
    assert_eq!(
        r.output_of("codebuild-glob-search '**/*.none'"),
        ["codebuild-glob-search: no files found matching the given pattern(s)"]
    );
    // Without a pattern it is a usage error, which fails the build.
    assert!(
        r.stdout
            .contains("usage: codebuild-glob-search <glob_pattern1> [<glob_pattern2> ...]"),
        "{}",
        r.stdout
    );
    assert_eq!(r.status(), "FAILED");
    r.assert_nothing_left_behind();
}

/// The batch never runs more builds at once than `--parallel` (a build counts from
/// PROVISIONING until COMPLETED), and it ends only after every container is gone.
#[test]
fn parallel_two_never_runs_more_than_two_builds_and_leaves_no_container() {
    let b = Build::new(
        "version: 0.2\nbatch:\n  build-list:\n    - identifier: t1\n    - identifier: t2\n    - identifier: t3\n    - identifier: t4\n    - identifier: t5\nphases:\n  build:\n    commands:\n      - sleep 0.3\n",
    )
    .args(&["--batch", "--parallel", "2"]);
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let recs = task_records(&r);
    assert_eq!(recs.len(), 5);
    // Each build occupies [PROVISIONING's start, COMPLETED's start).
    let span = |rec: &Value| {
        let phase = |kind: &str| {
            rec["phases"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["phaseType"] == kind)
                .map(|p| time(p, "startTime"))
                .unwrap_or_else(|| panic!("no {kind} in {rec}"))
        };
        (phase("PROVISIONING"), phase("COMPLETED"))
    };
    let spans: Vec<(f64, f64)> = recs.values().map(span).collect();
    for &(start, _) in &spans {
        let at_once = spans
            .iter()
            .filter(|(s, e)| *s <= start && start < *e)
            .count();
        assert!(at_once <= 2, "{at_once} builds at once: {spans:?}");
    }
    assert_no_task_left(&recs);
}
