//! Batch builds through the API: StartBuildBatch, the shared queue, retries, timeouts.

use super::*;

#[test]
fn serve_batch_builds_for_the_aws_cli() {
    let s = Serve::start(&[]);
    let spec = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: first\n    - identifier: second\n      depend-on:\n        - first\n      env:\n        variables:\n          WHO: two\nphases:\n  build:\n    commands:\n      - echo task $CODEBUILD_BATCH_BUILD_IDENTIFIER $WHO\n";
    s.create_batch_project("serve-batch", spec);
    let started = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "serve-batch",
        "--environment-variables-override",
        "name=WHO,value=one,type=PLAINTEXT",
    ])["buildBatch"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("serve-batch:"), "{started:#}");
    assert_eq!(started["buildBatchNumber"], 1);
    assert_eq!(started["complete"], false);
    assert_eq!(
        started["buildBatchConfig"]["restrictions"]["maximumBuildsAllowed"],
        5
    );

    let done = s.wait_batch(&id, 180, "batch complete", |b| b["complete"] == true);
    assert_eq!(done["buildBatchStatus"], "SUCCEEDED", "{done:#}");
    assert!(done["endTime"].is_number(), "{done:#}");
    let groups = done["buildGroups"].as_array().unwrap();
    let idents: Vec<&str> = groups
        .iter()
        .map(|g| g["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(idents, ["first", "second"]);
    assert_eq!(groups[1]["dependsOn"], json!(["first"]));
    let mut arns = vec![];
    for g in groups {
        let summary = &g["currentBuildSummary"];
        assert_eq!(summary["buildStatus"], "SUCCEEDED", "{g:#}");
        arns.push(summary["arn"].as_str().unwrap().to_owned());
    }

    // The task builds are ordinary builds with the batch's ARN.
    let mut args = vec!["codebuild", "batch-get-builds", "--ids"];
    args.extend(arns.iter().map(String::as_str));
    let builds = s.ok(&args)["builds"].as_array().unwrap().clone();
    assert_eq!(builds.len(), 2);
    for b in &builds {
        assert_eq!(b["buildBatchArn"], done["arn"], "{b:#}");
        assert_eq!(b["buildStatus"], "SUCCEEDED");
    }
    let listed = s.ok(&[
        "codebuild",
        "list-builds-for-project",
        "--project-name",
        "serve-batch",
    ]);
    assert_eq!(listed["ids"].as_array().unwrap().len(), 2, "{listed:#}");

    let batches = s.ok(&[
        "codebuild",
        "list-build-batches-for-project",
        "--project-name",
        "serve-batch",
    ]);
    assert_eq!(batches["ids"], json!([id]));
    let all = s.ok(&[
        "codebuild",
        "list-build-batches",
        "--filter",
        "status=SUCCEEDED",
    ]);
    assert_eq!(all["ids"], json!([id]));
    let err = s
        .aws(&["codebuild", "start-build-batch", "--project-name", "nope"])
        .unwrap_err();
    assert!(
        err.contains("ResourceNotFoundException") && err.contains("Project cannot be found"),
        "{err}"
    );

    // Stopping a batch whose task sleeps: STOPPED, nothing left running.
    let sleepy = spec.replace(
        "echo task $CODEBUILD_BATCH_BUILD_IDENTIFIER $WHO",
        "sleep 120",
    );
    let started = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "serve-batch",
        "--buildspec-override",
        &sleepy,
    ])["buildBatch"]
        .clone();
    let sleeping = started["id"].as_str().unwrap().to_owned();
    let running = s.wait_batch(&sleeping, 120, "first task running", |b| {
        b["buildGroups"][0]["currentBuildSummary"]["arn"].is_string() || b["complete"] == true
    });
    let task_arn = running["buildGroups"][0]["currentBuildSummary"]["arn"]
        .as_str()
        .expect("the first task started")
        .to_owned();
    let task_id = task_arn.split_once(":build/").unwrap().1.to_owned();
    s.wait(&task_id, 120, "the task in BUILD", |b| {
        b["currentPhase"] == "BUILD"
    });
    let stopped = s.ok(&["codebuild", "stop-build-batch", "--id", &sleeping])["buildBatch"].clone();
    assert_eq!(stopped["buildBatchStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(stopped["complete"], true);
    assert_eq!(
        stopped["buildGroups"][0]["currentBuildSummary"]["buildStatus"], "STOPPED",
        "{stopped:#}"
    );
    assert!(containers_of(&task_id).is_empty());

    // Deleting a batch deletes its builds.
    let deleted = s.ok(&["codebuild", "delete-build-batch", "--id", &id]);
    assert_eq!(
        deleted["buildsDeleted"].as_array().unwrap().len(),
        2,
        "{deleted:#}"
    );
    let gone = s.ok(&["codebuild", "batch-get-build-batches", "--ids", &id]);
    assert_eq!(gone["buildBatchesNotFound"], json!([id]));
}

#[test]
fn serve_batch_builds_wait_in_the_same_queue_as_start_build() {
    let s = Serve::start(&["--max-concurrent-builds", "1"]);
    let spec = "version: 0.2\nbatch:\n  build-list:\n    - identifier: a\n    - identifier: b\nphases:\n  build:\n    commands:\n      - sleep 120\n";
    s.create_batch_project("queued-batch", spec);
    s.create_project("queued-plain", &["true"]);
    let batch = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "queued-batch",
    ])["buildBatch"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let running = s.wait_batch(&batch, 120, "one task running", |b| {
        b["buildGroups"][0]["currentBuildSummary"]["arn"].is_string()
    });
    let task = running["buildGroups"][0]["currentBuildSummary"]["arn"]
        .as_str()
        .unwrap()
        .split_once(":build/")
        .unwrap()
        .1
        .to_owned();
    s.wait(&task, 120, "task a in BUILD", |b| {
        b["currentPhase"] == "BUILD"
    });
    // One slot: the other task waits, and so does a StartBuild build.
    assert!(
        s.batch(&batch)["buildGroups"][1]
            .get("currentBuildSummary")
            .is_none(),
        "task b waits for the slot: {running:#}"
    );
    let plain =
        s.ok(&["codebuild", "start-build", "--project-name", "queued-plain"])["build"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    assert_eq!(s.build(&plain)["currentPhase"], "QUEUED");
    // Stopping the batch frees the slot: the queued build runs.
    s.ok(&["codebuild", "stop-build-batch", "--id", &batch]);
    let done = s.wait_complete(&plain);
    assert_eq!(done["buildStatus"], "SUCCEEDED", "{done:#}");
    let stopped = s.batch(&batch);
    assert_eq!(stopped["buildBatchStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(
        stopped["buildGroups"][1]["currentBuildSummary"]["buildStatus"], "STOPPED",
        "b never started: {stopped:#}"
    );
    assert!(stopped["buildGroups"][1]["currentBuildSummary"]["arn"].is_null());
    assert!(containers_of(&task).is_empty());
}

#[test]
fn serve_retries_a_batch_under_its_own_id_running_only_what_failed() {
    let s = Serve::start(&[]);
    // https://github.com/acme/retry.git resolves to $LOCALBUILD_HOME/git/acme/retry.
    let repo = s.home.path().join("git/acme/retry");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nbatch:\n  build-graph:\n    - identifier: first\n    - identifier: second\n      depend-on:\n        - first\n    - identifier: third\n      depend-on:\n        - second\nphases:\n  build:\n    commands:\n      - test $CODEBUILD_BATCH_BUILD_IDENTIFIER != second || test -f fixed\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "second fails"]);
    s.project(
        "retry",
        json!({"type": "GITHUB", "location": "https://github.com/acme/retry.git"}),
    )
    .create();
    let id =
        s.ok(&["codebuild", "start-build-batch", "--project-name", "retry"])["buildBatch"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let failed = s.wait_batch(&id, 180, "batch complete", |b| b["complete"] == true);
    assert_eq!(failed["buildBatchStatus"], "FAILED", "{failed:#}");
    let status =
        |b: &Value, i: usize| b["buildGroups"][i]["currentBuildSummary"]["buildStatus"].clone();
    assert_eq!(status(&failed, 0), "SUCCEEDED");
    assert_eq!(status(&failed, 1), "FAILED");
    assert_eq!(status(&failed, 2), "FAILED", "never started: {failed:#}");
    let first_build = failed["buildGroups"][0]["currentBuildSummary"]["arn"].clone();
    let second_build = failed["buildGroups"][1]["currentBuildSummary"]["arn"].clone();

    // The fix lands; the retry runs `second` and `third` again, not `first`.
    std::fs::write(repo.join("fixed"), "").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "fixed"]);
    let retried = s.ok(&["codebuild", "retry-build-batch", "--id", &id])["buildBatch"].clone();
    assert_eq!(retried["id"], json!(id), "the same batch: {retried:#}");
    assert_eq!(retried["buildBatchNumber"], failed["buildBatchNumber"]);
    assert_eq!(retried["complete"], false);
    let done = s.wait_batch(&id, 180, "retried batch complete", |b| {
        b["complete"] == true
    });
    assert_eq!(done["buildBatchStatus"], "SUCCEEDED", "{done:#}");
    let groups = done["buildGroups"].as_array().unwrap();
    assert_eq!(groups[0]["currentBuildSummary"]["arn"], first_build);
    assert!(groups[0].get("priorBuildSummaryList").is_none(), "{done:#}");
    assert_eq!(status(&done, 1), "SUCCEEDED");
    assert_ne!(groups[1]["currentBuildSummary"]["arn"], second_build);
    assert_eq!(groups[1]["priorBuildSummaryList"][0]["arn"], second_build);
    assert_eq!(
        groups[1]["priorBuildSummaryList"][0]["buildStatus"],
        "FAILED"
    );
    assert_eq!(
        groups[2]["priorBuildSummaryList"][0]["buildStatus"],
        "FAILED"
    );
    let phases: Vec<&str> = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phaseType"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        [
            "SUBMITTED",
            "DOWNLOAD_BATCHSPEC",
            "IN_PROGRESS",
            "FAILED",
            "SUBMITTED",
            "DOWNLOAD_BATCHSPEC",
            "IN_PROGRESS",
            "SUCCEEDED"
        ]
    );
    let err = s
        .aws(&["codebuild", "retry-build-batch", "--id", &id])
        .unwrap_err();
    assert!(
        err.contains("InvalidInputException") && err.contains("no failed builds"),
        "{err}"
    );
    let listed = s.ok(&[
        "codebuild",
        "list-build-batches-for-project",
        "--project-name",
        "retry",
    ]);
    assert_eq!(listed["ids"], json!([id]));
}

#[test]
fn a_batch_past_its_timeout_stops_its_builds_and_ends_timed_out() {
    let s = Serve::start(&[]);
    // `slow` runs until the batch's one-minute timeout stops it; `after` never starts.
    let spec = "version: 0.2\nbatch:\n  build-graph:\n    - identifier: slow\n    - identifier: after\n      depend-on:\n        - slow\nphases:\n  build:\n    commands:\n      - sleep 600\n";
    s.create_batch_project("timeboxed", spec);
    let started = s.ok(&[
        "codebuild",
        "start-build-batch",
        "--project-name",
        "timeboxed",
        "--build-batch-config-override",
        "timeoutInMins=1",
    ])["buildBatch"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(
        started["buildBatchConfig"]["timeoutInMins"], 1,
        "{started:#}"
    );
    let done = s.wait_batch(&id, 240, "batch complete", |b| b["complete"] == true);
    assert_eq!(done["buildBatchStatus"], "TIMED_OUT", "{done:#}");
    let groups = done["buildGroups"].as_array().unwrap();
    let slow = &groups[0]["currentBuildSummary"];
    assert_eq!(slow["buildStatus"], "STOPPED", "{done:#}");
    assert_eq!(groups[1]["currentBuildSummary"]["buildStatus"], "STOPPED");
    assert!(groups[1]["currentBuildSummary"].get("arn").is_none());
    let build_id = slow["arn"]
        .as_str()
        .unwrap()
        .split_once(":build/")
        .unwrap()
        .1;
    crate::util::assert_nothing_left(build_id);
    let phases: Vec<(&str, &str)> = done["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["phaseType"].as_str().unwrap(),
                p["phaseStatus"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(phases[2], ("IN_PROGRESS", "TIMED_OUT"), "{phases:?}");
    assert_eq!(phases.last().unwrap().0, "FAILED", "{phases:?}");
}
