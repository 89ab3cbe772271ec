//! `localbuild completions SHELL` and `localbuild man`: generated from the clap definitions.

use crate::util::localbuild;

const SUBCOMMANDS: &[&str] = &[
    "run", "plan", "validate", "serve", "builds", "cache", "image", "gc", "list", "config",
];

#[test]
fn every_shell_completes_the_subcommands() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = localbuild()
            .args(["completions", shell])
            .assert()
            .code(0)
            .stderr("");
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(text.contains("localbuild"), "{shell}: no command name");
        for sub in SUBCOMMANDS {
            assert!(
                text.contains(sub),
                "{shell}: subcommand {sub} missing from\n{text}"
            );
        }
        // Flags of `run` are completed too.
        assert!(text.contains("buildspec"), "{shell}: no run flags");
    }
}

#[test]
fn unknown_shell_is_a_usage_error() {
    localbuild()
        .args(["completions", "cmd.exe"])
        .assert()
        .code(2);
}

#[test]
fn man_page_is_roff_with_the_subcommands() {
    let out = localbuild().args(["man"]).assert().code(0).stderr("");
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains(".TH localbuild 1"), "{text}");
    assert!(text.contains(".SH SUBCOMMANDS"), "{text}");
    for sub in SUBCOMMANDS {
        assert!(
            text.contains(&format!("localbuild\\-{sub}(1)")),
            "man: {sub} missing"
        );
    }
    let out = localbuild().args(["man", "run"]).assert().code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains(".TH localbuild-run 1"), "{text}");
    assert!(text.contains("\\-\\-buildspec"), "{text}");
    localbuild().args(["man", "nope"]).assert().code(2);
}
