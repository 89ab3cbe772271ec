//! CodePipeline on `localbuild serve`, driven by the real `aws` CLI. The tutorial end to end:
//! a connection, a pipeline from a JSON file (CodeStarSourceConnection → CodeBuild in privileged
//! mode logging in to a real `docker-registry` and pushing `app:latest` → ECS as a local
//! container), the first execution, a commit that starts the second one by itself, the
//! registry's digest moving and the deployed container serving the new content. Then the
//! failure paths and the operations around executions. Real Docker, real git; bounded
//! polling, no bare sleeps.
//! One module per concept: declarations, executions, actions, triggers, the CLI.

mod actions;
mod cli;
mod declarations;
mod executions;
mod triggers;

pub(crate) use crate::api::Serve;
pub(crate) use crate::harness::{eventually, within};
pub(crate) use crate::registry::{Registry, TagGuard};
pub(crate) use crate::util::git;
pub(crate) use serde_json::{Value, json};
pub(crate) use std::io::{Read, Write};
pub(crate) use std::time::Duration;

const DOCKER_IMAGE: &str = "localbuild-test/docker:1";

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

/// Wait until `n` executions exist and the newest has ended; the list.
pub(crate) fn wait_executions(s: &Serve, name: &str, n: usize) -> Vec<Value> {
    let v = eventually(
        &format!("{n} finished executions of {name}"),
        Duration::from_secs(300),
        || {
            let e = executions(s, name);
            (e.len() >= n && e[0]["status"] != "InProgress").then(|| json!(e))
        },
    );
    v.as_array().cloned().unwrap_or_default()
}

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

pub(crate) fn project(s: &Serve, name: &str, image: &str, privileged: bool) {
    s.project(name, json!({"type": "CODEPIPELINE"}))
        .artifacts(json!({"type": "CODEPIPELINE"}))
        .image(image)
        .privileged(privileged)
        .create();
}

pub(crate) fn declaration(name: &str, conn: &str, project: &str, with_deploy: bool) -> Value {
    let mut stages = vec![
        json!({"name": "Source", "actions": [{
            "name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
            "configuration": {"ConnectionArn": conn, "FullRepositoryId": "acme/web", "BranchName": "main"},
            "outputArtifacts": [{"name": "SourceOutput"}],
            "namespace": "SourceVariables"}]}),
        json!({"name": "Build", "actions": [{
            "name": "Build",
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": {"ProjectName": project,
                "EnvironmentVariables": "[{\"name\":\"COMMIT\",\"value\":\"#{SourceVariables.CommitId}\",\"type\":\"PLAINTEXT\"}]"},
            "inputArtifacts": [{"name": "SourceOutput"}],
            "outputArtifacts": [{"name": "BuildOutput"}]}]}),
    ];
    if with_deploy {
        stages.push(json!({"name": "Deploy", "actions": [{
            "name": "Deploy",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
            "configuration": {"ClusterName": "local", "ServiceName": name, "FileName": "imagedefinitions.json"},
            "inputArtifacts": [{"name": "BuildOutput"}]}]}));
    }
    json!({"pipeline": {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": stages,
    }})
}

pub(crate) fn write_json(dir: &std::path::Path, v: &Value) -> String {
    let path = dir.join(format!("{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, v.to_string()).unwrap();
    format!("file://{}", path.display())
}

/// CreatePipeline with `declaration` (as `--cli-input-json`): the answer, or the CLI's error.
pub(crate) fn try_create(s: &Serve, declaration: &Value) -> Result<Value, String> {
    let file = write_json(s.home.path(), declaration);
    s.aws(&["codepipeline", "create-pipeline", "--cli-input-json", &file])
}

/// [`try_create`] that must succeed.
pub(crate) fn create(s: &Serve, declaration: &Value) -> Value {
    try_create(s, declaration).unwrap_or_else(|e| panic!("create-pipeline: {e}"))
}

pub(crate) fn connection(s: &Serve) -> String {
    let conn = s.ok(&[
        "codestar-connections",
        "create-connection",
        "--provider-type",
        "GitHub",
        "--connection-name",
        "local",
    ])["ConnectionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = s.ok(&[
        "codestar-connections",
        "get-connection",
        "--connection-arn",
        &conn,
    ]);
    assert_eq!(got["Connection"]["ConnectionStatus"], "AVAILABLE");
    conn
}

// ---------------------------------------------------------------------------------------
// Executions: approvals, retries, stop and abandon, transitions, supersede, restarts

/// A CodePipeline-typed project whose buildspec is part of the project (busybox image).
pub(crate) fn inline_project(s: &Serve, name: &str, commands: &[&str]) {
    project_with(s, name, &crate::api::inline_buildspec(commands));
}

/// A repository `git/acme/<name>` with one commit; its path.
pub(crate) fn plain_repo(s: &Serve, name: &str) -> std::path::PathBuf {
    let repo = s.home.path().join("git/acme").join(name);
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "one\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    repo
}

/// Source (the repository `acme/<repo>`) → [Approve (manual)] → Build (`project`).
pub(crate) fn staged(name: &str, conn: &str, repo: &str, project: &str, approval: bool) -> Value {
    let mut stages = vec![json!({"name": "Source", "actions": [{
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
        "configuration": {"ConnectionArn": conn, "FullRepositoryId": format!("acme/{repo}"), "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "SourceVariables"}]})];
    if approval {
        stages.push(json!({"name": "Approve", "actions": [{
            "name": "Approval",
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
            "configuration": {"CustomData": "Ship it?"},
            "timeoutInMinutes": 5}]}));
    }
    stages.push(json!({"name": "Build", "actions": [{
        "name": "Build",
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": project},
        "inputArtifacts": [{"name": "Src"}]}]}));
    json!({"pipeline": {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": stages,
    }})
}

fn state(s: &Serve, name: &str) -> Value {
    s.ok(&["codepipeline", "get-pipeline-state", "--name", name])
}

/// `stageStates[i]` of the stage named `stage`.
fn stage<'a>(state: &'a Value, stage: &str) -> &'a Value {
    state["stageStates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stageName"] == stage)
        .unwrap_or_else(|| panic!("no stage {stage}: {state:#}"))
}

fn execution(s: &Serve, name: &str, id: &str) -> Value {
    s.ok(&[
        "codepipeline",
        "get-pipeline-execution",
        "--pipeline-name",
        name,
        "--pipeline-execution-id",
        id,
    ])["pipelineExecution"]
        .clone()
}

/// Wait until the only action of `stage_name` is InProgress in execution `id`; its
/// latestExecution.
fn wait_action_running(s: &Serve, name: &str, stage_name: &str, id: &str) -> Value {
    let running = within(Duration::from_secs(120), || {
        let st = state(s, name);
        let stg = stage(&st, stage_name);
        if stg["latestExecution"]["pipelineExecutionId"] == id
            && stg["actionStates"][0]["latestExecution"]["status"] == "InProgress"
        {
            Ok(stg["actionStates"][0]["latestExecution"].clone())
        } else {
            Err(format!("{st:#}"))
        }
    });
    running.unwrap_or_else(|last| {
        panic!(
            "{stage_name} did not run in {id}: {}\n{:#}",
            last.unwrap_or_default(),
            execution(s, name, id)
        )
    })
}

fn wait_execution(
    s: &Serve,
    name: &str,
    id: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    eventually(
        &format!("execution {id} {what}"),
        Duration::from_secs(180),
        || {
            let e = execution(s, name, id);
            cond(&e).then_some(e)
        },
    )
}

fn first_execution(s: &Serve, name: &str) -> String {
    eventually("the first execution", Duration::from_secs(30), || {
        executions(s, name)
            .first()
            .map(|e| e["pipelineExecutionId"].clone())
    })
    .as_str()
    .unwrap()
    .to_owned()
}

/// `localbuild ARGS` on the server's store; its stdout (it must succeed).
fn cli(s: &Serve, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .env("LOCALBUILD_HOME", s.home.path())
        .env_remove("LOCALBUILD_LOG")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "localbuild {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn approve(
    s: &Serve,
    name: &str,
    token: &str,
    status: &str,
    summary: &str,
) -> Result<Value, String> {
    s.aws(&[
        "codepipeline",
        "put-approval-result",
        "--pipeline-name",
        name,
        "--stage-name",
        "Approve",
        "--action-name",
        "Approval",
        "--token",
        token,
        "--result",
        &format!("summary={summary},status={status}"),
    ])
}

/// A project whose buildspec is `buildspec` (inline), on the busybox image, for pipelines.
pub(crate) fn project_with(s: &Serve, name: &str, buildspec: &str) {
    s.project(
        name,
        json!({"type": "CODEPIPELINE", "buildspec": buildspec}),
    )
    .artifacts(json!({"type": "CODEPIPELINE"}))
    .create();
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = vec![];
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
            {
                found.push(path);
            }
        }
    }
    found
}

/// The buildspec of a build fed by `two_source_pipeline`: `web.txt` from the primary source's
/// README, `api.txt` from the secondary `Back`'s, as the secondary artifacts `Web` and `Api`;
/// `extra` commands run after.
pub(crate) fn two_source_buildspec(extra: &[&str]) -> String {
    let mut commands = vec![
        "cat README > web.txt",
        "cat $CODEBUILD_SRC_DIR_Back/README > api.txt",
    ];
    commands.extend(extra);
    let mut spec = "version: 0.2\nphases:\n  build:\n    commands:\n".to_owned();
    for c in commands {
        spec.push_str(&format!("      - {c}\n"));
    }
    spec.push_str("artifacts:\n  files: [web.txt]\n  secondary-artifacts:\n    Web:\n      files: [web.txt]\n    Api:\n      files: [api.txt]\n");
    spec
}

/// Source: `acme/front` through GitHub version 1 (namespace `FrontVars`) and `acme/back`
/// through the connection → Build: `project` with both as inputs (`Front` primary) and the
/// outputs `Web` and `Api`, `config` added to its configuration → Deploy: `deploys`.
pub(crate) fn two_source_pipeline(
    name: &str,
    conn: &str,
    project: &str,
    config: Value,
    deploys: Vec<Value>,
) -> Value {
    let mut configuration = json!({"ProjectName": project, "PrimarySource": "Front"});
    for (k, v) in config.as_object().into_iter().flatten() {
        configuration[k] = v.clone();
    }
    json!({"pipeline": {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [
                {"name": "Front", "namespace": "FrontVars",
                 "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
                 "configuration": {"Owner": "acme", "Repo": "front", "Branch": "main", "OAuthToken": "ghp_notarealtoken42"},
                 "outputArtifacts": [{"name": "Front"}]},
                {"name": "Back",
                 "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
                 "configuration": {"ConnectionArn": conn, "FullRepositoryId": "acme/back", "BranchName": "main"},
                 "outputArtifacts": [{"name": "Back"}]}]},
            {"name": "Build", "actions": [{
                "name": "Build",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "configuration": configuration,
                "inputArtifacts": [{"name": "Front"}, {"name": "Back"}],
                "outputArtifacts": [{"name": "Web"}, {"name": "Api"}]}]},
            {"name": "Deploy", "actions": deploys}]}})
}
