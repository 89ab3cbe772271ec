//! The action providers in whole pipelines: CodeBuild (privileged, pushing to a registry; a
//! batch; two sources), the ECS deploy as a local container, the S3 source and deploy.

use super::*;

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
            {"name": "REGISTRY_PASSWORD", "value": reg.password()}]});
    s.project("webbuild", json!({"type": "CODEPIPELINE"}))
        .artifacts(json!({"type": "CODEPIPELINE"}))
        .environment(env)
        .create();
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
    let page = eventually(
        "the first deployment to serve",
        Duration::from_secs(30),
        || {
            http_get(port)
                .filter(|p| p.contains("version one"))
                .map(Value::String)
        },
    );
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
    eventually(
        "the second deployment to serve",
        Duration::from_secs(30),
        || {
            http_get(port)
                .filter(|p| p.contains("version two"))
                .map(Value::String)
        },
    );
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
fn a_batch_enabled_build_action_runs_a_batch_and_combines_its_artifacts() {
    let s = Serve::start(&[]);
    plain_repo(&s, "batched");
    let conn = connection(&s);
    let buildspec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: linux\n    - identifier: docs\n      env:\n        variables:\n          KIND: docs\nphases:\n  build:\n    commands:\n      - echo \"${KIND:-linux} of $CODEBUILD_BATCH_BUILD_IDENTIFIER\" > out.txt\nartifacts:\n  files:\n    - out.txt\n";
    s.project(
        "batchbuild",
        json!({"type": "CODEPIPELINE", "buildspec": buildspec}),
    )
    .artifacts(json!({"type": "CODEPIPELINE"}))
    .create();
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
    let err = try_create(
        &s,
        &pipeline(json!({"BucketName": "web", "Extract": "false"})),
    )
    .unwrap_err();
    assert!(
        err.contains("InvalidActionDeclarationException") && err.contains("'ObjectKey'"),
        "{err}"
    );
    let err = try_create(
        &s,
        &pipeline(json!({"BucketName": "../etc", "Extract": "true"})),
    )
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
    let newest = eventually(
        "an execution for the new object",
        Duration::from_secs(30),
        || {
            let e = executions(&s, "site");
            (e.len() == 2).then(|| e[0].clone())
        },
    );
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
    let newest = eventually(
        "an execution for the commit",
        Duration::from_secs(30),
        || {
            let e = executions(&s, "two");
            (e.len() == 2).then(|| e[0].clone())
        },
    );
    let id = newest["pipelineExecutionId"].as_str().unwrap();
    let e = wait_execution(&s, "two", id, "to end", |e| e["status"] != "InProgress");
    assert_eq!(e["status"], "Succeeded", "{e:#}");
    assert_eq!(
        std::fs::read_to_string(web.join("w/web.txt")).unwrap(),
        "two\n"
    );
}
