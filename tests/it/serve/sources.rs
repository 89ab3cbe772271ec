//! Where a build's source comes from: a local repository for a GitHub location, one that does
//! not exist yet, an S3 zip.

use super::*;

#[test]
fn serve_builds_a_github_project_from_a_local_repository() {
    let s = Serve::start(&[]);
    // https://github.com/acme/app.git resolves to $LOCALBUILD_HOME/git/acme/app.
    let repo = s.home.path().join("git/acme/app");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat content.txt\n      - echo \"resolved=$CODEBUILD_RESOLVED_SOURCE_VERSION\"\n",
    )
    .unwrap();
    std::fs::write(repo.join("content.txt"), "main content\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "main"]);
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(repo.join("content.txt"), "feature content\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "feature"]);
    let feature = git(&repo, &["rev-parse", "HEAD"]);
    git(&repo, &["checkout", "-q", "main"]);
    // An uncommitted change never reaches the build.
    std::fs::write(repo.join("content.txt"), "dirty\n").unwrap();

    let create = |name: &str, location: &str| {
        s.project(name, json!({"type": "GITHUB", "location": location}))
            .try_create()
    };
    create("app", "https://github.com/acme/app.git").expect("create-project");

    let started = s.ok(&[
        "codebuild",
        "start-build",
        "--project-name",
        "app",
        "--source-version",
        "feature",
    ])["build"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["resolvedSourceVersion"], feature.as_str());
    assert_eq!(b["sourceVersion"], "feature");
    assert_eq!(b["source"]["type"], "GITHUB");
    let stream = id.split_once(':').unwrap().1;
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/app",
        "--log-stream-name",
        stream,
        "--start-from-head",
    ]);
    let text: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    let text = text.join("\n");
    assert!(text.contains("feature content"), "{text}");
    assert!(!text.contains("dirty"), "{text}");
    assert!(text.contains(&format!("resolved={feature}")), "{text}");

    // An unknown version fails DOWNLOAD_SOURCE, a build result.
    let bad = s.ok(&[
        "codebuild",
        "start-build",
        "--project-name",
        "app",
        "--source-version",
        "no-such-branch",
    ])["build"]
        .clone();
    let b = s.wait_complete(bad["id"].as_str().unwrap());
    assert_eq!(b["buildStatus"], "FAILED");
    let download = b["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "DOWNLOAD_SOURCE")
        .unwrap();
    assert_eq!(download["phaseStatus"], "FAILED", "{b:#}");
    assert!(
        download["contexts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-branch"),
        "{download:#}"
    );
}

/// As in the cloud, a project may name a repository that does not exist yet (IaC creates the
/// project first): CreateProject and UpdateProject accept any well-formed location, and a build
/// fails in DOWNLOAD_SOURCE with CLIENT_ERROR naming the local paths looked at and the setting
/// that maps them. Once the repository is under the git root, the next build succeeds.
/// Malformed locations and host paths are still refused at once.
#[test]
fn a_project_may_name_a_repository_that_does_not_exist_yet() {
    let s = Serve::start(&[]);
    let source = |location: &str| json!({"type": "GITHUB", "location": location}).to_string();
    s.project(
        "later",
        json!({"type": "GITHUB", "location": "https://github.com/acme/later.git"}),
    )
    .create();
    // UpdateProject accepts a location that is not there either, and still checks the form.
    s.ok(&[
        "codebuild",
        "update-project",
        "--name",
        "later",
        "--source",
        &source("https://github.com/acme/elsewhere.git"),
    ]);
    for bad in [
        "file:///etc",
        "/etc",
        "https://github.com/acme/../../x.git",
        "git@github.com:acme/x.git",
    ] {
        let err = s
            .aws(&[
                "codebuild",
                "update-project",
                "--name",
                "later",
                "--source",
                &source(bad),
            ])
            .unwrap_err();
        assert!(err.contains("InvalidInputException"), "{bad}: {err}");
    }
    s.ok(&[
        "codebuild",
        "update-project",
        "--name",
        "later",
        "--source",
        &source("https://github.com/acme/later.git"),
    ]);

    let id = s.start_build("later")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
    assert_eq!(b["currentPhase"], "COMPLETED", "{b:#}");
    assert_eq!(b["source"]["type"], "GITHUB");
    assert_eq!(b["source"]["location"], "https://github.com/acme/later.git");
    let download = phase(&b, "DOWNLOAD_SOURCE");
    assert_eq!(download["phaseStatus"], "FAILED", "{b:#}");
    assert_eq!(download["contexts"][0]["statusCode"], "CLIENT_ERROR");
    let message = download["contexts"][0]["message"].as_str().unwrap();
    let root = s.home.path().join("git");
    for looked in ["acme/later", "acme/later.git", "later", "later.git"] {
        let path = root.join(looked).display().to_string();
        assert!(message.contains(&path), "{path} in {message}");
    }
    assert!(message.contains("--git-root"), "{message}");
    // No command ran.
    assert!(
        !b["phases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["phaseType"] == "BUILD"),
        "{b:#}"
    );

    // The repository appears under the git root: the next build finds it.
    let repo = root.join("acme/later");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(
        repo.join("buildspec.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built-from-later\n",
    )
    .unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let id = s.start_build("later")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(
        b["resolvedSourceVersion"],
        git(&repo, &["rev-parse", "HEAD"]).as_str()
    );
}

#[test]
fn serve_builds_an_s3_zip_source() {
    let s = Serve::start(&[]);
    // BUCKET/KEY resolves to $LOCALBUILD_HOME/s3/BUCKET/KEY.
    let bucket = s.home.path().join("s3/artifacts-bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let zip = bucket.join("app.zip");
    let made = Command::new(crate::util::client_tool("python3"))
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1], 'w')\n\
             z.writestr('buildspec.yml', 'version: 0.2\\nphases:\\n  build:\\n    commands:\\n      - cat sub/data.txt\\n')\n\
             z.writestr('sub/data.txt', 'zipped data\\n')\n\
             z.close()",
        )
        .arg(&zip)
        .status()
        .unwrap();
    assert!(made.success());
    s.project(
        "zipped",
        json!({"type": "S3", "location": "artifacts-bucket/app.zip"}),
    )
    .create();
    let id = s.start_build("zipped")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["source"]["type"], "S3");
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/zipped",
        "--log-stream-name",
        id.split_once(':').unwrap().1,
        "--start-from-head",
    ]);
    assert!(events.to_string().contains("zipped data"), "{events}");
}
