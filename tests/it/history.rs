//! The build history: every `run` lands in one store; `builds list|show|logs` read it; a
//! process killed mid-build loses nothing it had finished, and `gc` finalises what it left.

use crate::harness::Build;
use std::process::Command;

/// `localbuild ARGS` with the same history as `build`.
fn localbuild(build: &Build, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args(args)
        .env("LOCALBUILD_HOME", build.home.path())
        .env("NO_COLOR", "1")
        .output()
        .expect("localbuild runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn runs_share_one_history_that_builds_commands_read() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"number $CODEBUILD_BUILD_NUMBER\"\n",
    );
    assert_eq!(b.run().code, 0);
    assert_eq!(b.run().code, 0);

    let (code, list, err) = localbuild(&b, &["builds", "list", "--project", "it"]);
    assert_eq!(code, 0, "{err}");
    let numbers: Vec<&str> = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(numbers, ["2", "1"], "newest first:\n{list}");
    assert!(
        list.lines().skip(1).all(|l| l.contains("SUCCEEDED")),
        "{list}"
    );

    let (code, json, _) = localbuild(&b, &["builds", "show", "it:1", "--json"]);
    assert_eq!(code, 0);
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["buildNumber"], 1);
    assert_eq!(record["buildStatus"], "SUCCEEDED");
    let id = record["id"].as_str().unwrap().to_owned();

    let (code, table, _) = localbuild(&b, &["builds", "show", &id]);
    assert_eq!(code, 0);
    assert!(
        table.contains("Build #1") && table.contains("SUCCEEDED"),
        "{table}"
    );

    let (code, log, _) = localbuild(&b, &["builds", "logs", "it:2"]);
    assert_eq!(code, 0);
    assert!(log.contains("number 2\n"), "{log}");
    assert!(log.contains("[Container] "), "{log}");

    let (code, _, err) = localbuild(&b, &["builds", "show", "it:9"]);
    assert_eq!(code, 1);
    assert!(err.contains("no build it:9"), "{err}");
}

#[test]
fn a_killed_run_is_finalised_by_gc_and_the_history_stays_whole() {
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
    let (_, json, _) = localbuild(&b, &["builds", "show", "it:2", "--json"]);
    let before: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(before["buildStatus"], "IN_PROGRESS");
    assert_eq!(before["currentPhase"], "BUILD");
    let id = before["id"].as_str().unwrap().to_owned();

    let (code, out, err) = localbuild(&b, &["gc"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("finalised build {id}")), "{out}");
    let left = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label=localbuild.build-id={id}"))
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "the killed build's container is gone"
    );

    let (_, json, _) = localbuild(&b, &["builds", "show", "it:2", "--json"]);
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
    let (_, json, _) = localbuild(&b, &["builds", "show", "it:1", "--json"]);
    let first: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(first["buildStatus"], "SUCCEEDED");
    let (_, log, _) = localbuild(&b, &["builds", "logs", "it:2"]);
    assert!(log.contains("installed\n"), "{log}");
    let db = localbuild_db::Db::open(&b.home.path().join("localbuild.db")).unwrap();
    assert!(db.integrity_check().unwrap());
}
