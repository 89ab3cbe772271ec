//! Config files (`~/.config/localbuild/config.toml`, `.localbuild.toml`): precedence against
//! the env file and flags, `localbuild config`, and located errors.

use crate::harness::Build;
use crate::util::localbuild;

const ECHO: &str =
    "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"A=$A B=$B C=$C D=$D\"\n";

/// A build whose user config (XDG_CONFIG_HOME) and project config set variables and a timeout.
fn configured() -> Build {
    let b = Build::new(ECHO)
        .file(
            ".localbuild.toml",
            "timeout = 7\nenv-file = \"vars.env\"\n\n[env]\nB = \"project\"\nC = \"project\"\nD = \"project\"\n",
        )
        .file("vars.env", "C=envfile\nD=envfile\n");
    let user = b.home.path().join("config/localbuild");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(
        user.join("config.toml"),
        "timeout = 9\n[env]\nA = \"user\"\nB = \"user\"\nC = \"user\"\nD = \"user\"\n",
    )
    .unwrap();
    b
}

#[test]
fn cli_config_values_are_used_and_flags_win() {
    let b = configured();
    let f = b.run();
    assert_eq!(f.code, 0, "{}\n{}", f.stdout, f.stderr);
    assert!(
        f.stdout.contains("A=user B=project C=envfile D=envfile\n"),
        "{}",
        f.stdout
    );
    assert_eq!(
        f.record["timeoutInMinutes"], 7,
        "project config beats user config"
    );

    let f = b.run_with(&["--env", "D=flag", "--timeout", "8"]);
    assert_eq!(f.code, 0, "{}", f.stderr);
    assert!(
        f.stdout.contains("A=user B=project C=envfile D=flag\n"),
        "{}",
        f.stdout
    );
    assert_eq!(f.record["timeoutInMinutes"], 8, "the flag beats the config");
}

#[test]
fn cli_config_shows_values_and_origins() {
    let b = configured();
    let out = localbuild()
        .args(["config", "-s"])
        .arg(b.src())
        .env("XDG_CONFIG_HOME", b.home.path().join("config"))
        .assert()
        .code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let line = |key: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
            .to_owned()
    };
    assert!(line("timeout").contains("7 minutes"), "{text}");
    assert!(line("timeout").ends_with(".localbuild.toml:1"), "{text}");
    assert!(line("image").ends_with("default"), "{text}");
    assert!(line("env.A").contains("user") && line("env.A").ends_with("config.toml:3"));
    assert!(line("env.B").contains("project"), "{text}");
    assert!(line("env.C").contains("envfile") && line("env.C").contains("env file"));
}

#[test]
fn cli_config_unknown_key_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".localbuild.toml"),
        "timeout = 5\n\n  imagee = \"x\"\n",
    )
    .unwrap();
    for cmd in ["config", "run"] {
        let out = localbuild()
            .args([cmd, "-s"])
            .arg(dir.path())
            .assert()
            .code(2);
        let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            err.contains(".localbuild.toml:3:3: error: unknown field `imagee`"),
            "{cmd}: {err}"
        );
        assert!(err.contains("3 |   imagee = \"x\"\n"), "{err}");
        assert!(err.contains("  |   ^\n"), "{err}");
    }
    // A wrong type is located at the value.
    std::fs::write(
        dir.path().join(".localbuild.toml"),
        "privileged = \"yes\"\n",
    )
    .unwrap();
    let out = localbuild()
        .args(["config", "-s"])
        .arg(dir.path())
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains(".localbuild.toml:1:14: error: invalid type"),
        "{err}"
    );
}
