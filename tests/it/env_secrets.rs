//! Environment and secrets, offline: env files, overrides, Parameter Store and Secrets Manager
//! from a local file, masking, exported variables, `run-as` and `env.shell`.

use crate::harness::Build;

const SECRETS: &str = r#"parameter-store:
  /workshop/db/password: "db-pass-12345"
  /workshop/shadowed: "from-parameter-store"
secrets-manager:
  workshop/hub: '{"username":"hub-user","password":"hub-pass-67890"}'
  workshop/plain: "plain text secret"
"#;

fn with_secrets(buildspec: &str) -> Build {
    let b = Build::new(buildspec).file("secrets.yml", SECRETS);
    let path = b.src().join("secrets.yml");
    b.arg("--secrets-file").arg(path.to_str().unwrap())
}

#[test]
fn precedence_is_env_flag_then_env_file_then_buildspec() {
    let b = with_secrets(
        r#"version: 0.2
env:
  variables:
    ONLY_SPEC: spec
    FILE_WINS: spec
    FLAG_WINS: spec
    LITERAL: "$HOME/x"
  parameter-store:
    SHADOWED: /workshop/shadowed
phases:
  build:
    commands:
      - echo "$ONLY_SPEC $FILE_WINS $FLAG_WINS $SHADOWED $LITERAL $FROM_FILE"
"#,
    )
    .file(
        "vars.env",
        "# local values\nFILE_WINS=file\nFLAG_WINS=file\nSHADOWED=file\nFROM_FILE='quoted' $PATH\n",
    );
    let env_file = b.src().join("vars.env");
    let r = b
        .arg("-e")
        .arg(env_file.to_str().unwrap())
        .arg("--env")
        .arg("FLAG_WINS=flag")
        .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of("echo \"$ONLY_SPEC $FILE_WINS $FLAG_WINS $SHADOWED $LITERAL $FROM_FILE\""),
        ["spec file flag file $HOME/x 'quoted' $PATH"]
    );
    // The record lists the overriding variables by name, never their values.
    let vars = r.record["environment"]["environmentVariables"]
        .as_array()
        .unwrap();
    let names: Vec<&str> = vars.iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "FILE_WINS",
            "FLAG_WINS",
            "SHADOWED",
            "FROM_FILE",
            "FLAG_WINS"
        ]
    );
    assert!(
        vars.iter()
            .all(|v| v["value"] == "" && v["type"] == "PLAINTEXT")
    );
}

#[test]
fn secrets_reach_commands_but_never_the_log_or_record() {
    let b = with_secrets(
        r#"version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /workshop/db/password
  secrets-manager:
    HUB_PASSWORD: workshop/hub:password
    HUB_USER: workshop/hub:username
    PLAIN: workshop/plain
  exported-variables:
    - HUB_PASSWORD
    - PUBLIC
phases:
  build:
    commands:
      - echo "length=${#DB_PASSWORD} user=$HUB_USER"
      - echo "db=$DB_PASSWORD hub=$HUB_PASSWORD plain=$PLAIN"
      - PUBLIC=visible-value
      - test "$HUB_PASSWORD" = hub-pass-67890 && echo json-key-ok
      - echo "db-pass-12345 fails" && exit 9
"#,
    );
    let r = b.run();
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(
        r.output_of("echo \"length=${#DB_PASSWORD} user=$HUB_USER\""),
        ["length=13 user=***"]
    );
    assert_eq!(
        r.output_of("echo \"db=$DB_PASSWORD hub=$HUB_PASSWORD plain=$PLAIN\""),
        ["db=*** hub=*** plain=***"]
    );
    assert!(r.stdout.contains("json-key-ok"));
    let record = r.record.to_string();
    let log = std::fs::read_to_string(r.record["logs"]["localPath"].as_str().unwrap()).unwrap();
    for secret in [
        "db-pass-12345",
        "hub-pass-67890",
        "hub-user",
        "plain text secret",
    ] {
        assert!(!r.stdout.contains(secret), "{secret} in stdout");
        assert!(!r.stderr.contains(secret), "{secret} in stderr");
        assert!(!log.contains(secret), "{secret} in the log file");
        assert!(!record.contains(secret), "{secret} in the record");
    }
    // The failing command's text is masked in the phase context too.
    assert_eq!(
        r.context("BUILD").1,
        "Error while executing command: echo \"*** fails\" && exit 9. Reason: exit status 9"
    );
    // Exported variables, with the values the last command left (secrets masked).
    assert_eq!(
        r.record["exportedEnvironmentVariables"],
        serde_json::json!([
            {"name": "HUB_PASSWORD", "value": "***"},
            {"name": "PUBLIC", "value": "visible-value"}
        ])
    );
}

#[test]
fn a_missing_reference_fails_download_source_before_any_command() {
    let r = with_secrets(
        "version: 0.2\nenv:\n  secrets-manager:\n    X: workshop/absent:key\nphases:\n  install:\n    commands:\n      - echo should-not-run\n",
    )
    .run();
    assert_eq!(r.code, 1);
    let (code, msg) = r.context("DOWNLOAD_SOURCE");
    assert_eq!(code, "Secrets Manager Error");
    assert!(
        msg.starts_with(
            "ResourceNotFoundException: Secrets Manager can't find the specified secret"
        ),
        "{msg}"
    );
    assert!(msg.contains("workshop/absent"), "{msg}");
    assert!(!r.stdout.contains("should-not-run"));
    assert!(!r.phase_list().iter().any(|p| p.starts_with("INSTALL")));
}

#[test]
fn reserved_and_malformed_variables_are_usage_errors() {
    let r = Build::new("version: 0.2\n")
        .arg("--env")
        .arg("CODEBUILD_X=1")
        .run();
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--env") && r.stderr.contains("reserved"),
        "{}",
        r.stderr
    );
    let b = Build::new("version: 0.2\n").file("bad.env", "A=1\nnot a pair\n");
    let path = b.src().join("bad.env");
    let r = b.arg("-e").arg(path.to_str().unwrap()).run();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.env:2:"), "{}", r.stderr);
}

#[test]
fn run_as_runs_commands_as_that_user() {
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    run-as: codebuild-user\n    commands:\n      - id -un\n  post_build:\n    commands:\n      - id -un\n",
    )
    .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    let lines = r.log_lines();
    let users: Vec<&String> = lines
        .iter()
        .filter(|l| *l == "codebuild-user" || *l == "root")
        .collect();
    assert_eq!(users, ["codebuild-user", "root"]);
}

#[test]
fn run_as_a_missing_user_fails_the_command() {
    let r = Build::new(
        "version: 0.2\nrun-as: nobody-here\nphases:\n  build:\n    commands:\n      - id\n",
    )
    .run();
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains("unable to find user nobody-here"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.context("BUILD").1,
        "Error while executing command: id. Reason: exit status 126"
    );
}

#[test]
fn env_shell_bash_runs_commands_with_bash() {
    let r = Build::new(
        "version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands:\n      - '[[ -n $BASH_VERSION ]] && echo bash-ok'\n      - A=(1 2 3); echo ${#A[@]}\n",
    )
    .image("localbuild-test/bash:1")
    .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("\nbash-ok\n"));
    assert!(r.stdout.contains("\n3\n"));
}

#[test]
fn env_shell_missing_from_the_image_is_a_clear_error() {
    let r = Build::new(
        "version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands:\n      - echo x\n",
    )
    .run();
    assert_eq!(r.code, 1, "{}", r.stdout);
    let (code, msg) = r.context("DOWNLOAD_SOURCE");
    assert_eq!(code, "CLIENT_ERROR");
    assert!(msg.contains("bash") && msg.contains("env.shell"), "{msg}");
}

#[test]
fn aws_config_is_forwarded_with_c_and_its_keys_are_masked() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile dev]\nregion = eu-north-1\n",
    )
    .unwrap();
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat /root/.aws/config\n      - echo \"$AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY $AWS_PROFILE\"\n      - touch /root/.aws/new || echo read-only\n",
    )
    .env("HOME", home.path().to_str().unwrap())
    .env("AWS_ACCESS_KEY_ID", "AKIALOCALEXAMPLE")
    .env("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI-local-example")
    .arg("-c")
    .arg("-p")
    .arg("dev")
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of("cat /root/.aws/config"),
        ["[profile dev]", "region = eu-north-1"]
    );
    assert_eq!(
        r.output_of("echo \"$AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY $AWS_PROFILE\""),
        ["*** *** dev"]
    );
    assert!(r.stdout.contains("\nread-only\n"));
    assert!(!home.path().join(".aws/new").exists());
}

#[test]
fn without_c_no_aws_configuration_reaches_the_build() {
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - test \"${AWS_SECRET_ACCESS_KEY:-}\" != should-not-pass && echo not the host key; ls /root/.aws 2>/dev/null || echo none\n",
    )
    .env("AWS_SECRET_ACCESS_KEY", "should-not-pass")
    .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    // The build has its local AWS session's key (tests/it/local_aws.rs), never the host's.
    assert!(
        r.stdout.contains("\nnot the host key\nnone\n"),
        "{}",
        r.stdout
    );
}

/// A line longer than the line splitter's limit (1 MiB) reaches the log in parts; a secret
/// repeated along it is masked wherever the parts were cut (issue 21, item 6).
#[test]
fn a_secret_along_a_line_longer_than_a_mib_is_masked_across_its_cuts() {
    let b = with_secrets(
        r#"version: 0.2
env:
  parameter-store:
    DB_PASSWORD: /workshop/db/password
phases:
  build:
    commands:
      - awk -v s="$DB_PASSWORD" 'BEGIN { for (i = 0; i < 300000; i++) printf "%s.", s; print "" }'
      - echo after-the-long-line
"#,
    );
    let r = b.run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    let log = std::fs::read_to_string(r.record["logs"]["localPath"].as_str().unwrap()).unwrap();
    let long = "***.".repeat(300_000);
    for (name, text) in [("the log", &log), ("stdout", &r.stdout)] {
        assert!(!text.contains("db-pass-12345"), "the secret in {name}");
        assert!(
            text.lines().any(|l| l == long),
            "the long line, masked whole, in {name}"
        );
    }
    assert!(r.stdout.contains("\nafter-the-long-line\n"));
}
