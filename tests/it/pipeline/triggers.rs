//! V2 triggers: push filters on branches and file paths.

use super::*;

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
    let err = try_create(&s, &v1).unwrap_err();
    assert!(
        err.contains("ValidationException") && err.contains("V2"),
        "{err}"
    );
    create(&s, &d);
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

    let newest = eventually("the release execution", Duration::from_secs(30), || {
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
