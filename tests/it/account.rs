//! One account id everywhere (issue 27): `serve --account-id` and `run --account-id` put the
//! chosen id in every ARN and message, and STS GetCallerIdentity answers it; an id AWS would
//! refuse (not 12 digits) is refused before anything starts.

use crate::api::Serve;
use crate::harness::Build;
use crate::pipeline::{connection, staged, write_json};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012";

/// What a build exports: `CODEBUILD_BUILD_ARN` and `CODEBUILD_PROJECT_ARN` as its shell saw them.
const SHOW_ARNS: &str = "version: 0.2\nenv:\n  exported-variables:\n    - SEEN_BUILD_ARN\n    - SEEN_PROJECT_ARN\nphases:\n  build:\n    commands:\n      - SEEN_BUILD_ARN=$CODEBUILD_BUILD_ARN\n      - SEEN_PROJECT_ARN=$CODEBUILD_PROJECT_ARN\n";

fn exported(b: &Value, name: &str) -> String {
    b["exportedEnvironmentVariables"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"] == name)
        .and_then(|v| v["value"].as_str())
        .unwrap_or_else(|| panic!("no exported {name}: {b:#}"))
        .to_owned()
}

#[test]
fn serve_with_an_account_id_names_it_in_every_arn_sts_iam_ecr_codebuild_and_codepipeline() {
    let s = Serve::start(&["--account-id", ACCOUNT]);

    let me = s.ok(&["sts", "get-caller-identity"]);
    assert_eq!(me["Account"], ACCOUNT, "{me:#}");
    assert_eq!(me["Arn"], format!("arn:aws:iam::{ACCOUNT}:root"), "{me:#}");

    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let role = s.ok(&[
        "iam",
        "create-role",
        "--role-name",
        "ci",
        "--assume-role-policy-document",
        &trust.to_string(),
    ]);
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/ci");
    assert_eq!(role["Role"]["Arn"], role_arn.as_str(), "{role:#}");
    let assumed = s.ok(&[
        "sts",
        "assume-role",
        "--role-arn",
        &role_arn,
        "--role-session-name",
        "deploy",
    ]);
    assert_eq!(
        assumed["AssumedRoleUser"]["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/ci/deploy"),
        "{assumed:#}"
    );

    let repo = s.ok(&["ecr", "create-repository", "--repository-name", "team/app"]);
    assert_eq!(repo["repository"]["registryId"], ACCOUNT, "{repo:#}");
    let repos = s.ok(&["ecr", "describe-repositories"]);
    let r = &repos["repositories"][0];
    assert_eq!(r["registryId"], ACCOUNT, "{repos:#}");
    assert_eq!(
        r["repositoryUri"],
        format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/team/app")
    );
    assert_eq!(
        r["repositoryArn"],
        format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team/app")
    );
    let missing = s
        .aws(&["ecr", "describe-repositories", "--repository-names", "nope"])
        .unwrap_err();
    assert!(
        missing.contains(&format!("in the registry with id '{ACCOUNT}'")),
        "{missing}"
    );
    // Another account's registry is not this one.
    let other = s
        .aws(&[
            "ecr",
            "describe-repositories",
            "--registry-id",
            "000000000000",
        ])
        .unwrap_err();
    assert!(other.contains("InvalidParameterException"), "{other}");

    let project_arn = format!("arn:aws:codebuild:us-east-1:{ACCOUNT}:project/acct");
    let created = s
        .project("acct", json!({"type": "NO_SOURCE", "buildspec": SHOW_ARNS}))
        .create();
    assert_eq!(
        created["project"]["arn"],
        project_arn.as_str(),
        "{created:#}"
    );
    let id = s.start_build("acct")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    let build_arn = format!("arn:aws:codebuild:us-east-1:{ACCOUNT}:build/{id}");
    assert_eq!(b["arn"], build_arn.as_str(), "{b:#}");
    assert_eq!(exported(&b, "SEEN_BUILD_ARN"), build_arn);
    assert_eq!(exported(&b, "SEEN_PROJECT_ARN"), project_arn);
    assert!(
        b["logs"]["cloudWatchLogsArn"]
            .as_str()
            .unwrap()
            .starts_with(&format!("arn:aws:logs:us-east-1:{ACCOUNT}:log-group:")),
        "{b:#}"
    );
    let none = s
        .aws(&["codebuild", "update-project", "--name", "nope"])
        .unwrap_err();
    assert!(
        none.contains(&format!(
            "arn:aws:codebuild:us-east-1:{ACCOUNT}:project/nope"
        )),
        "{none}"
    );

    let conn = connection(&s);
    assert!(conn.contains(&format!(":{ACCOUNT}:connection/")), "{conn}");
    let mut d = staged("acct-pipe", &conn, "app", "acct", false);
    d["pipeline"]["roleArn"] = json!(role_arn);
    s.ok(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &write_json(s.home.path(), &d),
    ]);
    let got = s.ok(&["codepipeline", "get-pipeline", "--name", "acct-pipe"]);
    assert_eq!(
        got["metadata"]["pipelineArn"],
        format!("arn:aws:codepipeline:us-east-1:{ACCOUNT}:acct-pipe"),
        "{got:#}"
    );
    let none = s
        .aws(&["codepipeline", "get-pipeline", "--name", "nope"])
        .unwrap_err();
    assert!(
        none.contains(&format!("Account '{ACCOUNT}' does not have a pipeline")),
        "{none}"
    );
    s.ok(&["codepipeline", "delete-pipeline", "--name", "acct-pipe"]);
}

#[test]
fn serve_refuses_an_account_id_aws_would_refuse_before_it_listens() {
    let home = tempfile::tempdir().unwrap();
    for bad in [
        "12345",
        "1234567890123",
        "12345678901x",
        "../../etc/pw",
        "",
        "12345678901\n",
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
            .args(["serve", "--listen", "127.0.0.1:0", "--account-id", bad])
            .env("LOCALBUILD_HOME", home.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(
            stderr.contains("--account-id") && stderr.contains("12 digits"),
            "{bad:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{bad:?} started a server");
    }
}

#[test]
fn run_with_an_account_id_puts_it_in_the_builds_arns() {
    let b = Build::new(SHOW_ARNS);
    let r = b.run_with(&["--account-id", ACCOUNT]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let id = r.record["id"].as_str().unwrap();
    let arn = format!("arn:aws:codebuild:us-east-1:{ACCOUNT}:build/{id}");
    assert_eq!(r.record["arn"], arn.as_str());
    assert_eq!(exported(&r.record, "SEEN_BUILD_ARN"), arn);
    assert!(
        exported(&r.record, "SEEN_PROJECT_ARN")
            .starts_with(&format!("arn:aws:codebuild:us-east-1:{ACCOUNT}:project/")),
        "{}",
        r.record
    );

    let bad = b.run_with(&["--account-id", "0000"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--account-id"), "{}", bad.stderr);
}

#[test]
fn the_user_config_chooses_the_account_and_a_bad_one_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    let user = dir.path().join("config/localbuild");
    std::fs::create_dir_all(&user).unwrap();
    std::fs::write(
        user.join("config.toml"),
        format!("account-id = \"{ACCOUNT}\"\n"),
    )
    .unwrap();
    let out = crate::util::localbuild()
        .args(["config", "-s"])
        .arg(dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .assert()
        .code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("account-id"))
        .unwrap_or_else(|| panic!("no account-id in\n{text}"));
    assert!(
        line.contains(ACCOUNT) && line.ends_with("config.toml:1"),
        "{line}"
    );

    std::fs::write(user.join("config.toml"), "\naccount-id = \"1234\"\n").unwrap();
    let out = crate::util::localbuild()
        .args(["config", "-s"])
        .arg(dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        err.contains("config.toml:2:14: error: account-id:") && err.contains("12 digits"),
        "{err}"
    );
}

#[test]
fn the_aws_cli_in_a_run_build_is_in_the_chosen_account() {
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - aws sts get-caller-identity --query Arn --output text\n      - aws ssm put-parameter --name /acct/p --value v --type String --query Version --output text\n      - aws ssm get-parameter --name /acct/p --query Parameter.ARN --output text\n",
    )
    .image("localbuild-test/awscli:1")
    .run_with(&["--account-id", ACCOUNT]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let uuid = r.record["id"].as_str().unwrap().rsplit(':').next().unwrap();
    assert_eq!(
        r.output_of("aws sts get-caller-identity --query Arn --output text"),
        [format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/codebuild-{}-service-role/AWSCodeBuild-{uuid}",
            r.record["projectName"].as_str().unwrap()
        )]
    );
    assert_eq!(
        r.output_of("aws ssm get-parameter --name /acct/p --query Parameter.ARN --output text"),
        [format!("arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/acct/p")]
    );
}
