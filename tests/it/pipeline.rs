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
fn wait_executions(s: &Serve, name: &str, n: usize) -> Vec<Value> {
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

fn project(s: &Serve, name: &str, image: &str, privileged: bool) {
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

fn declaration(name: &str, conn: &str, project: &str, with_deploy: bool) -> Value {
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

fn write_json(dir: &std::path::Path, v: &Value) -> String {
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

fn connection(s: &Serve) -> String {
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
