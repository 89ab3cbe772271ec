//! CodePipeline on `localbuild serve`, driven by the real `aws` CLI. The tutorial end to end:
//! a connection, a pipeline from a JSON file (CodeStarSourceConnection → CodeBuild in privileged
//! mode logging in to a real `docker-registry` and pushing `app:latest` → ECS as a local
//! container), the first execution, a commit that starts the second one by itself, the
//! registry's digest moving and the deployed container serving the new content. Then the
//! failure paths and the operations around executions. Real Docker, real git; bounded
//! polling, no bare sleeps.

use crate::registry::{Registry, TagGuard};
use crate::serve::{Serve, git};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const DOCKER_IMAGE: &str = "localbuild-test/docker:1";

fn wait_for(what: &str, limit: u64, mut f: impl FnMut() -> Option<Value>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(limit);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
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

/// Wait until `n` executions exist and the newest has ended; the list.
pub(crate) fn wait_executions(s: &Serve, name: &str, n: usize) -> Vec<Value> {
    let v = wait_for(&format!("{n} finished executions of {name}"), 300, || {
        let e = executions(s, name);
        (e.len() >= n && e[0]["status"] != "InProgress").then(|| json!(e))
    });
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
    let env = json!({"type": "LINUX_CONTAINER", "image": image, "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": privileged}).to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        name,
        "--source",
        r#"{"type": "CODEPIPELINE"}"#,
        "--artifacts",
        "type=CODEPIPELINE",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
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

/// The tutorial's buildspec: log in to the registry, build the app's image, push
/// `…/app:latest`, write `imagedefinitions.json`. The registry and its credentials come from
/// the project's environment, the commit from the pipeline action's `EnvironmentVariables`.
const TUTORIAL_BUILDSPEC: &str = r#"version: 0.2
phases:
  pre_build:
    commands:
      - echo "$REGISTRY_PASSWORD" | docker login -u "$REGISTRY_USER" --password-stdin "$REGISTRY"
      - IMAGE_URI="$REGISTRY/$REPO:latest"
  build:
    commands:
      - echo "initiator=$CODEBUILD_INITIATOR"
      - docker build -q -t "$IMAGE_URI" -t "$REGISTRY/$REPO:$COMMIT" .
  post_build:
    commands:
      - docker push "$IMAGE_URI"
      - printf '[{"name":"app","imageUri":"%s"}]' "$IMAGE_URI" > imagedefinitions.json
artifacts:
  files:
    - imagedefinitions.json
"#;

/// The app: busybox httpd serving `index.html` on 8080 (built from the local test image, no
/// public image involved).
fn app_repo(repo: &std::path::Path, page: &str) {
    std::fs::create_dir_all(repo).unwrap();
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("buildspec.yml"), TUTORIAL_BUILDSPEC).unwrap();
    std::fs::write(
        repo.join("Dockerfile"),
        "FROM localbuild-test/busybox:1\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    std::fs::write(repo.join("index.html"), page).unwrap();
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "first version"]);
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

/// The port the deploy action published, from its `externalExecutionUrl`.
fn deployed_port(state: &Value) -> u16 {
    let url = state["stageStates"][2]["actionStates"][0]["latestExecution"]["externalExecutionUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no deploy URL: {state:#}"));
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn service_containers(label: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=localbuild.ecs-service={label}"),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Removes a service's containers at the end of a test, passed or not.
struct ServiceGuard(String);

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        let ids = service_containers(&self.0);
        if !ids.is_empty() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

#[test]
fn the_tutorial_pipeline_pushes_to_a_registry_deploys_and_reruns_on_a_commit() {
    let reg = Registry::start();
    let s = Serve::start(&[]);
    let name = format!("web-{}", std::process::id());
    let repo_name = format!("tutorial/app-{}", std::process::id());
    let latest = format!("{}/{repo_name}:latest", reg.addr());
    let _latest = TagGuard(latest.clone());
    let _service = ServiceGuard(format!("local/{name}"));
    let repo = s.home.path().join("git/acme/web");
    app_repo(&repo, "version one\n");
    let first = git(&repo, &["rev-parse", "HEAD"]);
    let _first = TagGuard(format!("{}/{repo_name}:{first}", reg.addr()));

    let conn = connection(&s);
    let env = json!({"type": "LINUX_CONTAINER", "image": DOCKER_IMAGE,
        "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": true,
        "environmentVariables": [
            {"name": "REGISTRY", "value": reg.addr()},
            {"name": "REPO", "value": repo_name},
            {"name": "REGISTRY_USER", "value": reg.user()},
            {"name": "REGISTRY_PASSWORD", "value": reg.password()}]})
    .to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "webbuild",
        "--source",
        r#"{"type": "CODEPIPELINE"}"#,
        "--artifacts",
        "type=CODEPIPELINE",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let file = write_json(s.home.path(), &declaration(&name, &conn, "webbuild", true));
    let created = s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    assert_eq!(created["pipeline"]["version"], 1);

    let execs = wait_executions(&s, &name, 1);
    assert_eq!(
        execs[0]["status"],
        "Succeeded",
        "{execs:#?}\n{:#}",
        s.ok(&["codepipeline", "get-pipeline-state", "--name", &name])
    );
    assert_eq!(execs[0]["trigger"]["triggerType"], "CreatePipeline");
    assert_eq!(execs[0]["sourceRevisions"][0]["revisionId"], first.as_str());
    let digest_one = reg
        .manifest_digest(&repo_name, "latest")
        .unwrap()
        .unwrap_or_else(|| panic!("app:latest was not pushed\n{}", reg.log()));

    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    let build = &state["stageStates"][1]["actionStates"][0]["latestExecution"];
    let build_id = build["externalExecutionId"].as_str().unwrap().to_owned();
    let b = &s.ok(&["codebuild", "batch-get-builds", "--ids", &build_id])["builds"][0];
    assert_eq!(b["source"]["type"], "CODEPIPELINE");
    assert_eq!(b["initiator"], format!("codepipeline/{name}"));
    let port = deployed_port(&state);
    let page = wait_for("the first deployment to serve", 30, || {
        http_get(port)
            .filter(|p| p.contains("version one"))
            .map(Value::String)
    });
    assert!(page.as_str().unwrap().contains("200"), "{page}");

    // A commit to the watched branch starts the second execution by itself.
    std::fs::write(repo.join("index.html"), "version two\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "second version"]);
    let second = git(&repo, &["rev-parse", "HEAD"]);
    let _second = TagGuard(format!("{}/{repo_name}:{second}", reg.addr()));
    let execs = wait_executions(&s, &name, 2);
    assert_eq!(execs.len(), 2, "{execs:#?}");
    assert_eq!(execs[0]["status"], "Succeeded", "{execs:#?}");
    assert_eq!(execs[0]["trigger"]["triggerType"], "PollForSourceChanges");
    assert_eq!(
        execs[0]["sourceRevisions"][0]["revisionId"],
        second.as_str()
    );
    assert_eq!(
        execs[0]["sourceRevisions"][0]["revisionSummary"],
        "second version"
    );
    assert_eq!(execs[1]["sourceRevisions"][0]["revisionId"], first.as_str());
    assert!(execs[0]["startTime"].as_f64() > execs[1]["startTime"].as_f64());

    // The registry's app:latest moved.
    let digest_two = reg.manifest_digest(&repo_name, "latest").unwrap().unwrap();
    assert_ne!(digest_one, digest_two, "app:latest did not change");

    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    for st in state["stageStates"].as_array().unwrap() {
        assert_eq!(
            st["latestExecution"]["pipelineExecutionId"],
            execs[0]["pipelineExecutionId"]
        );
        assert_eq!(st["latestExecution"]["status"], "Succeeded");
    }
    assert_eq!(
        state["stageStates"][0]["actionStates"][0]["currentRevision"]["revisionId"],
        second.as_str()
    );
    let port = deployed_port(&state);
    wait_for("the second deployment to serve", 30, || {
        http_get(port)
            .filter(|p| p.contains("version two"))
            .map(Value::String)
    });
    // The previous container of the service is gone.
    assert_eq!(service_containers(&format!("local/{name}")).len(), 1);
    let got = s.ok(&[
        "codepipeline",
        "get-pipeline-execution",
        "--pipeline-name",
        &name,
        "--pipeline-execution-id",
        execs[0]["pipelineExecutionId"].as_str().unwrap(),
    ]);
    assert_eq!(
        got["pipelineExecution"]["artifactRevisions"][0]["revisionId"],
        second.as_str()
    );
    s.ok(&["codepipeline", "delete-pipeline", "--name", &name]);
}

#[test]
fn a_failing_build_fails_its_stage_and_invalid_declarations_are_refused() {
    let s = Serve::start(&[]);
    let repo = s.home.path().join("git/acme/web");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo building\n      - exit 3\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "broken"]);
    let conn = s.ok(&[
        "codestar-connections",
        "create-connection",
        "--provider-type",
        "GitHub",
        "--connection-name",
        "c",
    ])["ConnectionArn"]
        .as_str()
        .unwrap()
        .to_owned();
    project(&s, "failing", "localbuild-test/busybox:1", false);
    let file = write_json(
        s.home.path(),
        &declaration("broken", &conn, "failing", true),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let execs = wait_executions(&s, "broken", 1);
    assert_eq!(execs[0]["status"], "Failed", "{execs:#?}");
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", "broken"]);
    let build = &state["stageStates"][1];
    assert_eq!(build["latestExecution"]["status"], "Failed");
    let latest = &build["actionStates"][0]["latestExecution"];
    assert_eq!(latest["status"], "Failed");
    assert_eq!(latest["errorDetails"]["code"], "JobFailed");
    let msg = latest["errorDetails"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("Build terminated with state: FAILED. Phase: BUILD"),
        "{msg}"
    );
    assert!(msg.contains("COMMAND_EXECUTION_ERROR"), "{msg}");
    // The deploy never ran.
    assert!(
        state["stageStates"][2].get("latestExecution").is_none(),
        "{state:#}"
    );
    assert!(
        state["stageStates"][2]["actionStates"][0]
            .get("latestExecution")
            .is_none()
    );

    // Invalid declarations.
    let err = s
        .aws(&["codepipeline", "create-pipeline", "--cli-input-json", &file])
        .unwrap_err();
    assert!(err.contains("PipelineNameInUseException"), "{err}");
    let mut d = declaration("one", &conn, "failing", false);
    d["pipeline"]["stages"].as_array_mut().unwrap().truncate(1);
    let err = s
        .aws(&[
            "codepipeline",
            "create-pipeline",
            "--cli-input-json",
            &write_json(s.home.path(), &d),
        ])
        .unwrap_err();
    assert!(
        err.contains("InvalidStructureException") && err.contains("minimum of 2 stages"),
        "{err}"
    );
    let mut d = declaration("ecr", &conn, "failing", false);
    d["pipeline"]["stages"][0]["actions"][0]["actionTypeId"]["provider"] = json!("ECR");
    let err = s
        .aws(&[
            "codepipeline",
            "create-pipeline",
            "--cli-input-json",
            &write_json(s.home.path(), &d),
        ])
        .unwrap_err();
    assert!(
        err.contains("InvalidActionDeclarationException")
            && err.contains("action 'Source' in stage 'Source'")
            && err.contains("Source/AWS/CodeStarSourceConnection"),
        "{err}"
    );
    let mut d = declaration("nobranch", &conn, "failing", false);
    d["pipeline"]["stages"][0]["actions"][0]["configuration"]
        .as_object_mut()
        .unwrap()
        .remove("BranchName");
    let err = s
        .aws(&[
            "codepipeline",
            "create-pipeline",
            "--cli-input-json",
            &write_json(s.home.path(), &d),
        ])
        .unwrap_err();
    assert!(
        err.contains("InvalidActionDeclarationException") && err.contains("'BranchName'"),
        "{err}"
    );
    let mut d = declaration("noinput", &conn, "failing", false);
    d["pipeline"]["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "Nothing"}]);
    let err = s
        .aws(&[
            "codepipeline",
            "create-pipeline",
            "--cli-input-json",
            &write_json(s.home.path(), &d),
        ])
        .unwrap_err();
    assert!(
        err.contains("InvalidStructureException")
            && err.contains("'Nothing'")
            && err.contains("stage 'Build'"),
        "{err}"
    );
    let err = s
        .aws(&["codepipeline", "get-pipeline", "--name", "missing"])
        .unwrap_err();
    assert!(err.contains("PipelineNotFoundException"), "{err}");
    let listed = s.ok(&["codepipeline", "list-pipelines"]);
    assert_eq!(listed["pipelines"].as_array().unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------
// Executions: approvals, retries, stop and abandon, transitions, supersede, restarts

/// A CodePipeline-typed project whose buildspec is part of the project (busybox image).
pub(crate) fn inline_project(s: &Serve, name: &str, commands: &[&str]) {
    let mut buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n".to_owned();
    for c in commands {
        buildspec.push_str(&format!("      - {c}\n"));
    }
    project_with(s, name, &buildspec);
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
    let last = std::cell::RefCell::new(Value::Null);
    let deadline = Instant::now() + Duration::from_secs(120);
    wait_for(&format!("{stage_name} to run in {id}"), 121, || {
        let st = state(s, name);
        assert!(
            Instant::now() < deadline,
            "{stage_name} did not run in {id}: {:#}\n{:#}",
            last.borrow(),
            execution(s, name, id)
        );
        *last.borrow_mut() = st.clone();
        let stg = stage(&st, stage_name);
        (stg["latestExecution"]["pipelineExecutionId"] == id
            && stg["actionStates"][0]["latestExecution"]["status"] == "InProgress")
            .then(|| stg["actionStates"][0]["latestExecution"].clone())
    })
}

fn wait_execution(
    s: &Serve,
    name: &str,
    id: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
    wait_for(&format!("execution {id} {what}"), 180, || {
        let e = execution(s, name, id);
        cond(&e).then_some(e)
    })
}

fn first_execution(s: &Serve, name: &str) -> String {
    wait_for("the first execution", 30, || {
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

#[test]
fn a_manual_approval_waits_for_its_token_and_a_rejected_stage_is_retried() {
    let s = Serve::start(&[]);
    plain_repo(&s, "gated");
    let conn = connection(&s);
    inline_project(&s, "gatedbuild", &["echo built"]);
    let file = write_json(
        s.home.path(),
        &staged("gated", &conn, "gated", "gatedbuild", true),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let id = first_execution(&s, "gated");

    // The approval waits, with a token, and the build stage is not reached.
    let waiting = wait_action_running(&s, "gated", "Approve", &id);
    let token = waiting["token"].as_str().expect("a token").to_owned();
    assert!(
        stage(&state(&s, "gated"), "Build")
            .get("latestExecution")
            .is_none()
    );
    // `localbuild pipeline` reads the same store, beside the running server.
    let status = cli(&s, &["pipeline", "status", "gated"]);
    assert!(status.contains("Approve  InProgress"), "{status}");
    assert!(
        status.contains(&format!("waiting for approval, token {token}")),
        "{status}"
    );
    assert!(status.contains("Build  not run"), "{status}");
    let listed = cli(&s, &["pipeline", "list"]);
    assert!(
        listed
            .lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("gated ")),
        "{listed}"
    );
    let execs = cli(&s, &["pipeline", "executions", "gated", "--json"]);
    let execs: Value = serde_json::from_str(&execs).unwrap();
    assert_eq!(execs[0]["pipelineExecutionId"], id.as_str());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .env("LOCALBUILD_HOME", s.home.path())
        .args(["pipeline", "status", "missing"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("does not have a pipeline with name 'missing'")
    );
    let err = approve(
        &s,
        "gated",
        "00000000-0000-0000-0000-000000000000",
        "Approved",
        "x",
    )
    .unwrap_err();
    assert!(err.contains("InvalidApprovalTokenException"), "{err}");
    let err = s
        .aws(&[
            "codepipeline",
            "put-approval-result",
            "--pipeline-name",
            "gated",
            "--stage-name",
            "Nope",
            "--action-name",
            "Approval",
            "--token",
            &token,
            "--result",
            "summary=x,status=Approved",
        ])
        .unwrap_err();
    assert!(
        err.contains("StageNotFoundException") && err.contains("'Nope'"),
        "{err}"
    );

    // Rejected: the stage and the execution fail; the build never runs.
    let out = approve(&s, "gated", &token, "Rejected", "not today").unwrap();
    assert!(out["approvedAt"].is_number(), "{out}");
    let e = wait_execution(&s, "gated", &id, "to fail", |e| e["status"] == "Failed");
    assert_eq!(e["statusSummary"], "not today", "{e:#}");
    let st = state(&s, "gated");
    let latest = &stage(&st, "Approve")["actionStates"][0]["latestExecution"];
    assert_eq!(latest["status"], "Failed");
    assert_eq!(latest["summary"], "not today");
    assert!(latest.get("token").is_none(), "{latest:#}");
    assert!(
        latest["errorDetails"]["message"]
            .as_str()
            .unwrap()
            .contains("rejected"),
        "{latest:#}"
    );
    assert!(stage(&st, "Build").get("latestExecution").is_none());
    let err = approve(&s, "gated", &token, "Approved", "too late").unwrap_err();
    assert!(err.contains("ApprovalAlreadyCompletedException"), "{err}");

    // Retry the failed stage: a new approval (a new token), approved, and the build runs.
    let err = s
        .aws(&[
            "codepipeline",
            "retry-stage-execution",
            "--pipeline-name",
            "gated",
            "--stage-name",
            "Build",
            "--pipeline-execution-id",
            &id,
            "--retry-mode",
            "FAILED_ACTIONS",
        ])
        .unwrap_err();
    assert!(err.contains("StageNotRetryableException"), "{err}");
    let out = s.ok(&[
        "codepipeline",
        "retry-stage-execution",
        "--pipeline-name",
        "gated",
        "--stage-name",
        "Approve",
        "--pipeline-execution-id",
        &id,
        "--retry-mode",
        "FAILED_ACTIONS",
    ]);
    assert_eq!(out["pipelineExecutionId"], id.as_str());
    let again = wait_action_running(&s, "gated", "Approve", &id);
    let token2 = again["token"].as_str().unwrap().to_owned();
    assert_ne!(token, token2);
    approve(&s, "gated", &token2, "Approved", "go").unwrap();
    let e = wait_execution(&s, "gated", &id, "to succeed", |e| {
        e["status"] != "InProgress"
    });
    assert_eq!(e["status"], "Succeeded", "{e:#}\n{:#}", state(&s, "gated"));
    assert_eq!(
        executions(&s, "gated").len(),
        1,
        "a retry is the same execution"
    );

    // Every start of an action, newest first, with its input and result.
    let details = s.ok(&[
        "codepipeline",
        "list-action-executions",
        "--pipeline-name",
        "gated",
        "--filter",
        &format!("pipelineExecutionId={id}"),
    ])["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .clone();
    let seen: Vec<(&str, &str)> = details
        .iter()
        .map(|d| {
            (
                d["actionName"].as_str().unwrap(),
                d["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Build", "Succeeded"),
            ("Approval", "Succeeded"),
            ("Approval", "Failed"),
            ("Source", "Succeeded")
        ],
        "{details:#?}"
    );
    let build = &details[0];
    assert_eq!(
        build["input"]["resolvedConfiguration"]["ProjectName"],
        "gatedbuild"
    );
    assert_eq!(build["input"]["inputArtifacts"][0]["name"], "Src");
    assert_eq!(
        build["input"]["inputArtifacts"][0]["s3location"]["bucket"],
        "artifacts"
    );
    let build_id = build["output"]["executionResult"]["externalExecutionId"]
        .as_str()
        .unwrap();
    assert!(build_id.starts_with("gatedbuild:"), "{build:#}");
    let source = &details[3];
    assert!(
        source["output"]["outputVariables"]["CommitId"].is_string(),
        "{source:#}"
    );
    let err = s
        .aws(&[
            "codepipeline",
            "list-action-executions",
            "--pipeline-name",
            "gated",
            "--filter",
            "pipelineExecutionId=00000000-0000-0000-0000-000000000000",
        ])
        .unwrap_err();
    assert!(err.contains("PipelineExecutionNotFoundException"), "{err}");
}

#[test]
fn stop_waits_for_running_actions_and_abandon_does_not() {
    let s = Serve::start(&[]);
    plain_repo(&s, "stoppable");
    let conn = connection(&s);
    inline_project(&s, "short", &["echo started", "sleep 20", "echo done"]);
    inline_project(&s, "long", &["echo started", "sleep 300"]);
    let file = write_json(
        s.home.path(),
        &staged("waits", &conn, "stoppable", "short", false),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let id = first_execution(&s, "waits");
    wait_action_running(&s, "waits", "Build", &id);
    s.ok(&[
        "codepipeline",
        "stop-pipeline-execution",
        "--pipeline-name",
        "waits",
        "--pipeline-execution-id",
        &id,
        "--reason",
        "enough",
    ]);
    let e = execution(&s, "waits", &id);
    assert!(
        e["status"] == "Stopping" || e["status"] == "Stopped",
        "{e:#}"
    );
    if e["status"] == "Stopping" {
        let err = s
            .aws(&[
                "codepipeline",
                "stop-pipeline-execution",
                "--pipeline-name",
                "waits",
                "--pipeline-execution-id",
                &id,
            ])
            .unwrap_err();
        // Unless the build ended in between.
        assert!(
            err.contains("DuplicatedStopRequestException")
                || (err.contains("PipelineExecutionNotStoppableException")
                    && execution(&s, "waits", &id)["status"] == "Stopped"),
            "{err}"
        );
    }
    let e = wait_execution(&s, "waits", &id, "to stop", |e| e["status"] == "Stopped");
    assert_eq!(e["statusSummary"], "enough");
    // The running build was left to finish.
    let st = state(&s, "waits");
    let build = &stage(&st, "Build")["actionStates"][0]["latestExecution"];
    assert_eq!(build["status"], "Succeeded", "{st:#}");
    let err = s
        .aws(&[
            "codepipeline",
            "stop-pipeline-execution",
            "--pipeline-name",
            "waits",
            "--pipeline-execution-id",
            &id,
        ])
        .unwrap_err();
    assert!(
        err.contains("PipelineExecutionNotStoppableException"),
        "{err}"
    );

    // Abandon: the execution ends at once, the build is stopped, nothing is left.
    let file = write_json(
        s.home.path(),
        &staged("abandons", &conn, "stoppable", "long", false),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let id = first_execution(&s, "abandons");
    let running = wait_action_running(&s, "abandons", "Build", &id);
    let build_id = wait_for("the build id", 30, || {
        let st = state(&s, "abandons");
        stage(&st, "Build")["actionStates"][0]["latestExecution"]["externalExecutionId"]
            .as_str()
            .map(Value::from)
    });
    let _ = running;
    s.ok(&[
        "codepipeline",
        "stop-pipeline-execution",
        "--pipeline-name",
        "abandons",
        "--pipeline-execution-id",
        &id,
        "--abandon",
    ]);
    let e = wait_execution(&s, "abandons", &id, "to be stopped", |e| {
        e["status"] == "Stopped"
    });
    assert_eq!(e["status"], "Stopped");
    let st = state(&s, "abandons");
    assert_eq!(
        stage(&st, "Build")["actionStates"][0]["latestExecution"]["status"],
        "Abandoned",
        "{st:#}"
    );
    assert_eq!(stage(&st, "Build")["latestExecution"]["status"], "Stopped");
    let b = wait_for("the abandoned build to stop", 60, || {
        let b = s.ok(&[
            "codebuild",
            "batch-get-builds",
            "--ids",
            build_id.as_str().unwrap(),
        ])["builds"][0]
            .clone();
        (b["buildComplete"] == true).then_some(b)
    });
    assert_eq!(b["buildStatus"], "STOPPED");
    assert!(
        crate::util::containers_of(build_id.as_str().unwrap()).is_empty(),
        "the abandoned build's container is gone"
    );
}

#[test]
fn a_disabled_transition_holds_executions_and_a_newer_commit_supersedes_the_held_one() {
    let s = Serve::start(&[]);
    let repo = plain_repo(&s, "held");
    let conn = connection(&s);
    inline_project(&s, "heldbuild", &["echo built"]);
    let file = write_json(
        s.home.path(),
        &staged("held", &conn, "held", "heldbuild", false),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let first = first_execution(&s, "held");
    wait_execution(&s, "held", &first, "to succeed", |e| {
        e["status"] == "Succeeded"
    });

    let err = s
        .aws(&[
            "codepipeline",
            "disable-stage-transition",
            "--pipeline-name",
            "held",
            "--stage-name",
            "Nope",
            "--transition-type",
            "Inbound",
            "--reason",
            "x",
        ])
        .unwrap_err();
    assert!(err.contains("StageNotFoundException"), "{err}");
    s.ok(&[
        "codepipeline",
        "disable-stage-transition",
        "--pipeline-name",
        "held",
        "--stage-name",
        "Build",
        "--transition-type",
        "Inbound",
        "--reason",
        "freeze (release day)",
    ]);
    let inbound = stage(&state(&s, "held"), "Build")["inboundTransitionState"].clone();
    assert_eq!(inbound["enabled"], false, "{inbound:#}");
    assert_eq!(inbound["disabledReason"], "freeze (release day)");

    // A commit: its execution passes Source and waits before Build.
    std::fs::write(repo.join("README"), "two\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "second"]);
    let second = wait_for("the second execution", 30, || {
        let e = executions(&s, "held");
        (e.len() == 2).then(|| e[0]["pipelineExecutionId"].clone())
    });
    let second = second.as_str().unwrap().to_owned();
    wait_for("the second execution to pass Source", 60, || {
        let st = state(&s, "held");
        (stage(&st, "Source")["latestExecution"]["pipelineExecutionId"] == second.as_str()
            && stage(&st, "Source")["latestExecution"]["status"] == "Succeeded")
            .then_some(st)
    });
    assert_eq!(execution(&s, "held", &second)["status"], "InProgress");
    assert_eq!(
        stage(&state(&s, "held"), "Build")["latestExecution"]["pipelineExecutionId"],
        first.as_str(),
        "the held execution did not enter Build"
    );

    // A newer commit supersedes the held execution (SUPERSEDED mode, the default).
    std::fs::write(repo.join("README"), "three\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "third"]);
    let third = git(&repo, &["rev-parse", "HEAD"]);
    let e = wait_execution(&s, "held", &second, "to be superseded", |e| {
        e["status"] != "InProgress"
    });
    assert_eq!(e["status"], "Superseded", "{e:#}");
    let newest = wait_for("the third execution", 30, || {
        let e = executions(&s, "held");
        (e.len() == 3).then(|| e[0].clone())
    });
    assert_eq!(newest["sourceRevisions"][0]["revisionId"], third.as_str());

    // Enabled again: the newest goes on and succeeds.
    s.ok(&[
        "codepipeline",
        "enable-stage-transition",
        "--pipeline-name",
        "held",
        "--stage-name",
        "Build",
        "--transition-type",
        "Inbound",
    ]);
    let id = newest["pipelineExecutionId"].as_str().unwrap();
    let e = wait_execution(&s, "held", id, "to end", |e| e["status"] != "InProgress");
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(
        stage(&state(&s, "held"), "Build")["inboundTransitionState"]["enabled"],
        true
    );
    let statuses: Vec<Value> = executions(&s, "held")
        .iter()
        .map(|e| e["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        [json!("Succeeded"), json!("Superseded"), json!("Succeeded")]
    );
}

#[test]
fn a_restarted_server_fails_the_executions_it_lost_and_watches_again() {
    let mut s = Serve::start(&[]);
    let repo = plain_repo(&s, "restart");
    let conn = connection(&s);
    inline_project(&s, "slow", &["echo started", "sleep 300"]);
    let file = write_json(
        s.home.path(),
        &staged("restart", &conn, "restart", "slow", false),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let id = first_execution(&s, "restart");
    wait_action_running(&s, "restart", "Build", &id);
    let home = s.kill_9();

    let s = Serve::start_in(home, &[]);
    let e = execution(&s, "restart", &id);
    assert_eq!(e["status"], "Failed", "{e:#}");
    assert!(
        e["statusSummary"]
            .as_str()
            .unwrap()
            .contains("localbuild serve stopped while this execution was in progress"),
        "{e:#}"
    );
    let st = state(&s, "restart");
    let build = stage(&st, "Build");
    assert_eq!(build["latestExecution"]["status"], "Failed");
    assert_eq!(
        build["actionStates"][0]["latestExecution"]["status"],
        "Failed"
    );
    assert_eq!(
        build["actionStates"][0]["latestExecution"]["errorDetails"]["code"],
        "JobFailed"
    );

    // Watching resumed: a commit starts an execution.
    std::fs::write(repo.join("README"), "two\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "after the restart"]);
    let newest = wait_for("an execution after the restart", 30, || {
        let e = executions(&s, "restart");
        (e.len() == 2).then(|| e[0].clone())
    });
    assert_eq!(newest["trigger"]["triggerType"], "PollForSourceChanges");
    let id = newest["pipelineExecutionId"].as_str().unwrap().to_owned();
    wait_action_running(&s, "restart", "Build", &id);
    s.ok(&[
        "codepipeline",
        "stop-pipeline-execution",
        "--pipeline-name",
        "restart",
        "--pipeline-execution-id",
        &id,
        "--abandon",
    ]);
    wait_execution(&s, "restart", &id, "to stop", |e| e["status"] == "Stopped");
}

/// Every CodePipeline and connections response and error, through boto3, checked against
/// botocore's own models (`tests/api/walk_codepipeline.py`, `tests/api/check_shapes.py`).
#[test]
fn pipeline_responses_match_botocores_model() {
    let s = Serve::start(&[]);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/walk_codepipeline.py"
    );
    let out = std::process::Command::new(crate::util::client_tool("python3"))
        .arg(script)
        .arg("localbuild-test/busybox:1")
        .arg(s.home.path().join("git"))
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("walked"), "{stdout}");
}

#[test]
fn a_batch_enabled_build_action_runs_a_batch_and_combines_its_artifacts() {
    let s = Serve::start(&[]);
    plain_repo(&s, "batched");
    let conn = connection(&s);
    let buildspec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: linux\n    - identifier: docs\n      env:\n        variables:\n          KIND: docs\nphases:\n  build:\n    commands:\n      - echo \"${KIND:-linux} of $CODEBUILD_BATCH_BUILD_IDENTIFIER\" > out.txt\nartifacts:\n  files:\n    - out.txt\n";
    let env = json!({"type": "LINUX_CONTAINER", "image": "localbuild-test/busybox:1", "computeType": "BUILD_GENERAL1_SMALL"}).to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "batchbuild",
        "--source",
        &json!({"type": "CODEPIPELINE", "buildspec": buildspec}).to_string(),
        "--artifacts",
        "type=CODEPIPELINE",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let mut d = staged("batched", &conn, "batched", "batchbuild", false);
    let build = &mut d["pipeline"]["stages"][1]["actions"][0];
    build["configuration"]["BatchEnabled"] = json!("true");
    build["configuration"]["CombineArtifacts"] = json!("true");
    build["outputArtifacts"] = json!([{"name": "Combined"}]);
    let file = write_json(s.home.path(), &d);
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let id = first_execution(&s, "batched");
    let e = wait_execution(&s, "batched", &id, "to end", |e| {
        e["status"] != "InProgress"
    });
    assert_eq!(
        e["status"],
        "Succeeded",
        "{e:#}\n{:#}",
        state(&s, "batched")
    );

    // The action ran a batch build: its id is the batch's.
    let st = state(&s, "batched");
    let latest = &stage(&st, "Build")["actionStates"][0]["latestExecution"];
    let batch_id = latest["externalExecutionId"].as_str().unwrap();
    let batch =
        &s.ok(&["codebuild", "batch-get-build-batches", "--ids", batch_id])["buildBatches"][0];
    assert_eq!(batch["buildBatchStatus"], "SUCCEEDED", "{batch:#}");
    assert_eq!(batch["buildGroups"].as_array().unwrap().len(), 2);

    // The output artifact holds every build's artifacts, under its identifier (the batch
    // engine's combined layout: <identifier>/primary/ for the primary artifacts).
    let details = s.ok(&[
        "codepipeline",
        "list-action-executions",
        "--pipeline-name",
        "batched",
    ])["actionExecutionDetails"]
        .clone();
    let out = &details[0]["output"]["outputArtifacts"][0];
    assert_eq!(out["name"], "Combined", "{details:#}");
    let zip = s
        .home
        .path()
        .join("s3")
        .join(out["s3location"]["bucket"].as_str().unwrap())
        .join(out["s3location"]["key"].as_str().unwrap());
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).unwrap()).unwrap();
    let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    let mut read = |name: &str| {
        let mut text = String::new();
        archive
            .by_name(name)
            .unwrap_or_else(|e| panic!("{name} in {} ({names:?}): {e}", zip.display()))
            .read_to_string(&mut text)
            .unwrap();
        text
    };
    assert_eq!(read("linux/primary/out.txt"), "linux of linux\n");
    assert_eq!(read("docs/primary/out.txt"), "docs of docs\n");
}

#[test]
fn v2_variables_have_defaults_and_overrides_and_queued_executions_wait_their_turn() {
    let s = Serve::start(&[]);
    plain_repo(&s, "vars");
    let conn = connection(&s);
    inline_project(&s, "greeter", &["echo \"greeting=$GREETING\"", "sleep 2"]);
    let mut d = staged("vars", &conn, "vars", "greeter", false);
    let p = &mut d["pipeline"];
    p["stages"][0]["actions"][0]["configuration"]["DetectChanges"] = json!("false");
    p["stages"][1]["actions"][0]["configuration"]["EnvironmentVariables"] = json!(
        "[{\"name\":\"GREETING\",\"value\":\"#{variables.greeting}\",\"type\":\"PLAINTEXT\"}]"
    );
    p["variables"] = json!([{"name": "greeting", "defaultValue": "hello", "description": "who"}]);
    p["executionMode"] = json!("QUEUED");

    // Variables need a V2 pipeline.
    let err = s
        .aws(&[
            "codepipeline",
            "create-pipeline",
            "--cli-input-json",
            &write_json(s.home.path(), &d),
        ])
        .unwrap_err();
    assert!(
        err.contains("ValidationException") && err.contains("V2"),
        "{err}"
    );
    d["pipeline"]["pipelineType"] = json!("V2");
    s.ok(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &write_json(s.home.path(), &d),
    ]);
    let first = first_execution(&s, "vars");
    let err = s
        .aws(&[
            "codepipeline",
            "start-pipeline-execution",
            "--name",
            "vars",
            "--variables",
            "name=nope,value=x",
        ])
        .unwrap_err();
    assert!(
        err.contains("ValidationException") && err.contains("'nope'"),
        "{err}"
    );
    let second = s.ok(&[
        "codepipeline",
        "start-pipeline-execution",
        "--name",
        "vars",
        "--variables",
        "name=greeting,value=bonjour",
    ])["pipelineExecutionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let e1 = wait_execution(&s, "vars", &first, "to end", |e| {
        e["status"] != "InProgress"
    });
    let e2 = wait_execution(&s, "vars", &second, "to end", |e| {
        e["status"] != "InProgress"
    });
    assert_eq!(e1["status"], "Succeeded", "{e1:#}");
    assert_eq!(e2["status"], "Succeeded", "QUEUED never supersedes: {e2:#}");
    assert_eq!(e1["executionMode"], "QUEUED");
    assert_eq!(
        e1["variables"],
        json!([{"name": "greeting", "resolvedValue": "hello"}])
    );
    assert_eq!(
        e2["variables"],
        json!([{"name": "greeting", "resolvedValue": "bonjour"}])
    );

    // The second started its first action only once the first had ended.
    let details = |id: &str| {
        s.ok(&[
            "codepipeline",
            "list-action-executions",
            "--pipeline-name",
            "vars",
            "--filter",
            &format!("pipelineExecutionId={id}"),
        ])["actionExecutionDetails"]
            .as_array()
            .unwrap()
            .clone()
    };
    let (d1, d2) = (details(&first), details(&second));
    let first_end = d1[0]["lastUpdateTime"].as_f64().unwrap();
    let second_start = d2.last().unwrap()["startTime"].as_f64().unwrap();
    assert!(second_start >= first_end, "{d1:#?}\n{d2:#?}");
    assert_eq!(
        d2[0]["input"]["resolvedConfiguration"]["EnvironmentVariables"],
        "[{\"name\":\"GREETING\",\"value\":\"bonjour\",\"type\":\"PLAINTEXT\"}]"
    );
    let build = d2[0]["output"]["executionResult"]["externalExecutionId"]
        .as_str()
        .unwrap();
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/greeter",
        "--log-stream-name",
        build.split_once(':').unwrap().1,
        "--start-from-head",
    ]);
    assert!(events.to_string().contains("greeting=bonjour"), "{events}");
}

/// A zip at `path` holding `index.html` with `page`.
fn site_zip(path: &std::path::Path, page: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    z.start_file("index.html", zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(page.as_bytes()).unwrap();
    z.finish().unwrap();
}

#[test]
fn an_s3_source_is_watched_and_an_s3_deploy_extracts_into_the_bucket() {
    let s = Serve::start(&[]);
    let object = s.home.path().join("s3/src-bucket/site/app.zip");
    site_zip(&object, "<h1>one</h1>\n");
    let pipeline = |deploy: Value| {
        json!({"pipeline": {
            "name": "site",
            "roleArn": "arn:aws:iam::000000000000:role/pipeline",
            "artifactStore": {"type": "S3", "location": "artifacts"},
            "stages": [
                {"name": "Source", "actions": [{
                    "name": "Source", "namespace": "SourceVariables",
                    "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                    "configuration": {"S3Bucket": "src-bucket", "S3ObjectKey": "site/app.zip"},
                    "outputArtifacts": [{"name": "Site"}]}]},
                {"name": "Deploy", "actions": [{
                    "name": "Publish",
                    "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
                    "configuration": deploy,
                    "inputArtifacts": [{"name": "Site"}]}]}]}})
    };
    let err = s
        .aws(&[
            "codepipeline",
            "create-pipeline",
            "--cli-input-json",
            &write_json(
                s.home.path(),
                &pipeline(json!({"BucketName": "web", "Extract": "false"})),
            ),
        ])
        .unwrap_err();
    assert!(
        err.contains("InvalidActionDeclarationException") && err.contains("'ObjectKey'"),
        "{err}"
    );
    let err = s
        .aws(&[
            "codepipeline",
            "create-pipeline",
            "--cli-input-json",
            &write_json(
                s.home.path(),
                &pipeline(json!({"BucketName": "../etc", "Extract": "true"})),
            ),
        ])
        .unwrap_err();
    assert!(err.contains("InvalidActionDeclarationException"), "{err}");

    let file = write_json(
        s.home.path(),
        &pipeline(json!({"BucketName": "web", "Extract": "true", "ObjectKey": "www"})),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let first = first_execution(&s, "site");
    let e = wait_execution(&s, "site", &first, "to end", |e| {
        e["status"] != "InProgress"
    });
    assert_eq!(e["status"], "Succeeded", "{e:#}\n{:#}", state(&s, "site"));
    let deployed = s.home.path().join("s3/web/www/index.html");
    assert_eq!(
        std::fs::read_to_string(&deployed).unwrap(),
        "<h1>one</h1>\n"
    );
    let source = &s.ok(&[
        "codepipeline",
        "list-action-executions",
        "--pipeline-name",
        "site",
    ])["actionExecutionDetails"][1];
    assert_eq!(source["actionName"], "Source");
    assert!(
        source["output"]["outputVariables"]["ETag"].is_string(),
        "{source:#}"
    );

    // A new object version starts an execution by itself; the deploy replaces the page.
    site_zip(&object, "<h1>two, longer</h1>\n");
    let newest = wait_for("an execution for the new object", 30, || {
        let e = executions(&s, "site");
        (e.len() == 2).then(|| e[0].clone())
    });
    assert_eq!(newest["trigger"]["triggerType"], "PollForSourceChanges");
    let id = newest["pipelineExecutionId"].as_str().unwrap();
    let e = wait_execution(&s, "site", id, "to end", |e| e["status"] != "InProgress");
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(
        std::fs::read_to_string(&deployed).unwrap(),
        "<h1>two, longer</h1>\n"
    );
    assert_ne!(
        e["artifactRevisions"][0]["revisionId"],
        executions(&s, "site")[1]["sourceRevisions"][0]["revisionId"]
    );
}

#[test]
fn v2_push_triggers_filter_branches_and_file_paths() {
    let s = Serve::start(&[]);
    let repo = plain_repo(&s, "filtered");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("src/app.rs"), "fn main() {}\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "app"]);
    let conn = connection(&s);
    inline_project(&s, "filteredbuild", &["echo built"]);
    let mut d = staged("filtered", &conn, "filtered", "filteredbuild", false);
    d["pipeline"]["pipelineType"] = json!("V2");
    d["pipeline"]["triggers"] = json!([{
        "providerType": "CodeStarSourceConnection",
        "gitConfiguration": {"sourceActionName": "Source", "push": [{
            "branches": {"includes": ["main", "release/*"]},
            "filePaths": {"includes": ["src/**"], "excludes": ["**/*.md"]}}]}}]);
    let mut v1 = d.clone();
    v1["pipeline"]["pipelineType"] = json!("V1");
    let err = s
        .aws(&[
            "codepipeline",
            "create-pipeline",
            "--cli-input-json",
            &write_json(s.home.path(), &v1),
        ])
        .unwrap_err();
    assert!(
        err.contains("ValidationException") && err.contains("V2"),
        "{err}"
    );
    s.ok(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &write_json(s.home.path(), &d),
    ]);
    let first = first_execution(&s, "filtered");
    wait_execution(&s, "filtered", &first, "to succeed", |e| {
        e["status"] == "Succeeded"
    });

    // Pushes the filters refuse: only a Markdown file on main; src on an unlisted branch.
    std::fs::write(repo.join("src/NOTES.md"), "notes\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "notes only"]);
    git(&repo, &["checkout", "-q", "-b", "feature/x"]);
    std::fs::write(repo.join("src/app.rs"), "fn main() { feature() }\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "feature"]);
    // A push it admits: src on release/1.
    git(&repo, &["checkout", "-q", "-b", "release/1", "main"]);
    std::fs::write(repo.join("src/app.rs"), "fn main() { release() }\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "release fix"]);
    let release = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["checkout", "-q", "main"]);

    let newest = wait_for("the release execution", 30, || {
        executions(&s, "filtered")
            .into_iter()
            .find(|e| e["sourceRevisions"][0]["revisionId"] == release.as_str())
    });
    assert_eq!(newest["trigger"]["triggerType"], "WebhookV2", "{newest:#}");
    let id = newest["pipelineExecutionId"].as_str().unwrap();
    let e = wait_execution(&s, "filtered", id, "to end", |e| {
        e["status"] != "InProgress"
    });
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    let details = s.ok(&[
        "codepipeline",
        "list-action-executions",
        "--pipeline-name",
        "filtered",
        "--filter",
        &format!("pipelineExecutionId={id}"),
    ])["actionExecutionDetails"]
        .clone();
    let source = details
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["actionName"] == "Source")
        .unwrap()
        .clone();
    assert_eq!(
        source["output"]["outputVariables"]["BranchName"],
        "release/1"
    );
    assert_eq!(
        source["output"]["outputVariables"]["CommitId"],
        release.as_str()
    );
    // Only the admitted push started an execution.
    assert_eq!(
        executions(&s, "filtered").len(),
        2,
        "{:#?}",
        executions(&s, "filtered")
    );
}

/// `localbuild ARGS` against the running server, signed with its keys: exit code, stdout, stderr.
fn cli_to(s: &Serve, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .env("LOCALBUILD_HOME", s.home.path())
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env("AWS_ACCESS_KEY_ID", &s.keys.0)
        .env("AWS_SECRET_ACCESS_KEY", &s.keys.1)
        .env_remove("LOCALBUILD_LOG")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_creates_updates_starts_and_approves_through_the_running_server() {
    let s = Serve::with_credentials("AKIDCLI", "cli-secret");
    let dir = tempfile::tempdir().unwrap();
    plain_repo(&s, "clirepo");
    let conn = connection(&s);
    inline_project(&s, "clibuild", &["echo built"]);
    // The `--pipeline` form: the declaration alone.
    let definition = dir.path().join("pipeline.json");
    let declaration = &staged("clipipe", &conn, "clirepo", "clibuild", true)["pipeline"];
    std::fs::write(
        &definition,
        serde_json::to_string_pretty(declaration).unwrap(),
    )
    .unwrap();
    let definition = definition.to_str().unwrap();

    // A broken file is refused here, with its line and column, before any call.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"name\": \"x\",\n  \"stages\": [,]\n}\n").unwrap();
    let (code, _, err) = cli_to(&s, &["pipeline", "create", bad.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("bad.json:3:14: SerializationException: not valid JSON"),
        "{err}"
    );
    // The server wants signed calls: without keys the CLI gets its AWS error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .args(["pipeline", "create", definition])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MissingAuthenticationTokenException"), "{err}");

    // Create: the first execution starts and waits at the approval.
    let (code, out, err) = cli_to(&s, &["pipeline", "create", definition]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("Created pipeline clipipe (version 1)"),
        "{out}"
    );
    let (code, _, err) = cli_to(&s, &["pipeline", "create", definition]);
    assert_eq!(code, Some(1));
    assert!(err.contains("PipelineNameInUseException"), "{err}");
    let first = first_execution(&s, "clipipe");
    wait_action_running(&s, "clipipe", "Approve", &first);
    let (code, out, err) = cli_to(
        &s,
        &[
            "pipeline",
            "approve",
            "clipipe",
            "Approve",
            "Approval",
            "--summary",
            "ship",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "Approved Approve/Approval of clipipe");
    wait_execution(&s, "clipipe", &first, "to succeed", |e| {
        e["status"] == "Succeeded"
    });
    let (code, _, err) = cli_to(
        &s,
        &["pipeline", "approve", "clipipe", "Approve", "Approval"],
    );
    assert_eq!(code, Some(1));
    assert!(err.contains("is not waiting for approval"), "{err}");

    // Update: version 2. Start: a new execution, rejected this time.
    let (code, out, err) = cli_to(&s, &["pipeline", "update", definition]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), "Updated pipeline clipipe to version 2");
    assert_eq!(
        s.ok(&["codepipeline", "get-pipeline", "--name", "clipipe"])["pipeline"]["version"],
        2
    );
    let (code, out, err) = cli_to(&s, &["pipeline", "start", "clipipe"]);
    assert_eq!(code, Some(0), "{err}");
    let second = out.trim().to_owned();
    assert_ne!(second, first);
    wait_action_running(&s, "clipipe", "Approve", &second);
    let (code, _, err) = cli_to(
        &s,
        &[
            "pipeline",
            "approve",
            "clipipe",
            "Approve",
            "Approval",
            "--reject",
            "--summary",
            "no",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let e = wait_execution(&s, "clipipe", &second, "to fail", |e| {
        e["status"] == "Failed"
    });
    assert_eq!(e["statusSummary"], "no");

    // Usage and a server that is not there.
    let (code, _, err) = cli_to(
        &s,
        &["pipeline", "start", "clipipe", "--variable", "novalue"],
    );
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = cli_to(
        &s,
        &[
            "pipeline",
            "start",
            "clipipe",
            "--endpoint-url",
            "http://127.0.0.1:1",
        ],
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("no localbuild serve answers at http://127.0.0.1:1"),
        "{err}"
    );
}

/// A project whose buildspec is `buildspec` (inline), on the busybox image, for pipelines.
pub(crate) fn project_with(s: &Serve, name: &str, buildspec: &str) {
    let env = json!({"type": "LINUX_CONTAINER", "image": "localbuild-test/busybox:1", "computeType": "BUILD_GENERAL1_SMALL"}).to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        name,
        "--source",
        &json!({"type": "CODEPIPELINE", "buildspec": buildspec}).to_string(),
        "--artifacts",
        "type=CODEPIPELINE",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
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

#[test]
fn two_sources_feed_one_build_whose_secondary_artifacts_are_deployed_side_by_side() {
    let s = Serve::start(&[]);
    let front = plain_repo(&s, "front");
    let back = plain_repo(&s, "back");
    std::fs::write(back.join("README"), "backend\n").unwrap();
    git(&back, &["commit", "-q", "-am", "backend readme"]);
    let conn = connection(&s);
    project_with(
        &s,
        "both",
        &two_source_buildspec(&["echo \"from $FROM\"", "echo \"execution $EXEC\""]),
    );
    let deploy = |name: &str, input: &str, key: &str| {
        json!({"name": name,
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"BucketName": "web", "Extract": "true", "ObjectKey": key},
            "inputArtifacts": [{"name": input}]})
    };
    let definition = two_source_pipeline(
        "two",
        &conn,
        "both",
        json!({"EnvironmentVariables": "[{\"name\":\"FROM\",\"value\":\"#{FrontVars.CommitUrl}\",\"type\":\"PLAINTEXT\"},{\"name\":\"EXEC\",\"value\":\"#{codepipeline.PipelineExecutionId}\"}]"}),
        vec![deploy("Web", "Web", "w"), deploy("Api", "Api", "a")],
    );
    let file = write_json(s.home.path(), &definition);
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    std::fs::remove_file(file.trim_start_matches("file://")).unwrap();

    // The GitHub token is shown and kept as CodePipeline shows it: masked.
    let got = s.ok(&["codepipeline", "get-pipeline", "--name", "two"]);
    assert_eq!(
        got["pipeline"]["stages"][0]["actions"][0]["configuration"]["OAuthToken"],
        "****"
    );
    let first = first_execution(&s, "two");
    let e = wait_execution(&s, "two", &first, "to end", |e| e["status"] != "InProgress");
    assert_eq!(e["status"], "Succeeded", "{e:#}\n{:#}", state(&s, "two"));
    let web = s.home.path().join("s3/web");
    assert_eq!(
        std::fs::read_to_string(web.join("w/web.txt")).unwrap(),
        "one\n"
    );
    assert_eq!(
        std::fs::read_to_string(web.join("a/api.txt")).unwrap(),
        "backend\n"
    );

    // The build saw the secondary input and the GitHub action's variables.
    let commit = git(&front, &["rev-parse", "HEAD"]);
    let id = stage(&state(&s, "two"), "Build")["actionStates"][0]["latestExecution"]
        ["externalExecutionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let build = s.build(&id);
    assert_eq!(
        build["secondarySources"],
        json!([{"type": "CODEPIPELINE", "sourceIdentifier": "Back"}]),
        "{build:#}"
    );
    let log = cli(&s, &["builds", "logs", &id]);
    assert!(
        log.contains(&format!(
            "from https://github.com/acme/front/commit/{commit}"
        )),
        "{log}"
    );
    assert!(log.contains(&format!("execution {first}")), "{log}");
    let details = s.ok(&[
        "codepipeline",
        "list-action-executions",
        "--pipeline-name",
        "two",
    ])["actionExecutionDetails"]
        .clone();
    let front_run = details
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["actionName"] == "Front")
        .unwrap();
    assert_eq!(
        front_run["output"]["outputVariables"]["RepositoryName"],
        "front"
    );
    assert_eq!(
        front_run["output"]["outputVariables"]["CommitId"],
        commit.as_str()
    );
    assert!(files_holding(s.home.path(), b"ghp_notarealtoken42").is_empty());

    // GitHub (version 1) sources are watched on their `Branch`.
    std::fs::write(front.join("README"), "two\n").unwrap();
    git(&front, &["commit", "-q", "-am", "second"]);
    let newest = wait_for("an execution for the commit", 30, || {
        let e = executions(&s, "two");
        (e.len() == 2).then(|| e[0].clone())
    });
    let id = newest["pipelineExecutionId"].as_str().unwrap();
    let e = wait_execution(&s, "two", id, "to end", |e| e["status"] != "InProgress");
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(
        std::fs::read_to_string(web.join("w/web.txt")).unwrap(),
        "two\n"
    );
}

#[test]
fn parallel_executions_run_their_builds_side_by_side() {
    let s = Serve::start(&[]);
    plain_repo(&s, "par");
    let conn = connection(&s);
    // Long enough that a loaded machine still sees both at once; the test abandons them.
    inline_project(&s, "slow", &["sleep 600"]);
    let mut definition = staged("par", &conn, "par", "slow", false);
    definition["pipeline"]["pipelineType"] = json!("V2");
    definition["pipeline"]["executionMode"] = json!("PARALLEL");
    let file = write_json(s.home.path(), &definition);
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let first = first_execution(&s, "par");
    wait_action_running(&s, "par", "Build", &first);
    let second =
        s.ok(&["codepipeline", "start-pipeline-execution", "--name", "par"])["pipelineExecutionId"]
            .as_str()
            .unwrap()
            .to_owned();
    // Both builds in progress at once: neither execution waits for or supersedes the other.
    let ids = wait_for("two builds running at once", 120, || {
        let ids = s.ok(&[
            "codebuild",
            "list-builds-for-project",
            "--project-name",
            "slow",
        ])["ids"]
            .clone();
        let ids: Vec<&str> = ids.as_array()?.iter().filter_map(Value::as_str).collect();
        if ids.len() < 2 {
            return None;
        }
        let mut args = vec!["codebuild", "batch-get-builds", "--ids"];
        args.extend(&ids);
        let builds = s.ok(&args)["builds"].clone();
        let running = builds
            .as_array()?
            .iter()
            .filter(|b| b["buildStatus"] == "IN_PROGRESS" && b["currentPhase"] == "BUILD")
            .count();
        (running == 2).then(|| json!(ids))
    });
    assert_eq!(ids.as_array().unwrap().len(), 2);
    for id in [&first, &second] {
        s.ok(&[
            "codepipeline",
            "stop-pipeline-execution",
            "--pipeline-name",
            "par",
            "--pipeline-execution-id",
            id,
            "--abandon",
        ]);
        let e = wait_execution(&s, "par", id, "to stop", |e| e["status"] != "InProgress");
        assert_eq!(e["status"], "Stopped", "{e:#}");
    }
    for id in ids.as_array().unwrap() {
        let id = id.as_str().unwrap();
        s.wait_complete(id);
        wait_for("the stopped build's container to go", 60, || {
            crate::util::containers_of(id)
                .is_empty()
                .then_some(Value::Null)
        });
    }
}

/// A pipeline may name a repository that does not exist yet, as in the cloud: CreatePipeline
/// accepts it, the source action fails at run time naming the local paths looked at and the
/// setting that maps them, and once the repository is under the git root an execution succeeds.
#[test]
fn a_pipeline_source_that_does_not_exist_yet_fails_at_run_time_not_at_create() {
    let s = Serve::start(&[]);
    let conn = connection(&s);
    inline_project(&s, "later-build", &["echo built"]);
    let d = staged("later", &conn, "later", "later-build", false);
    s.ok(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &write_json(s.home.path(), &d),
    ]);
    let first = first_execution(&s, "later");
    let e = wait_execution(&s, "later", &first, "to end", |e| {
        e["status"] != "InProgress"
    });
    assert_eq!(e["status"], "Failed", "{e:#}");
    let st = state(&s, "later");
    let latest = &stage(&st, "Source")["actionStates"][0]["latestExecution"];
    assert_eq!(latest["status"], "Failed", "{st:#}");
    let msg = latest["errorDetails"]["message"].as_str().unwrap();
    let root = s.home.path().join("git");
    assert!(
        msg.contains(&root.join("acme/later").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("--git-root"), "{msg}");

    plain_repo(&s, "later");
    s.ok(&[
        "codepipeline",
        "start-pipeline-execution",
        "--name",
        "later",
    ]);
    wait_for("an execution of the new repository to succeed", 180, || {
        executions(&s, "later")
            .into_iter()
            .find(|e| e["status"] == "Succeeded")
    });

    // The build shows CODEPIPELINE and its input artifact everywhere: the API, build.json,
    // `localbuild builds show` and the console (never NO_SOURCE and a deleted temporary folder).
    let st = state(&s, "later");
    let build_id = stage(&st, "Build")["actionStates"][0]["latestExecution"]["externalExecutionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s.build(&build_id);
    assert_eq!(b["source"]["type"], "CODEPIPELINE", "{b:#}");
    let location = b["source"]["location"].as_str().unwrap().to_owned();
    assert!(
        location.starts_with("arn:aws:s3:::artifacts/"),
        "{location}"
    );
    let shown: Value =
        serde_json::from_str(&cli(&s, &["builds", "show", &build_id, "--json"])).unwrap();
    assert_eq!(shown["source"]["type"], "CODEPIPELINE", "{shown:#}");
    assert_eq!(shown["source"]["location"], location.as_str(), "{shown:#}");
    let table = cli(&s, &["builds", "show", &build_id]);
    assert!(!table.contains("NO_SOURCE"), "{table}");
    let number = b["buildNumber"].as_u64().unwrap();
    let saved = s
        .home
        .path()
        .join(format!("builds/later-build/{number}/build.json"));
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(saved["source"]["type"], "CODEPIPELINE", "{saved:#}");
    assert_eq!(saved["source"]["location"], location.as_str(), "{saved:#}");
    let page = crate::console::get(
        &s.addr,
        &format!("/builds/{}", build_id.replace(':', "%3A")),
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("CODEPIPELINE"), "{}", page.body);
    assert!(page.body.contains(&location), "{}", page.body);
    assert!(!page.body.contains("NO_SOURCE"), "{}", page.body);
}

/// Tags round-trip as in the cloud: a CodeBuild project's through CreateProject, UpdateProject
/// and BatchGetProjects; a pipeline's through CreatePipeline, TagResource, UntagResource and
/// ListTagsForResource, with CodePipeline's errors for a bad ARN, a missing pipeline and a bad
/// tag.
#[test]
fn project_and_pipeline_tags_round_trip() {
    let s = Serve::start(&[]);
    let env = json!({"type": "LINUX_CONTAINER", "image": "localbuild-test/busybox:1", "computeType": "BUILD_GENERAL1_SMALL"}).to_string();
    let created = s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "tagged",
        "--source",
        &json!({"type": "CODEPIPELINE", "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [true]\n"}).to_string(),
        "--artifacts",
        "type=CODEPIPELINE",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
        "--tags",
        "key=team,value=web",
        "key=env,value=dev",
    ]);
    let both = json!([{"key": "team", "value": "web"}, {"key": "env", "value": "dev"}]);
    assert_eq!(created["project"]["tags"], both);
    let got = s.ok(&["codebuild", "batch-get-projects", "--names", "tagged"]);
    assert_eq!(got["projects"][0]["tags"], both);
    s.ok(&[
        "codebuild",
        "update-project",
        "--name",
        "tagged",
        "--tags",
        "key=team,value=api",
    ]);
    let got = s.ok(&["codebuild", "batch-get-projects", "--names", "tagged"]);
    assert_eq!(
        got["projects"][0]["tags"],
        json!([{"key": "team", "value": "api"}])
    );
    let err = s
        .aws(&[
            "codebuild",
            "update-project",
            "--name",
            "tagged",
            "--tags",
            "key=aws:x,value=1",
        ])
        .unwrap_err();
    assert!(
        err.contains("InvalidInputException") && err.contains("aws:"),
        "{err}"
    );

    let conn = connection(&s);
    let mut d = staged("tags", &conn, "absent", "tagged", false);
    d["tags"] = json!([{"key": "owner", "value": "me"}]);
    let out = s.ok(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &write_json(s.home.path(), &d),
    ]);
    assert_eq!(out["tags"], json!([{"key": "owner", "value": "me"}]));
    let arn = "arn:aws:codepipeline:us-east-1:000000000000:tags";
    let list = || {
        s.ok(&[
            "codepipeline",
            "list-tags-for-resource",
            "--resource-arn",
            arn,
        ])["tags"]
            .clone()
    };
    assert_eq!(list(), json!([{"key": "owner", "value": "me"}]));
    s.ok(&[
        "codepipeline",
        "tag-resource",
        "--resource-arn",
        arn,
        "--tags",
        "key=owner,value=you",
        "key=cost,value=42",
    ]);
    assert_eq!(
        list(),
        json!([{"key": "owner", "value": "you"}, {"key": "cost", "value": "42"}])
    );
    s.ok(&[
        "codepipeline",
        "untag-resource",
        "--resource-arn",
        arn,
        "--tag-keys",
        "owner",
        "nothing",
    ]);
    assert_eq!(list(), json!([{"key": "cost", "value": "42"}]));

    let err = s
        .aws(&[
            "codepipeline",
            "list-tags-for-resource",
            "--resource-arn",
            "not-an-arn",
        ])
        .unwrap_err();
    assert!(err.contains("InvalidArnException"), "{err}");
    let err = s
        .aws(&[
            "codepipeline",
            "list-tags-for-resource",
            "--resource-arn",
            "arn:aws:codepipeline:us-east-1:000000000000:nope",
        ])
        .unwrap_err();
    assert!(
        err.contains("ResourceNotFoundException") && err.contains("nope"),
        "{err}"
    );
    let err = s
        .aws(&[
            "codepipeline",
            "tag-resource",
            "--resource-arn",
            arn,
            "--tags",
            "key=aws:reserved,value=1",
        ])
        .unwrap_err();
    assert!(err.contains("InvalidTagsException"), "{err}");
    // Deleting the pipeline deletes its tags: a new pipeline of that name starts with none.
    s.ok(&["codepipeline", "delete-pipeline", "--name", "tags"]);
    let mut d = staged("tags", &conn, "absent", "tagged", false);
    d.as_object_mut().unwrap().remove("tags");
    s.ok(&[
        "codepipeline",
        "create-pipeline",
        "--cli-input-json",
        &write_json(s.home.path(), &d),
    ]);
    assert_eq!(list(), json!([]));
}
