//! IAM on `serve`'s port for client code written for AWS, and the IaC flow of issue 27 through
//! the real aws CLI: a role first, then a project and a pipeline that name a repository that
//! does not exist yet; the build fails in DOWNLOAD_SOURCE with CLIENT_ERROR until the
//! repository is there, then the pipeline's next execution succeeds. (Every IAM operation's
//! answer is checked against botocore's model by `tests/api/walk_local_aws.py`, run by
//! `local_aws::boto3_walks_every_local_aws_operation`.)

use crate::api::Serve;
use crate::pipeline::{connection, staged, write_json};
use crate::util::git;
use serde_json::{Value, json};
use std::time::Duration;

const IMAGE: &str = "localbuild-test/busybox:1";

/// Poll `f` until it answers, for at most `limit` seconds.
/// [`eventually`], in seconds.
fn until(what: &str, limit: u64, f: impl FnMut() -> Option<Value>) -> Value {
    crate::harness::eventually(what, Duration::from_secs(limit), f)
}

fn executions(s: &Serve, name: &str) -> Vec<Value> {
    s.ok(&[
        "codepipeline",
        "list-pipeline-executions",
        "--pipeline-name",
        name,
    ])["pipelineExecutionSummaries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn phase<'b>(b: &'b Value, kind: &str) -> &'b Value {
    b["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["phaseType"] == kind)
        .unwrap_or_else(|| panic!("no phase {kind}: {b:#}"))
}

#[test]
fn iac_flow_a_role_then_a_project_and_pipeline_before_their_repository() {
    let s = Serve::start(&[]);

    // The role comes first, as IaC tools create it.
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": ["codebuild.amazonaws.com", "codepipeline.amazonaws.com"]},
        "Action": "sts:AssumeRole"}]});
    let role = s.ok(&[
        "iam",
        "create-role",
        "--role-name",
        "app-ci",
        "--assume-role-policy-document",
        &trust.to_string(),
    ])["Role"]
        .clone();
    let role_arn = role["Arn"].as_str().unwrap().to_owned();
    assert_eq!(role_arn, "arn:aws:iam::000000000000:role/app-ci");
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["logs:*", "s3:*"], "Resource": "*"}]});
    s.ok(&[
        "iam",
        "put-role-policy",
        "--role-name",
        "app-ci",
        "--policy-name",
        "ci",
        "--policy-document",
        &policy.to_string(),
    ]);
    s.ok(&[
        "iam",
        "attach-role-policy",
        "--role-name",
        "app-ci",
        "--policy-arn",
        "arn:aws:iam::aws:policy/AWSCodeBuildAdminAccess",
    ]);
    let err = s
        .aws(&["iam", "delete-role", "--role-name", "app-ci"])
        .unwrap_err();
    assert!(err.contains("DeleteConflict"), "{err}");

    // The project names the repository, which is not there yet: accepted, as in the cloud.
    let env =
        json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL"})
            .to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "app-build",
        "--source",
        &json!({"type": "GITHUB", "location": "https://github.com/acme/app.git"}).to_string(),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        &env,
        "--service-role",
        &role_arn,
    ]);
    let conn = connection(&s);
    let mut d = staged("app", &conn, "app", "app-build", false);
    d["pipeline"]["roleArn"] = json!(role_arn);
    s.ok(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &write_json(s.home.path(), &d),
    ]);

    // A build of the project fails in DOWNLOAD_SOURCE with CLIENT_ERROR; so does the
    // pipeline's first execution, in its source action.
    let id = s.start_build("app-build")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
    assert_eq!(b["serviceRole"], json!(role_arn), "{b:#}");
    let download = phase(&b, "DOWNLOAD_SOURCE");
    assert_eq!(download["phaseStatus"], "FAILED", "{b:#}");
    assert_eq!(
        download["contexts"][0]["statusCode"], "CLIENT_ERROR",
        "{b:#}"
    );
    let first = until("the first execution to end", 180, || {
        executions(&s, "app")
            .into_iter()
            .find(|e| e["status"] != "InProgress")
    });
    assert_eq!(first["status"], "Failed", "{first:#}");

    // The repository is created: the next execution succeeds, and its build ran.
    let repo = s.home.path().join("git/acme/app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built-by-the-pipeline\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    s.ok(&["codepipeline", "start-pipeline-execution", "--name", "app"]);
    until("an execution of the new repository to succeed", 180, || {
        executions(&s, "app")
            .into_iter()
            .find(|e| e["status"] == "Succeeded")
    });
    let st = s.ok(&["codepipeline", "get-pipeline-state", "--name", "app"]);
    let build = st["stageStates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stageName"] == "Build")
        .unwrap()["actionStates"][0]["latestExecution"]["externalExecutionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s.wait_complete(&build);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["source"]["type"], "CODEPIPELINE", "{b:#}");

    // The role is still there as created, with what was put and attached (stored and shown).
    let got = s.ok(&["iam", "get-role", "--role-name", "app-ci"])["Role"].clone();
    assert_eq!(got["Arn"], json!(role_arn));
    assert_eq!(got["AssumeRolePolicyDocument"], trust);
    assert_eq!(
        s.ok(&["iam", "list-role-policies", "--role-name", "app-ci"])["PolicyNames"],
        json!(["ci"])
    );
    assert_eq!(
        s.ok(&["codepipeline", "get-pipeline", "--name", "app"])["pipeline"]["roleArn"],
        json!(role_arn)
    );
    // The console shows it, and says it is not enforced.
    let page = crate::api::get(&s.addr, "/roles");
    assert_eq!(page.status, 200);
    for text in [
        "app-ci",
        "codebuild.amazonaws.com, codepipeline.amazonaws.com",
        "arn:aws:iam::aws:policy/AWSCodeBuildAdminAccess",
        "not enforced",
    ] {
        assert!(page.body.contains(text), "{text} in {}", page.body);
    }
}
