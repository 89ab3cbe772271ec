//! `localbuild list`: phases and commands, or the batch's builds, as a compact table.

use crate::util::{fixture, localbuild};

fn stdout(args: &[&str]) -> String {
    let out = localbuild().args(args).assert().code(0);
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

#[test]
fn cli_list_phases_and_commands() {
    let text = stdout(&["list", "-b", &fixture("full.yml")]);
    assert_eq!(
        text,
        "PHASE       STEP       COMMAND\n\
         INSTALL     1          pip install -r requirements.txt\n\
         PRE_BUILD   -          (not defined)\n\
         BUILD       1          make test\n\
         BUILD       finally 1  make clean\n\
         POST_BUILD  1          echo done\n\
         \n\
         batch: build-list, 2 build(s); `localbuild list --batch` lists them\n"
    );
}

#[test]
fn cli_list_batch_graph_from_the_source_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("buildspec.yml"),
        "version: 0.2\nbatch:\n  build-graph:\n    - identifier: build1\n    - identifier: test\n      depend-on: [build1]\n      buildspec: test.yml\n      env:\n        variables:\n          MODE: fast\nphases:\n  build:\n    commands:\n      - |\n        echo one\n        echo two\n",
    )
    .unwrap();
    let src = dir.path().to_str().unwrap();
    let text = stdout(&["list", "-s", src]);
    assert!(text.contains("BUILD       1     echo one …\n"), "{text}");
    assert!(text.contains("INSTALL     -     (not defined)\n"), "{text}");
    let text = stdout(&["list", "-s", src, "--batch"]);
    assert_eq!(
        text,
        "batch: build-graph (fast-fail no)\n\
         IDENTIFIER  DEPEND-ON  BUILDSPEC  IMAGE  SETTINGS\n\
         build1      -          -          -      -\n\
         test        build1     test.yml   -      MODE=fast\n"
    );
}

#[test]
fn cli_list_errors() {
    // No batch section.
    localbuild()
        .args(["list", "--batch", "-b", &fixture("valid.yml")])
        .assert()
        .code(1);
    // An invalid buildspec: the diagnostics, as plan and validate print them.
    let out = localbuild()
        .args(["list", "-b", &fixture("bad-phase.yml")])
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(err.contains("bad-phase.yml:"), "{err}");
    // No buildspec.
    localbuild()
        .args(["list", "-s", "/nonexistent"])
        .assert()
        .code(1);
}
