//! Pipeline declarations through the API: what is refused and how, response shapes, tags, a
//! source that does not exist yet.

use super::*;

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
    let conn = connection(&s);
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
    let err = try_create(&s, &d).unwrap_err();
    assert!(
        err.contains("InvalidStructureException") && err.contains("minimum of 2 stages"),
        "{err}"
    );
    let mut d = declaration("ecr", &conn, "failing", false);
    d["pipeline"]["stages"][0]["actions"][0]["actionTypeId"]["provider"] = json!("ECR");
    let err = try_create(&s, &d).unwrap_err();
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
    let err = try_create(&s, &d).unwrap_err();
    assert!(
        err.contains("InvalidActionDeclarationException") && err.contains("'BranchName'"),
        "{err}"
    );
    let mut d = declaration("noinput", &conn, "failing", false);
    d["pipeline"]["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "Nothing"}]);
    let err = try_create(&s, &d).unwrap_err();
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

/// A pipeline may name a repository that does not exist yet, as in the cloud: CreatePipeline
/// accepts it, the source action fails at run time naming the local paths looked at and the
/// setting that maps them, and once the repository is under the git root an execution succeeds.
#[test]
fn a_pipeline_source_that_does_not_exist_yet_fails_at_run_time_not_at_create() {
    let s = Serve::start(&[]);
    let conn = connection(&s);
    inline_project(&s, "later-build", &["echo built"]);
    let d = staged("later", &conn, "later", "later-build", false);
    create(&s, &d);
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
    eventually(
        "an execution of the new repository to succeed",
        Duration::from_secs(180),
        || {
            executions(&s, "later")
                .into_iter()
                .find(|e| e["status"] == "Succeeded")
        },
    );

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
    let page = crate::api::get(
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
    let created = s.project("tagged", json!({"type": "CODEPIPELINE", "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [true]\n"}))
.artifacts(json!({"type": "CODEPIPELINE"}))
.arg("--tags")
.arg("key=team,value=web")
.arg("key=env,value=dev")
.create();
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
    let out = create(&s, &d);
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
    create(&s, &d);
    assert_eq!(list(), json!([]));
}
