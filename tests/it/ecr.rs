//! ECR offline on `localbuild serve`, driven by the real `aws` CLI and the real Docker CLI: the
//! registry localbuild starts (Debian's `docker-registry`), `get-login-password | docker login`
//! against its loopback address, a push of an image built from local files, DescribeImages with
//! the registry's digest, tags and size, a build and an ECS deploy whose image is the ECR URI,
//! ECR's name rule against hostile names, the registry's own password check, and the registry's
//! lifetime (it ends with serve; a `kill -9`ed serve's registry is stopped by the next start).

use crate::pipeline::{connection, declaration, project_with, wait_executions, write_json};
use crate::registry::TagGuard;
use crate::serve::{Serve, git};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const ACCOUNT: &str = "000000000000";

fn ecr_uri(name: &str, tag: &str) -> String {
    format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{name}:{tag}")
}

/// The registry's state file: (pid, port).
pub(crate) fn registry_state(home: &Path) -> Option<(u32, u16)> {
    let text = std::fs::read_to_string(home.join("ecr/registry.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    Some((v["pid"].as_u64()? as u32, v["port"].as_u64()? as u16))
}

/// A process that exists and is not a zombie.
pub(crate) fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn wait_until(what: &str, secs: u64, f: impl FnMut() -> bool) {
    crate::harness::eventually(what, Duration::from_secs(secs), f)
}

/// `docker ARGS` with its own config folder; (success, stdout + stderr).
fn docker(config: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the docker CLI runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn aws_error(s: &Serve, args: &[&str]) -> String {
    s.aws(args).expect_err(&format!("aws {args:?} should fail"))
}

/// Log in on the host with `aws ecr get-login-password | docker login` against the registry's
/// loopback address; the address.
fn login(s: &Serve, config: &Path) -> String {
    let password = Command::new(crate::util::client_tool("aws"))
        .args(["ecr", "get-login-password", "--region", "us-east-1"])
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(password.status.success(), "{password:?}");
    let password = String::from_utf8(password.stdout).unwrap();
    let (_, port) = registry_state(s.home.path()).expect("the registry runs after a token");
    let host = format!("127.0.0.1:{port}");
    let (ok, out) = docker(
        config,
        &["login", "--username", "AWS", "--password-stdin", &host],
        Some(password.trim()),
    );
    assert!(ok, "docker login: {out}");
    host
}

/// Build `tag` from a Dockerfile and a file made here (no public image).
fn build_image(config: &Path, dir: &Path, tag: &str, text: &str) {
    std::fs::write(dir.join("hello.txt"), text).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM localbuild-test/busybox:1\nCOPY hello.txt /hello.txt\nCOPY index.html /www/index.html\nEXPOSE 8080\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
    )
    .unwrap();
    std::fs::write(dir.join("index.html"), text).unwrap();
    let (ok, out) = docker(
        config,
        &["build", "-q", "-t", tag, dir.to_str().unwrap()],
        None,
    );
    assert!(ok, "docker build: {out}");
}

/// Push `tag`; the digest Docker reports.
fn push(config: &Path, tag: &str) -> String {
    let (ok, out) = docker(config, &["push", tag], None);
    assert!(ok, "docker push: {out}");
    let at = out.find("digest: ").expect("push prints the digest") + 8;
    out[at..].split_whitespace().next().unwrap().to_owned()
}

#[test]
fn push_with_the_ecr_password_then_describe_images_and_build_from_the_ecr_uri() {
    let s = Serve::start(&[]);
    let name = format!("team/app-{}", std::process::id());
    let created = s.ok(&["ecr", "create-repository", "--repository-name", &name]);
    let uri = format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{name}");
    assert_eq!(created["repository"]["repositoryUri"], uri.as_str());
    assert_eq!(
        created["repository"]["repositoryArn"],
        format!("arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{name}").as_str()
    );
    let again = aws_error(
        &s,
        &["ecr", "create-repository", "--repository-name", &name],
    );
    assert!(
        again.contains("RepositoryAlreadyExistsException"),
        "{again}"
    );
    let repos = s.ok(&["ecr", "describe-repositories"]);
    assert_eq!(repos["repositories"][0]["repositoryName"], name.as_str());
    let missing = aws_error(
        &s,
        &["ecr", "describe-repositories", "--repository-names", "nope"],
    );
    assert!(missing.contains("RepositoryNotFoundException"), "{missing}");

    let token = s.ok(&["ecr", "get-authorization-token"]);
    let data = &token["authorizationData"][0];
    assert_eq!(
        data["proxyEndpoint"],
        format!("https://{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com").as_str()
    );
    assert!(data["expiresAt"].as_f64().is_some(), "{token:#}");

    let config = tempfile::tempdir().unwrap();
    let host = login(&s, config.path());
    // The registry checks the password itself: a wrong one is refused.
    let (ok, out) = docker(
        config.path(),
        &["login", "--username", "AWS", "--password-stdin", &host],
        Some("not-the-password"),
    );
    assert!(!ok, "a wrong password logged in: {out}");
    assert!(out.contains("401") || out.contains("unauthorized"), "{out}");
    let host = login(&s, config.path());

    let local = format!("{host}/{name}:v1");
    let _local = TagGuard(local.clone());
    let _ecr = TagGuard(ecr_uri(&name, "v1"));
    let ctx = tempfile::tempdir().unwrap();
    build_image(config.path(), ctx.path(), &local, "hello from ecr\n");
    let digest = push(config.path(), &local);

    let images = s.ok(&["ecr", "describe-images", "--repository-name", &name]);
    let image = &images["imageDetails"][0];
    assert_eq!(image["imageDigest"], digest.as_str(), "{images:#}");
    assert_eq!(image["imageTags"], json!(["v1"]));
    assert!(
        image["imageSizeInBytes"].as_u64().unwrap() > 0,
        "{images:#}"
    );
    let pushed = image["imagePushedAt"].as_f64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - pushed).abs() < 600.0,
        "pushed at {pushed}, now {now}"
    );
    let listed = s.ok(&["ecr", "list-images", "--repository-name", &name]);
    assert_eq!(
        listed["imageIds"],
        json!([{"imageDigest": digest, "imageTag": "v1"}])
    );
    let got = s.ok(&[
        "ecr",
        "batch-get-image",
        "--repository-name",
        &name,
        "--image-ids",
        "imageTag=v1",
        "imageTag=nope",
    ]);
    assert_eq!(got["images"][0]["imageId"]["imageDigest"], digest.as_str());
    let manifest: Value =
        serde_json::from_str(got["images"][0]["imageManifest"].as_str().unwrap()).unwrap();
    assert!(manifest["layers"].as_array().is_some(), "{manifest:#}");
    assert_eq!(got["failures"][0]["failureCode"], "ImageNotFound");

    // Lifecycle policy and scanning configuration are stored.
    let policy = json!({"rules": [{"rulePriority": 1, "description": "keep the last ten images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 10},
        "action": {"type": "expire"}}]})
    .to_string();
    s.ok(&[
        "ecr",
        "put-lifecycle-policy",
        "--repository-name",
        &name,
        "--lifecycle-policy-text",
        &policy,
    ]);
    let stored = s.ok(&["ecr", "get-lifecycle-policy", "--repository-name", &name]);
    assert_eq!(stored["lifecyclePolicyText"], policy.as_str());
    s.ok(&[
        "ecr",
        "put-image-scanning-configuration",
        "--repository-name",
        &name,
        "--image-scanning-configuration",
        "scanOnPush=true",
    ]);
    let repos = s.ok(&["ecr", "describe-repositories", "--repository-names", &name]);
    assert_eq!(
        repos["repositories"][0]["imageScanningConfiguration"]["scanOnPush"],
        true
    );

    // A build whose image is the ECR URI: pulled from the local registry, run under its name.
    let _ = docker(config.path(), &["image", "rm", &ecr_uri(&name, "v1")], None);
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - cat /hello.txt\n      - echo \"image=$CODEBUILD_BUILD_IMAGE\"\n";
    let env = json!({"type": "LINUX_CONTAINER", "image": ecr_uri(&name, "v1"),
        "computeType": "BUILD_GENERAL1_SMALL"})
    .to_string();
    s.ok(&[
        "codebuild",
        "create-project",
        "--name",
        "from-ecr",
        "--source",
        &json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string(),
        "--artifacts",
        "type=NO_ARTIFACTS",
        "--environment",
        &env,
        "--service-role",
        "arn:aws:iam::000000000000:role/any",
    ]);
    let id = s.start_build("from-ecr")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    assert_eq!(b["environment"]["image"], ecr_uri(&name, "v1").as_str());
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        b["logs"]["groupName"].as_str().unwrap(),
        "--log-stream-name",
        b["logs"]["streamName"].as_str().unwrap(),
    ]);
    let text: String = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}\n", e["message"].as_str().unwrap_or_default()))
        .collect();
    assert!(text.contains("hello from ecr"), "{text}");
    assert!(
        text.contains(&format!("image={}", ecr_uri(&name, "v1"))),
        "{text}"
    );
    crate::util::assert_nothing_left(&id);

    // `localbuild run` with the ECR URI: while serve runs, it uses serve's registry and leaves
    // it running; alone, it starts its own and stops it when the build ends.
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("buildspec.yml"), buildspec).unwrap();
    let run = |home: &Path| {
        let out = crate::util::localbuild()
            .env("LOCALBUILD_HOME", home)
            .args([
                "run",
                "--project",
                "ecr-run",
                "-i",
                &ecr_uri(&name, "v1"),
                "-s",
            ])
            .arg(src.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("hello from ecr"), "{text}");
    };
    let (serving, _) = registry_state(s.home.path()).unwrap();
    let _ = docker(config.path(), &["image", "rm", &ecr_uri(&name, "v1")], None);
    run(s.home.path());
    assert_eq!(registry_state(s.home.path()).map(|r| r.0), Some(serving));
    assert!(running(serving));
    let mut s = s;
    let home = std::mem::replace(&mut s.home, tempfile::tempdir().unwrap());
    drop(s);
    wait_until("serve's registry to stop", 30, || !running(serving));
    let _ = docker(config.path(), &["image", "rm", &ecr_uri(&name, "v1")], None);
    run(home.path());
    assert!(
        registry_state(home.path()).is_none(),
        "run left its registry running"
    );
    let s = Serve::start_in(home, &[]);

    // Deleting: a repository with images needs force; untag, then delete the image.
    let busy = aws_error(
        &s,
        &["ecr", "delete-repository", "--repository-name", &name],
    );
    assert!(busy.contains("RepositoryNotEmptyException"), "{busy}");
    let deleted = s.ok(&[
        "ecr",
        "batch-delete-image",
        "--repository-name",
        &name,
        "--image-ids",
        &format!("imageDigest={digest}"),
    ]);
    assert_eq!(deleted["imageIds"][0]["imageDigest"], digest.as_str());
    let images = s.ok(&["ecr", "describe-images", "--repository-name", &name]);
    assert_eq!(images["imageDetails"], json!([]), "{images:#}");
    s.ok(&[
        "ecr",
        "delete-repository",
        "--repository-name",
        &name,
        "--force",
    ]);
    let gone = aws_error(&s, &["ecr", "describe-images", "--repository-name", &name]);
    assert!(gone.contains("RepositoryNotFoundException"), "{gone}");
}

/// `aws ARGS` without the CLI's own parameter checks (so the server's are what is tested); the
/// error text.
fn unvalidated(s: &Serve, args: &[&str]) -> String {
    let config = s.home.path().join("aws-config");
    std::fs::write(&config, "[default]\nparameter_validation = false\n").unwrap();
    let out = Command::new(crate::util::client_tool("aws"))
        .args(args)
        .env("AWS_ENDPOINT_URL", format!("http://{}", s.addr))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "aws {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn hostile_repository_names_are_refused_by_ecrs_rule() {
    let s = Serve::start(&[]);
    let long = "a".repeat(257);
    for bad in [
        "../escape",
        "a/../../b",
        "/abs",
        "a//b",
        "trailing/",
        "UPPER",
        "a",
        long.as_str(),
        "with space",
        "dots..two",
        "x\u{7}y",
        "a\\b",
        "-lead",
    ] {
        let arg = format!("--repository-name={bad}");
        let mut ops = vec![vec!["ecr", "create-repository", arg.as_str()]];
        // Names that would be paths are refused by every operation that takes one.
        if bad.contains('/') || bad.contains('.') {
            ops.push(vec!["ecr", "describe-images", arg.as_str()]);
            ops.push(vec!["ecr", "delete-repository", arg.as_str(), "--force"]);
        }
        for op in ops {
            let err = unvalidated(&s, &op);
            assert!(
                err.contains("InvalidParameterException") && err.contains("repositoryName"),
                "{op:?}: {err}"
            );
        }
    }
    let repos = s.ok(&["ecr", "describe-repositories"]);
    assert_eq!(repos["repositories"], json!([]));
    // Nothing was made outside the registry's storage.
    assert!(!s.home.path().join("escape").exists());
    assert!(!s.home.path().join("ecr/escape").exists());
}

#[test]
fn the_registry_ends_with_serve_and_a_killed_servers_registry_is_stopped_on_restart_or_by_gc() {
    let mut s = Serve::start(&[]);
    assert!(
        registry_state(s.home.path()).is_none(),
        "the registry starts when ECR is first used"
    );
    s.ok(&["ecr", "get-authorization-token"]);
    let (first, _) = registry_state(s.home.path()).unwrap();
    assert!(running(first));

    // kill -9: nothing stops the registry now; the next start does.
    let home = s.kill_9();
    assert!(
        running(first),
        "the registry should outlive a kill -9 until the next start"
    );
    let s = Serve::start_in(home, &[]);
    assert!(
        !running(first),
        "the restarted server left the stale registry running"
    );
    s.ok(&["ecr", "get-authorization-token"]);
    let (second, _) = registry_state(s.home.path()).unwrap();
    assert_ne!(first, second);
    assert!(running(second));

    // `localbuild gc` stops a killed server's registry too.
    let mut s = s;
    let home = s.kill_9();
    assert!(running(second));
    let out = crate::util::localbuild()
        .env("LOCALBUILD_HOME", home.path())
        .arg("gc")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("stopped the ECR registry (pid {second})")),
        "{text}"
    );
    assert!(!running(second));

    // A server's registry ends with it.
    let s = Serve::start_in(home, &[]);
    s.ok(&["ecr", "get-authorization-token"]);
    let (third, _) = registry_state(s.home.path()).unwrap();
    let home = s.home.path().to_owned();
    drop(s);
    wait_until("the registry to stop with serve", 30, || !running(third));
    assert!(
        registry_state(&home).is_none(),
        "the state file outlived the registry"
    );
}

#[test]
fn an_ecs_deploy_of_an_ecr_uri_pulls_from_the_local_registry_and_serves_the_page() {
    let s = Serve::start(&[]);
    let name = format!("web/site-{}", std::process::id());
    s.ok(&["ecr", "create-repository", "--repository-name", &name]);
    let config = tempfile::tempdir().unwrap();
    let host = login(&s, config.path());
    let local = format!("{host}/{name}:live");
    let _local = TagGuard(local.clone());
    let _ecr = TagGuard(ecr_uri(&name, "live"));
    let ctx = tempfile::tempdir().unwrap();
    build_image(config.path(), ctx.path(), &local, "served from ECR\n");
    push(config.path(), &local);
    let _ = docker(config.path(), &["image", "rm", &local], None);

    let pipeline = format!("ecrweb-{}", std::process::id());
    let _service = ServiceGuard(format!("local/{pipeline}"));
    let repo = s.home.path().join("git/acme/web");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("README"), "one\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let buildspec = format!(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - printf '[{{\"name\":\"web\",\"imageUri\":\"%s\"}}]' \"{}\" > imagedefinitions.json\nartifacts:\n  files:\n    - imagedefinitions.json\n",
        ecr_uri(&name, "live")
    );
    project_with(&s, "ecrbuild", &buildspec);
    let conn = connection(&s);
    let file = write_json(
        s.home.path(),
        &declaration(&pipeline, &conn, "ecrbuild", true),
    );
    s.ok(&["codepipeline", "create-pipeline", "--cli-input-json", &file]);
    let execs = wait_executions(&s, &pipeline, 1);
    let state = s.ok(&["codepipeline", "get-pipeline-state", "--name", &pipeline]);
    assert_eq!(execs[0]["status"], "Succeeded", "{state:#}");
    let deploy = &state["stageStates"][2]["actionStates"][0]["latestExecution"];
    let url = deploy["externalExecutionUrl"].as_str().unwrap();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    crate::harness::eventually(
        "the deployed service to serve the page",
        Duration::from_secs(30),
        || http_get(port).is_some_and(|page| page.contains("served from ECR")),
    );
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

/// Removes a service's containers at the end of a test, passed or not.
struct ServiceGuard(String);

impl Drop for ServiceGuard {
    fn drop(&mut self) {
        let out = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=localbuild.ecs-service={}", self.0),
            ])
            .output();
        if let Ok(out) = out {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
    }
}

#[test]
fn a_run_builds_endpoint_serves_ecr_and_its_registry_ends_with_the_run() {
    let b = crate::harness::Build::new(
        r#"version: 0.2
phases:
  build:
    commands:
      - aws ecr create-repository --repository-name from/build --query repository.repositoryUri --output text
      - aws ecr get-login-password | wc -c
      - aws ecr describe-repositories --query 'repositories[].repositoryName' --output text
"#,
    )
    .image("localbuild-test/awscli:1");
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of(
            "aws ecr create-repository --repository-name from/build --query repository.repositoryUri --output text"
        ),
        [format!("{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/from/build")]
    );
    // The 40-character password and a newline.
    assert_eq!(r.output_of("aws ecr get-login-password | wc -c"), ["41"]);
    assert_eq!(
        r.output_of(
            "aws ecr describe-repositories --query 'repositories[].repositoryName' --output text"
        ),
        ["from/build"]
    );
    assert!(
        registry_state(b.home.path()).is_none(),
        "the run left its registry running"
    );
}
