//! CodePipeline on `localbuild serve`, driven by the real `aws` CLI: a connection, a pipeline
//! from a JSON file (CodeStarSourceConnection → CodeBuild building an image in privileged mode
//! → ECS as a local container), the first execution, a commit that starts the second one by
//! itself, the deployed container serving the new content; a failing build; invalid
//! declarations. Real Docker, real git; bounded polling, no bare sleeps.

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

#[test]
fn a_pipeline_builds_deploys_and_reruns_on_a_commit() {
    let s = Serve::start(&[]);
    let name = format!("web-{}", std::process::id());
    let image = format!("lbtest-pipe-{}", std::process::id());
    let repo = s.home.path().join("git/acme/web");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        format!(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"initiator=$CODEBUILD_INITIATOR\"\n      - docker build -q -t \"{image}:$COMMIT\" .\n      - printf '[{{\"name\":\"web\",\"imageUri\":\"%s\"}}]' \"{image}:$COMMIT\" > imagedefinitions.json\nartifacts:\n  files:\n    - imagedefinitions.json\n"
        ),
    )
    .unwrap();
    std::fs::write(
        repo.join("Dockerfile"),
        "FROM localbuild-test/busybox:1\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    std::fs::write(repo.join("index.html"), "version one\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first version"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);

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

    project(&s, "webbuild", DOCKER_IMAGE, true);
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

    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    let build = &state["stageStates"][1]["actionStates"][0]["latestExecution"];
    let build_id = build["externalExecutionId"].as_str().unwrap().to_owned();
    let b = &s.ok(&["codebuild", "batch-get-builds", "--ids", &build_id])["builds"][0];
    assert_eq!(b["source"]["type"], "CODEPIPELINE");
    assert_eq!(b["initiator"], format!("codepipeline/{name}"));
    let deploy = &state["stageStates"][2]["actionStates"][0]["latestExecution"];
    let url = deploy["externalExecutionUrl"].as_str().unwrap();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
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
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &name]);
    for st in state["stageStates"].as_array().unwrap() {
        assert_eq!(
            st["latestExecution"]["pipelineExecutionId"],
            execs[0]["pipelineExecutionId"]
        );
        assert_eq!(st["latestExecution"]["status"], "Succeeded");
    }
    let url = state["stageStates"][2]["actionStates"][0]["latestExecution"]["externalExecutionUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    wait_for("the second deployment to serve", 30, || {
        http_get(port)
            .filter(|p| p.contains("version two"))
            .map(Value::String)
    });
    // The previous container of the service is gone.
    let out = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=localbuild.ecs-service=local/{name}"),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
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

    // Clean up: the service container and the images.
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f"])
        .args(String::from_utf8_lossy(&out.stdout).lines())
        .output();
    s.ok(&["codepipeline", "delete-pipeline", "--name", &name]);
    for c in [&first, &second] {
        let _ = std::process::Command::new("docker")
            .args(["rmi", "-f", &format!("{image}:{c}")])
            .output();
    }
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
    let mut d = declaration("s3", &conn, "failing", false);
    d["pipeline"]["stages"][0]["actions"][0]["actionTypeId"]["provider"] = json!("S3");
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
