//! Executions: approvals, retries, stop and abandon, transitions, supersede, restarts, V2
//! variables and execution modes.

use super::*;

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
    let build_id = eventually("the build id", Duration::from_secs(30), || {
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
    let b = eventually(
        "the abandoned build to stop",
        Duration::from_secs(60),
        || {
            let b = s.ok(&[
                "codebuild",
                "batch-get-builds",
                "--ids",
                build_id.as_str().unwrap(),
            ])["builds"][0]
                .clone();
            (b["buildComplete"] == true).then_some(b)
        },
    );
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
    let second = eventually("the second execution", Duration::from_secs(30), || {
        let e = executions(&s, "held");
        (e.len() == 2).then(|| e[0]["pipelineExecutionId"].clone())
    });
    let second = second.as_str().unwrap().to_owned();
    eventually(
        "the second execution to pass Source",
        Duration::from_secs(60),
        || {
            let st = state(&s, "held");
            (stage(&st, "Source")["latestExecution"]["pipelineExecutionId"] == second.as_str()
                && stage(&st, "Source")["latestExecution"]["status"] == "Succeeded")
                .then_some(st)
        },
    );
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
    let newest = eventually("the third execution", Duration::from_secs(30), || {
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
    let newest = eventually(
        "an execution after the restart",
        Duration::from_secs(30),
        || {
            let e = executions(&s, "restart");
            (e.len() == 2).then(|| e[0].clone())
        },
    );
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
    let err = try_create(&s, &d).unwrap_err();
    assert!(
        err.contains("ValidationException") && err.contains("V2"),
        "{err}"
    );
    d["pipeline"]["pipelineType"] = json!("V2");
    create(&s, &d);
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
    let ids = eventually(
        "two builds running at once",
        Duration::from_secs(120),
        || {
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
        },
    );
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
        eventually(
            "the stopped build's container to go",
            Duration::from_secs(60),
            || {
                crate::util::containers_of(id)
                    .is_empty()
                    .then_some(Value::Null)
            },
        );
    }
}
