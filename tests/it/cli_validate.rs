//! `localbuild validate`: stdout, stderr and exit codes on fixture files.

use crate::util::{fixture, localbuild};
use predicates::prelude::*;

#[test]
fn valid_file_prints_ok() {
    let f = fixture("valid.yml");
    localbuild()
        .args(["validate", &f])
        .assert()
        .code(0)
        .stdout(format!("{f}: ok\n"))
        .stderr("");
}

#[test]
fn warnings_do_not_fail() {
    let f = fixture("warnings.yml");
    localbuild()
        .args(["validate", &f])
        .assert()
        .code(0)
        .stdout(format!("{f}: ok\n"))
        .stderr(format!(
            "{f}:3:3: warning: unknown key 'shel' in 'env'\n  |\n3 |   shel: bash\n  |   ^\n"
        ));
}

#[test]
fn unknown_phase_is_an_error_with_a_caret() {
    let f = fixture("bad-phase.yml");
    localbuild()
        .args(["validate", &f])
        .assert()
        .code(1)
        .stdout("")
        .stderr(format!(
            "{f}:3:3: error: Invalid buildspec phase name: biuld. Expecting: build,install,post_build,pre_build\n  |\n3 |   biuld:\n  |   ^\n"
        ));
}

#[test]
fn mapping_command_uses_codebuild_wording() {
    let f = fixture("mapping-command.yml");
    localbuild()
        .args(["validate", &f])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(format!(
            "{f}:6:9: error: Expected Commands[1] to be of string type: found subkeys instead at line 6, value of the key tag on line 5 might be empty\n"
        )));
}

#[test]
fn several_semantic_errors_are_all_reported() {
    let f = fixture("several-errors.yml");
    let out = localbuild().args(["validate", &f]).assert().code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let heads: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&f)).collect();
    assert_eq!(heads.len(), 5, "{stderr}");
    assert!(heads[0].starts_with(&format!(
        "{f}:4:5: error: invalid environment variable name 'CODEBUILD_SECRET'"
    )));
    assert!(heads[1].starts_with(&format!(
        "{f}:7:17: error: invalid on-failure value 'RETRY-500'"
    )));
    assert!(heads[2].starts_with(&format!("{f}:9:1: error: 'artifacts' requires 'files'")));
    assert!(heads[3].starts_with(&format!("{f}:11:1: error: 'cache' requires 'paths'")));
    assert!(heads[4].starts_with(&format!("{f}:16:18: error: invalid file-format 'XML'")));
}

#[test]
fn invalid_utf8_is_located() {
    let f = fixture("bad-utf8.yml");
    localbuild()
        .args(["validate", &f])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with(format!(
            "{f}:5:14: error: invalid UTF-8: byte 0xFF is not valid UTF-8 text\n"
        )));
}

#[test]
fn tab_indentation_is_a_located_syntax_error() {
    let f = fixture("tab.yml");
    localbuild().args(["validate", &f]).assert().code(1).stderr(
        predicate::str::starts_with(format!("{f}:4:")).and(predicate::str::contains(": error: ")),
    );
}

#[test]
fn missing_file_and_mixed_results() {
    let good = fixture("valid.yml");
    let bad = fixture("bad-phase.yml");
    let missing = fixture("does-not-exist.yml");
    localbuild()
        .args(["validate", &good, &missing, &bad])
        .assert()
        .code(1)
        .stdout(format!("{good}: ok\n"))
        .stderr(
            predicate::str::contains(format!("{missing}: error: No such file or directory"))
                .and(predicate::str::contains(format!("{bad}:3:3: error: "))),
        );
}

#[test]
fn no_files_is_a_usage_error() {
    localbuild().arg("validate").assert().code(2);
}

#[test]
fn example_buildspecs_are_valid() {
    for f in ["hello.yml", "docker-push.yml", "failing.yml"] {
        let path = format!("buildspecs/{f}");
        localbuild()
            .args(["validate", &path])
            .assert()
            .code(0)
            .stdout(format!("{path}: ok\n"))
            .stderr("");
    }
}
