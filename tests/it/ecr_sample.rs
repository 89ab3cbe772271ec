//! AWS's own Docker sample end to end: the buildspec of CodeBuild's "Publish Docker image to an
//! Amazon ECR image repository" sample (`tests/fixtures/aws-docker-sample/buildspec.yml`,
//! verbatim) in a privileged build of `localbuild serve` — `aws ecr get-login-password | docker
//! login`, `docker build`, `docker tag` and `docker push` of
//! `$AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/…` through the guarded Docker API —
//! then `aws ecr describe-images`, a build whose image is that ECR URI, and a pipeline Source →
//! Build (the sample) → Deploy ECS of the ECR URI that serves the new page. Real Docker, the real
//! registry, the real aws and docker CLIs inside the build; nothing left behind.

use crate::api::Serve;
use crate::ecr::{registry_state, running};
use crate::harness::{Build, Finished, eventually};
use crate::pipeline::{connection, write_json};
use crate::registry::TagGuard;
use crate::util::{assert_nothing_left, git};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const ACCOUNT: &str = "000000000000";
const IMAGE: &str = "localbuild-test/docker-awscli:1";
const SAMPLE: &str = include_str!("../fixtures/aws-docker-sample/buildspec.yml");

fn ecr_uri(name: &str, tag: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{name}:{tag}")
}

/// A page the built image serves with busybox's httpd on port 8080.
const DOCKERFILE: &str = "FROM localbuild-test/busybox:1\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n";

/// `git/acme/<name>` under serve's home (what `https://github.com/acme/<name>.git` and the
/// connection's `acme/<name>` resolve to): the sample's buildspec, a Dockerfile and a page.
fn sample_repo(s: &Serve, name: &str, page: &str) -> PathBuf {
    let repo = s.home.path().join("git/acme").join(name);
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("buildspec.yml"), SAMPLE).unwrap();
    std::fs::write(repo.join("Dockerfile"), DOCKERFILE).unwrap();
    std::fs::write(repo.join("index.html"), page).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "sample"]);
    repo
}

/// The environment the sample asks for: privileged, AWS_ACCOUNT_ID, IMAGE_REPO_NAME, IMAGE_TAG.
fn sample_environment(repo_name: &str, tag: &str) -> Value {
    json!({"type": "LINUX_CONTAINER", "image": IMAGE, "computeType": "BUILD_GENERAL1_SMALL",
        "privilegedMode": true, "environmentVariables": [
            {"name": "AWS_ACCOUNT_ID", "value": ACCOUNT, "type": "PLAINTEXT"},
            {"name": "IMAGE_REPO_NAME", "value": repo_name, "type": "PLAINTEXT"},
            {"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"}]})
}

fn build_log(s: &Serve, b: &Value) -> String {
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        b["logs"]["groupName"].as_str().unwrap(),
        "--log-stream-name",
        b["logs"]["streamName"].as_str().unwrap(),
        "--start-from-head",
    ]);
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}\n", e["message"].as_str().unwrap_or_default()))
        .collect()
}

/// The digest `docker push` printed for `tag` (`TAG: digest: sha256:… size: N`).
fn pushed_digest(log: &str, tag: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains(&format!("{tag}: digest: ")))
        .unwrap_or_else(|| panic!("docker push printed no digest for {tag}:\n{log}"));
    line.split("digest: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// Every local tag that names `repo_name` (the sample's own tag, the ECR URI, the registry's
/// loopback address), removed at the end of the test, passed or not.
struct Tags(String);

impl Drop for Tags {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
            .output();
        if let Ok(out) = out {
            for tag in String::from_utf8_lossy(&out.stdout).lines() {
                if tag.contains(&self.0) {
                    drop(TagGuard(tag.to_owned()));
                }
            }
        }
    }
}

/// Remove every local copy of `repo_name`'s images now.
fn remove_local_copies(repo_name: &str) {
    drop(Tags(repo_name.to_owned()));
}

#[test]
fn aws_docker_sample_pushes_to_ecr_and_a_later_build_runs_on_the_pushed_image() {
    let s = Serve::start(&[]);
    let repo_name = format!("sample/web-{}", std::process::id());
    let _tags = Tags(repo_name.clone());
    s.ok(&["ecr", "create-repository", "--repository-name", &repo_name]);
    sample_repo(&s, "sample", "pushed by the sample\n");
    s.project(
        "docker-sample",
        json!({"type": "GITHUB", "location": "https://github.com/acme/sample.git"}),
    )
    .environment(sample_environment(&repo_name, "v1"))
    .create();

    let id = s.start_build("docker-sample")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s.wait(&id, 300, "the sample's build", |b| {
        b["buildComplete"] == true
    });
    let log = build_log(&s, &b);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{log}");
    assert!(log.contains("Login Succeeded"), "{log}");
    // The push names the repository as the buildspec did, as in CodeBuild.
    let repository = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{repo_name}");
    assert!(
        log.contains(&format!("The push refers to repository [{repository}]")),
        "{log}"
    );
    let digest = pushed_digest(&log, "v1");
    assert_nothing_left(&id);

    let images = s.ok(&["ecr", "describe-images", "--repository-name", &repo_name]);
    let image = &images["imageDetails"][0];
    assert_eq!(image["imageTags"], json!(["v1"]), "{images:#}");
    assert_eq!(image["imageDigest"], digest.as_str(), "{images:#}");
    assert_eq!(image["registryId"], ACCOUNT, "{images:#}");

    // A later build whose image is the pushed ECR URI: pulled from the local registry.
    remove_local_copies(&repo_name);
    s.project(
        "on-pushed",
        crate::api::no_source(
            "version: 0.2\nphases:\n  build:\n    commands:\n      - cat /www/index.html\n",
        ),
    )
    .image(&ecr_uri(&repo_name, "v1"))
    .create();
    let id = s.start_build("on-pushed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s.wait(&id, 300, "the build on the pushed image", |b| {
        b["buildComplete"] == true
    });
    let log = build_log(&s, &b);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{log}");
    assert!(log.contains("pushed by the sample"), "{log}");
    assert_nothing_left(&id);
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

/// The ids of Docker objects of `kind` (`["ps", "-a"]`, `["volume", "ls"]`, `["network", "ls"]`)
/// with `label`.
fn labelled(kind: [&str; 2], label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(kind)
        .args(["-q", "--filter", &format!("label={label}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// The sample plus the line that names the pushed image for the ECS deploy action: the
/// buildspec as a pipeline's build would carry it (AWS's ECS tutorial adds exactly this).
fn sample_with_imagedefinitions() -> String {
    format!(
        "{SAMPLE}      - printf '[{{\"name\":\"web\",\"imageUri\":\"%s\"}}]' $AWS_ACCOUNT_ID.dkr.ecr.$AWS_DEFAULT_REGION.amazonaws.com/$IMAGE_REPO_NAME:$IMAGE_TAG > imagedefinitions.json\nartifacts:\n  files:\n    - imagedefinitions.json\n"
    )
}

fn pipeline_declaration(name: &str, conn: &str, project: &str) -> Value {
    json!({"pipeline": {
        "name": name,
        "roleArn": "arn:aws:iam::000000000000:role/pipeline",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS",
                    "provider": "CodeStarSourceConnection", "version": "1"},
                "configuration": {"ConnectionArn": conn, "FullRepositoryId": "acme/sample",
                    "BranchName": "main"},
                "outputArtifacts": [{"name": "SourceOutput"}]}]},
            {"name": "Build", "actions": [{
                "name": "Build",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild",
                    "version": "1"},
                "configuration": {"ProjectName": project},
                "inputArtifacts": [{"name": "SourceOutput"}],
                "outputArtifacts": [{"name": "BuildOutput"}]}]},
            {"name": "Deploy", "actions": [{
                "name": "Deploy",
                "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS",
                    "version": "1"},
                "configuration": {"ClusterName": "local", "ServiceName": name,
                    "FileName": "imagedefinitions.json"},
                "inputArtifacts": [{"name": "BuildOutput"}]}]}],
    }})
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

/// The port the deploy action's service listens on (its external execution URL).
fn deployed_port(s: &Serve, pipeline: &str) -> u16 {
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", pipeline]);
    let deploy = &state["stageStates"][2]["actionStates"][0]["latestExecution"];
    let url = deploy["externalExecutionUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no deploy URL: {state:#}"));
    url.rsplit(':').next().unwrap().parse().unwrap()
}

fn wait_for_page(port: u16, text: &str) {
    eventually(
        &format!("the service on port {port} to serve {text:?}"),
        Duration::from_secs(60),
        || {
            http_get(port)
                .filter(|page| page.contains(text))
                .ok_or("not yet")
        },
    );
}

/// Removes a service's containers at the end of a test, passed or not.
struct ServiceGuard(String);

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        let ids = labelled(["ps", "-a"], &self.0);
        if !ids.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&ids)
                .output();
        }
    }
}

#[test]
fn pipeline_builds_the_sample_pushes_to_ecr_and_deploys_the_ecr_uri_to_ecs() {
    let s = Serve::start(&[]);
    let repo_name = format!("pipe/web-{}", std::process::id());
    let _tags = Tags(repo_name.clone());
    let pipeline = format!("ecrpipe-{}", std::process::id());
    let service_label = format!("localbuild.ecs-service=local/{pipeline}");
    let _service = ServiceGuard(service_label.clone());
    s.ok(&["ecr", "create-repository", "--repository-name", &repo_name]);
    let repo = sample_repo(&s, "sample", "first page\n");
    s.project(
        "sample-build",
        json!({"type": "CODEPIPELINE", "buildspec": sample_with_imagedefinitions()}),
    )
    .artifacts(json!({"type": "CODEPIPELINE"}))
    .environment(sample_environment(&repo_name, "live"))
    .create();
    let conn = connection(&s);
    let file = write_json(
        s.home.path(),
        &pipeline_declaration(&pipeline, &conn, "sample-build"),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);

    let finished = |n: usize| {
        eventually(
            &format!("{n} finished executions of {pipeline}"),
            Duration::from_secs(300),
            || {
                let e = executions(&s, &pipeline);
                (e.len() >= n && e[0]["status"] != "InProgress")
                    .then_some(e)
                    .ok_or("not yet")
            },
        )
    };
    let execs = finished(1);
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &pipeline]);
    assert_eq!(execs[0]["status"], "Succeeded", "{state:#}");
    let images = s.ok(&["ecr", "describe-images", "--repository-name", &repo_name]);
    assert_eq!(
        images["imageDetails"][0]["imageTags"],
        json!(["live"]),
        "{images:#}"
    );
    let first = images["imageDetails"][0]["imageDigest"].clone();
    wait_for_page(deployed_port(&s, &pipeline), "first page");

    // A commit: the pipeline builds and pushes again, the service serves the new page.
    std::fs::write(repo.join("index.html"), "second page\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "second"]);
    let execs = finished(2);
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &pipeline]);
    assert_eq!(execs[0]["status"], "Succeeded", "{state:#}");
    let images = s.ok(&["ecr", "describe-images", "--repository-name", &repo_name]);
    let tagged: Vec<&Value> = images["imageDetails"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["imageTags"] == json!(["live"]))
        .collect();
    assert_eq!(tagged.len(), 1, "{images:#}");
    assert_ne!(tagged[0]["imageDigest"], first, "{images:#}");
    wait_for_page(deployed_port(&s, &pipeline), "second page");

    // Nothing left: the builds' containers, volumes and networks went with them; the service
    // (which outlives serve, as ECS services do) goes with delete-service.
    let builds = s.ok(&[
        "codebuild",
        "list-builds-for-project",
        "--project-name",
        "sample-build",
    ]);
    let ids = builds["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 2, "{builds:#}");
    for id in ids {
        assert_nothing_left(id.as_str().unwrap());
    }
    s.ok(&[
        "ecs",
        "delete-service",
        "--cluster",
        "local",
        "--service",
        &pipeline,
        "--force",
    ]);
    for kind in [["ps", "-a"], ["volume", "ls"], ["network", "ls"]] {
        let left = labelled(kind, &service_label);
        assert!(left.is_empty(), "the service left {kind:?}: {left:?}");
    }
}

/// `localbuild run -d` of the sample on `home` with `IMAGE_TAG=tag`.
fn run_sample(home: &std::path::Path, repo_name: &str, tag: &str) -> Finished {
    let b = Build::new(SAMPLE)
        .file("Dockerfile", DOCKERFILE)
        .file("index.html", &format!("run pushed {tag}\n"))
        .image(IMAGE)
        .arg("-d")
        .env("LOCALBUILD_HOME", home.to_str().unwrap());
    b.run_with(&[
        "--env",
        &format!("AWS_ACCOUNT_ID={ACCOUNT}"),
        "--env",
        &format!("IMAGE_REPO_NAME={repo_name}"),
        "--env",
        &format!("IMAGE_TAG={tag}"),
    ])
}

#[test]
fn run_d_of_the_sample_pushes_to_ecr_with_serves_registry_or_its_own() {
    let s = Serve::start(&[]);
    let repo_name = format!("run/web-{}", std::process::id());
    let _tags = Tags(repo_name.clone());
    s.ok(&["ecr", "create-repository", "--repository-name", &repo_name]);
    // The registry starts with ECR's first token.
    s.ok(&["ecr", "get-authorization-token"]);
    let (serving, _) = registry_state(s.home.path()).expect("serve's registry runs");

    // While serve runs, the run pushes to serve's registry and leaves it running.
    let r = run_sample(s.home.path(), &repo_name, "v1");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Login Succeeded"), "{}", r.stdout);
    let v1 = pushed_digest(&r.stdout, "v1");
    // The summary names the pushed image as the buildspec did.
    let pushed = format!("POST_BUILD: pushed {}@{v1}", ecr_uri(&repo_name, "v1"));
    assert!(r.stdout.contains(&pushed), "{}", r.stdout);
    assert_eq!(registry_state(s.home.path()).map(|r| r.0), Some(serving));
    assert!(running(serving));
    let images = s.ok(&["ecr", "describe-images", "--repository-name", &repo_name]);
    assert_eq!(images["imageDetails"][0]["imageTags"], json!(["v1"]));
    assert_eq!(images["imageDetails"][0]["imageDigest"], v1.as_str());

    // Alone, the run starts the registry itself and stops it when the build ends.
    let home = s.terminate();
    assert!(!running(serving), "serve's registry outlived serve");
    let r = run_sample(home.path(), &repo_name, "v2");
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let v2 = pushed_digest(&r.stdout, "v2");
    assert!(
        registry_state(home.path()).is_none(),
        "the run left its registry running"
    );
    let s = Serve::start_in(home, &[]);
    let images = s.ok(&[
        "ecr",
        "describe-images",
        "--repository-name",
        &repo_name,
        "--image-ids",
        "imageTag=v2",
    ]);
    assert_eq!(
        images["imageDetails"][0]["imageDigest"],
        v2.as_str(),
        "{images:#}"
    );
}
