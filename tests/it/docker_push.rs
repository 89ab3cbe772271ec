//! Docker inside builds (`-d`): log in, build, tag and push to a real registry through the real
//! `localbuild` binary; the images summary; failure hints; dockerd-entrypoint images; cleanup.
//!
//! Needs a running Docker daemon, the test images (`scripts/build-test-images.sh`) and
//! `docker-registry` + `htpasswd` (see `registry.rs`). Without Docker these tests FAIL.
//! Every test uses names unique to its process and test, and removes its own images.

use crate::registry::{Registry, TagGuard, docker_cli};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use tempfile::TempDir;

const IMAGE: &str = "localbuild-test/docker:1";

/// Fail (never skip) when Docker or the test image is missing.
fn require_docker() {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Id}}", IMAGE])
        .stdin(Stdio::null())
        .output()
        .expect("the docker CLI must be installed to run these tests");
    assert!(
        out.status.success(),
        "Docker is not reachable or {IMAGE} is missing (start Docker, then run \
         scripts/build-test-images.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A name unique to this test process and test.
fn unique(test: &str) -> String {
    format!("lbtest-{}-{test}", std::process::id())
}

/// A source dir with `app/Dockerfile` (prints `greeting`) and `buildspec.yml`.
fn source(buildspec: &str, greeting: &str) -> TempDir {
    let dir = TempDir::new().expect("temp source dir");
    std::fs::create_dir(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("app/Dockerfile"),
        format!("FROM localbuild-test/busybox:1\nCMD [\"echo\", \"{greeting}\"]\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("buildspec.yml"), buildspec).unwrap();
    dir
}

/// The seed's scenario, POSIX sh; the credentials come from `--env` (see [`creds`]).
fn push_buildspec(reg: &Registry, repo: &str, local: &str, login: bool) -> String {
    let login = if login {
        "      - echo \"$REGISTRY_PASSWORD\" | docker login -u \"$REGISTRY_USER\" --password-stdin \"$REGISTRY\"\n"
    } else {
        "      - echo not logging in\n"
    };
    format!(
        "version: 0.2\n\
         env:\n  variables:\n    REGISTRY: \"{addr}\"\n    \
         REPO: \"{repo}\"\n    LOCAL: \"{local}\"\n\
         phases:\n  pre_build:\n    commands:\n{login}      - TAG=$(echo \"${{CODEBUILD_RESOLVED_SOURCE_VERSION:-1f3c}}\" | cut -c 1-7)\n\
         \x20 build:\n    commands:\n      - docker build -t \"$LOCAL:$TAG\" app\n      - docker tag \"$LOCAL:$TAG\" \"$REGISTRY/$REPO:$TAG\"\n\
         \x20 post_build:\n    commands:\n      - docker push \"$REGISTRY/$REPO:$TAG\"\n",
        addr = reg.addr(),
    )
}

/// `--env` flags with the registry's credentials.
fn creds(reg: &Registry) -> Vec<String> {
    vec![
        "--env".into(),
        format!("REGISTRY_USER={}", reg.user()),
        "--env".into(),
        format!("REGISTRY_PASSWORD={}", reg.password()),
    ]
}

struct Run {
    out: Output,
    stdout: String,
    build_id: String,
}

/// `localbuild run` with a private store; returns output and the build id from `--build-json`.
fn localbuild(src: &Path, privileged: bool, image: &str, args: &[String]) -> Run {
    let home = TempDir::new().expect("temp LOCALBUILD_HOME");
    let json = home.path().join("build.json");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_localbuild"));
    cmd.env("LOCALBUILD_HOME", home.path())
        .env_remove("LOCALBUILD_LOG")
        .args(["run", "-i", image, "--project", "lbtest", "-s"])
        .arg(src)
        .arg("--build-json")
        .arg(&json)
        .args(args)
        .stdin(Stdio::null());
    if privileged {
        cmd.arg("-d");
    }
    let out = cmd.output().expect("run localbuild");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&json).unwrap_or_else(|e| panic!("no --build-json ({e}): {out:?}")),
    )
    .expect("build JSON");
    let build_id = record["id"].as_str().expect("build id").to_owned();
    crate::util::assert_nothing_left(&build_id);
    Run {
        out,
        stdout,
        build_id,
    }
}

impl Run {
    fn context(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.out.status.code(),
            self.stdout,
            String::from_utf8_lossy(&self.out.stderr)
        )
    }
}

#[test]
fn login_build_tag_push_then_pull_and_run() {
    require_docker();
    let reg = Registry::start();
    let name = unique("e2e");
    let repo = format!("workshop/{name}");
    let remote = format!("{}/{repo}:1f3c", reg.addr());
    let _local_guard = TagGuard(format!("{name}:1f3c"));
    let _remote_guard = TagGuard(remote.clone());
    let greeting = format!("hello from {name}");
    let src = source(&push_buildspec(&reg, &repo, &name, true), &greeting);

    let run = localbuild(src.path(), true, IMAGE, &creds(&reg));
    assert_eq!(run.out.status.code(), Some(0), "{}", run.context());
    assert!(
        run.build_id.starts_with("lbtest:"),
        "build id {}",
        run.build_id
    );
    assert!(
        run.stdout
            .contains(&format!("  BUILD: built {name}:1f3c\n")),
        "{}",
        run.context()
    );
    let prefix = format!("  POST_BUILD: pushed {remote}@");
    let shown = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix.trim_end_matches('\n')))
        .unwrap_or_else(|| panic!("no `{prefix}` line: {}", run.context()))
        .to_owned();

    // The registry has the tag, with the digest the summary shows.
    let tags = reg.tags(&repo).unwrap();
    assert_eq!(tags, vec!["1f3c".to_owned()], "{}", reg.log());
    let digest = reg.manifest_digest(&repo, "1f3c").unwrap().expect("digest");
    assert_eq!(shown, digest);

    // Pull it back (after removing the local copy of that reference) and run it.
    let cfg = TempDir::new().unwrap();
    docker_cli(
        cfg.path(),
        &[
            "login",
            &reg.addr(),
            "--username",
            reg.user(),
            "--password-stdin",
        ],
        Some(reg.password()),
    );
    docker_cli(cfg.path(), &["image", "rm", &remote], None);
    docker_cli(cfg.path(), &["pull", &remote], None);
    let out = docker_cli(cfg.path(), &["run", "--rm", &remote], None);
    assert_eq!(out.trim(), greeting);
}

#[test]
fn push_without_login_fails_in_post_build_with_a_login_hint() {
    require_docker();
    let reg = Registry::start();
    let name = unique("nologin");
    let repo = format!("workshop/{name}");
    let _local_guard = TagGuard(format!("{name}:1f3c"));
    let _remote_guard = TagGuard(format!("{}/{repo}:1f3c", reg.addr()));
    let src = source(&push_buildspec(&reg, &repo, &name, false), "unused");

    let run = localbuild(src.path(), true, IMAGE, &creds(&reg));
    assert_eq!(run.out.status.code(), Some(1), "{}", run.context());
    assert!(
        run.stdout
            .contains("Phase complete: POST_BUILD State: FAILED"),
        "{}",
        run.context()
    );
    let hint = run
        .stdout
        .lines()
        .find(|l| l.starts_with("[Container] ") && l.contains(" Hint: "))
        .unwrap_or_else(|| panic!("no hint line: {}", run.context()));
    assert!(
        hint.contains(&format!("docker login {}", reg.addr())),
        "{hint}"
    );
    // The hint comes right after POST_BUILD's context line.
    let lines: Vec<&str> = run.stdout.lines().collect();
    let at = lines.iter().position(|l| *l == hint).unwrap();
    assert!(
        lines[at - 1].contains("Phase context status code: COMMAND_EXECUTION_ERROR"),
        "{}",
        run.context()
    );
    assert!(reg.tags(&repo).unwrap().is_empty());
}

#[test]
fn docker_without_privileged_mode_fails_with_a_hint() {
    require_docker();
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker info\n";
    let src = source(spec, "unused");
    let run = localbuild(src.path(), false, IMAGE, &[]);
    assert_eq!(run.out.status.code(), Some(1), "{}", run.context());
    assert!(
        run.stdout.contains("Cannot connect to the Docker daemon"),
        "{}",
        run.context()
    );
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains(" Hint: ") && l.contains("run with -d")),
        "{}",
        run.context()
    );
}

/// An image whose `dockerd-entrypoint.sh` runs `entrypoint_body` and whose `docker info`
/// succeeds once `/tmp/dockerd-ready` exists (a stand-in for a managed image's dockerd).
fn fake_dind_image(tag: &str, entrypoint_body: &str) -> TagGuard {
    let ctx = TempDir::new().unwrap();
    std::fs::write(
        ctx.path().join("dockerd-entrypoint.sh"),
        format!("#!/bin/sh\n{entrypoint_body}\n"),
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("docker"),
        "#!/bin/sh\nif [ \"$1\" = info ]; then [ -f /tmp/dockerd-ready ]; else echo fake docker; fi\n",
    )
    .unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM localbuild-test/busybox:1\n\
         COPY dockerd-entrypoint.sh docker /usr/local/bin/\n\
         RUN chmod +x /usr/local/bin/dockerd-entrypoint.sh /usr/local/bin/docker\n\
         ENTRYPOINT [\"/usr/local/bin/dockerd-entrypoint.sh\"]\n",
    )
    .unwrap();
    let guard = TagGuard(tag.to_owned());
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(ctx.path())
        .output()
        .expect("docker build");
    assert!(out.status.success(), "docker build {tag}: {out:?}");
    guard
}

#[test]
fn dockerd_entrypoint_images_are_waited_for() {
    require_docker();
    let tag = format!("{}:1", unique("dind-ok"));
    // The "daemon" becomes ready a moment after the container starts, then the CMD runs.
    let _image = fake_dind_image(&tag, "(sleep 1; touch /tmp/dockerd-ready) &\nexec \"$@\"");
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - docker info && echo daemon-ready\n";
    let src = source(spec, "unused");
    let run = localbuild(src.path(), true, &tag, &["--docker-host-access".into()]);
    assert_eq!(run.out.status.code(), Some(0), "{}", run.context());
    assert!(run.stdout.contains("daemon-ready\n"), "{}", run.context());
}

#[test]
fn dockerd_entrypoint_images_get_the_guarded_api_without_host_access() {
    require_docker();
    let tag = format!("{}:1", unique("dind-guarded"));
    // A privileged container is root on the host: by default the image's own daemon does
    // not start, and the build's docker commands reach the guarded API.
    let _image = fake_dind_image(&tag, "echo dockerd started >&2\nexit 1");
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - test -S /var/run/docker.sock && echo guarded-socket\n";
    let src = source(spec, "unused");
    let run = localbuild(src.path(), true, &tag, &[]);
    assert_eq!(run.out.status.code(), Some(0), "{}", run.context());
    assert!(run.stdout.contains("guarded-socket\n"), "{}", run.context());
}

#[test]
fn a_dockerd_entrypoint_that_exits_fails_provisioning() {
    require_docker();
    let tag = format!("{}:1", unique("dind-dead"));
    let _image = fake_dind_image(&tag, "echo dockerd failed >&2\nexit 1");
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo never\n";
    let src = source(spec, "unused");
    let run = localbuild(src.path(), true, &tag, &["--docker-host-access".into()]);
    assert_eq!(run.out.status.code(), Some(3), "{}", run.context());
    assert!(
        run.stdout.contains("PROVISIONING       FAILED"),
        "{}",
        run.context()
    );
    assert!(!run.stdout.contains("never"), "{}", run.context());
}

#[test]
fn the_sample_buildspec_runs_with_the_busybox_docker_image() {
    require_docker();
    let reg = Registry::start();
    let name = unique("sample");
    let sample = std::fs::read_to_string(crate::util::root().join("buildspecs/docker-push.yml"))
        .expect("buildspecs/docker-push.yml");
    let spec = sample
        .replace("\"localhost:5000\"", &format!("\"{}\"", reg.addr()))
        .replace("\"localbuild-demo\"", &format!("\"{name}\""))
        .replace("\"busybox:1.36\"", "\"localbuild-test/busybox:1\"");
    // The sample's layout (repository root as the source directory), with only the files the
    // build uses: copying the real root would copy `target/` too.
    let dir = TempDir::new().unwrap();
    let app = dir.path().join("buildspecs/docker-app");
    std::fs::create_dir_all(&app).unwrap();
    for f in std::fs::read_dir(crate::util::root().join("buildspecs/docker-app")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), app.join(f.file_name())).unwrap();
    }
    let file = dir.path().join("buildspec.yml");
    std::fs::write(&file, spec).unwrap();

    let home = TempDir::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .env("LOCALBUILD_HOME", home.path())
        .args(["run", "-d", "-i", IMAGE, "--project", "lbtest", "-s"])
        .arg(dir.path())
        .args(creds(&reg))
        .stdin(Stdio::null())
        .output()
        .expect("run localbuild");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let built: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  BUILD: built "))
        .collect();
    let _guards: Vec<TagGuard> = built
        .iter()
        .flat_map(|b| {
            let tag = b.rsplit_once(':').map_or("latest", |(_, t)| t).to_owned();
            [
                TagGuard((*b).to_owned()),
                TagGuard(format!("{}/{name}:{tag}", reg.addr())),
                TagGuard(format!("{}/{name}:latest", reg.addr())),
            ]
        })
        .collect();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(built.len(), 1, "{stdout}");
    let mut tags = reg.tags(&name).unwrap();
    tags.sort();
    assert_eq!(tags.len(), 2, "{tags:?}");
    assert!(tags.contains(&"latest".to_owned()), "{tags:?}");
    assert_eq!(
        stdout.matches("  POST_BUILD: pushed ").count(),
        2,
        "{stdout}"
    );
}
