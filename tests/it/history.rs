//! The build history: every `run` lands in one store; `builds list|show|logs` read it. (A run
//! killed mid-build and finalised by `gc` is tested in `tests/gc.rs`: gc touches every build.)

use crate::harness::Build;

#[test]
fn runs_share_one_history_that_builds_commands_read() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"number $CODEBUILD_BUILD_NUMBER\"\n",
    );
    assert_eq!(b.run().code, 0);
    assert_eq!(b.run().code, 0);

    let (code, list, err) = b.cli(&["builds", "list", "--project", "it"]);
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

    let (code, json, _) = b.cli(&["builds", "show", "it:1", "--json"]);
    assert_eq!(code, 0);
    let record: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(record["buildNumber"], 1);
    assert_eq!(record["buildStatus"], "SUCCEEDED");
    let id = record["id"].as_str().unwrap().to_owned();

    let (code, table, _) = b.cli(&["builds", "show", &id]);
    assert_eq!(code, 0);
    assert!(
        table.contains("Build #1") && table.contains("SUCCEEDED"),
        "{table}"
    );

    let (code, log, _) = b.cli(&["builds", "logs", "it:2"]);
    assert_eq!(code, 0);
    assert!(log.contains("number 2\n"), "{log}");
    assert!(log.contains("[Container] "), "{log}");

    let (code, _, err) = b.cli(&["builds", "show", "it:9"]);
    assert_eq!(code, 1);
    assert!(err.contains("no build it:9"), "{err}");
}
