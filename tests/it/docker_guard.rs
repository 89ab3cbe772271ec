//! The guarded Docker API of privileged builds (`-d`): what a buildspec's Docker commands may
//! and may not do through the real `localbuild` binary, the real daemon and the docker CLI of
//! `localbuild-test/docker:1`; the `--docker-host-access` opt-in; nothing left behind, also
//! after `kill -9` and `localbuild gc`.

use crate::harness::{Build, Finished};
use std::process::Command;

const DOCKER_IMAGE: &str = "localbuild-test/docker:1";
const INNER: &str = "localbuild-test/busybox:1";

/// A privileged build of `spec` on the image with the docker CLI.
fn privileged(spec: &str) -> Build {
    Build::new(spec).image(DOCKER_IMAGE).arg("-d")
}

/// A buildspec whose build phase runs `commands` (each one line of YAML-safe text).
fn buildspec(commands: &[String]) -> String {
    let mut s = String::from("version: 0.2\nphases:\n  build:\n    commands:\n");
    for c in commands {
        s.push_str(&format!("      - {}\n", serde_json::to_string(c).unwrap()));
    }
    s
}

fn refused_lines(r: &Finished) -> Vec<String> {
    r.log_lines()
        .into_iter()
        .filter(|l| l.contains("Refused a Docker call of the build: "))
        .collect()
}

/// A file on the host no build may read: its path and contents.
struct HostSecret {
    dir: tempfile::TempDir,
    text: String,
}

impl HostSecret {
    fn new() -> HostSecret {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("host-only-{}", uuid::Uuid::new_v4().simple());
        std::fs::write(dir.path().join("secret.txt"), &text).unwrap();
        HostSecret { dir, text }
    }

    fn dir(&self) -> String {
        self.dir.path().display().to_string()
    }
}

/// A container of this machine that is not the build's (removed on drop).
struct Foreign(String);

impl Foreign {
    fn new() -> Foreign {
        let name = format!(
            "lbtest-{}-foreign-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        );
        let out = Command::new("docker")
            .args(["create", "--name", &name, INNER, "true"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        Foreign(name)
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

#[test]
fn each_call_that_would_reach_the_host_is_refused_with_a_log_line_naming_the_setting() {
    let foreign = Foreign::new();
    let calls = [
        format!("docker run --rm -v /:/host {INNER} true"),
        format!("docker run --rm --mount type=bind,source=/etc,target=/e {INNER} true"),
        format!("docker run --rm -v /var/run/docker.sock:/var/run/docker.sock {INNER} true"),
        format!("docker run --rm --privileged {INNER} true"),
        format!("docker run --rm --pid host {INNER} true"),
        format!("docker run --rm --network host {INNER} true"),
        format!("docker run --rm --ipc host {INNER} true"),
        format!("docker run --rm --uts host {INNER} true"),
        format!("docker run --rm --userns host {INNER} true"),
        format!("docker run --rm --device /dev/null {INNER} true"),
        format!("docker run --rm --cap-add SYS_ADMIN {INNER} true"),
        format!("docker run --rm --security-opt seccomp=unconfined {INNER} true"),
        format!("docker run --rm --volume-driver other -v named:/n {INNER} true"),
        "docker volume create --opt type=none --opt o=bind --opt device=/ hostroot".to_owned(),
        "docker network create --driver macvlan lan".to_owned(),
        "docker exec --privileged own true".to_owned(),
        format!("docker start {}", foreign.0),
        format!("docker cp buildspec.yml {}:/x", foreign.0),
        "docker build --network host -t lbtest-never:1 .".to_owned(),
        "docker swarm init".to_owned(),
    ];
    let mut commands = vec![
        format!("printf 'FROM {INNER}\\n' > Dockerfile"),
        format!("docker run -d --name own-$CODEBUILD_BUILD_NUMBER {INNER} sleep 300"),
    ];
    for (i, c) in calls.iter().enumerate() {
        let c = c.replace(" own ", " own-$CODEBUILD_BUILD_NUMBER ");
        commands.push(format!(
            "if {c}; then echo ALLOWED-{i}; else echo refused-{i}; fi"
        ));
    }
    let r = privileged(&buildspec(&commands)).run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for (i, call) in calls.iter().enumerate() {
        assert!(
            r.stdout.contains(&format!("\nrefused-{i}\n")),
            "{call} was not refused:\n{}",
            r.stdout
        );
        assert!(!r.stdout.contains(&format!("ALLOWED-{i}\n")), "{call}");
    }
    let refused = refused_lines(&r);
    // Each said in the log (`docker cp` asks twice).
    assert!(refused.len() >= calls.len(), "{refused:#?}");
    assert!(
        refused
            .iter()
            .all(|l| l.contains("docker-host-access") && l.contains("--docker-host-access")),
        "{refused:#?}"
    );
    assert!(
        refused[0].contains("a bind mount of the host path /"),
        "{}",
        refused[0]
    );
    assert!(
        refused[2].contains("passing the Docker socket on"),
        "{}",
        refused[2]
    );
    // The client gets Docker's error shape: "Error response from daemon: <message>".
    assert!(
        r.stdout
            .contains("Error response from daemon: localbuild refused a privileged container"),
        "{}",
        r.stdout
    );
    // The foreign container was neither started nor changed.
    let state = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Status}}", &foreign.0])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "created");
}

#[test]
fn a_host_file_is_not_readable_through_docker() {
    let secret = HostSecret::new();
    let dir = secret.dir();
    let r = privileged(&buildspec(&[
        format!("docker run --rm -v {dir}:/h {INNER} cat /h/secret.txt || true"),
        format!("docker run --rm --mount type=bind,source={dir},target=/h {INNER} cat /h/secret.txt || true"),
        format!("docker run --rm -v $(pwd)/../../../../..{dir}:/h {INNER} cat /h/secret.txt || true"),
        format!("docker volume create --opt type=none --opt o=bind --opt device={dir} v || true"),
        format!("docker run --rm -v v:/h {INNER} cat /h/secret.txt || true"),
        format!("docker run --rm --privileged {INNER} sh -c 'mount /dev/sda1 /mnt; cat /mnt{dir}/secret.txt' || true"),
    ]))
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains(&secret.text), "{}", r.stdout);
    assert_eq!(refused_lines(&r).len(), 5, "{:#?}", r.log_lines());
}

#[test]
fn docker_run_with_the_working_directory_sees_and_changes_the_builds_source() {
    let lib = tempfile::tempdir().unwrap();
    std::fs::write(lib.path().join("lib.txt"), "a secondary source\n").unwrap();
    let r = privileged(&buildspec(&[
        format!("docker run --rm -v $(pwd):/src {INNER} cat /src/hello.txt"),
        format!("docker run --rm -v \"$CODEBUILD_SRC_DIR\":/src -w /src {INNER} sh -c 'echo from-a-container > made.txt'"),
        "cat made.txt".to_owned(),
        format!("echo piped-in | docker run -i --rm {INNER} cat"),
        format!("docker run --rm -v cache:/c {INNER} sh -c 'echo kept > /c/f'"),
        format!("docker run --rm -v cache:/c {INNER} cat /c/f"),
        format!("docker run --rm -v \"$CODEBUILD_SRC_DIR_lib\":/lib {INNER} cat /lib/lib.txt"),
    ]))
    .file("hello.txt", "the build's own source\n")
    .arg("-s")
    .arg(&format!("lib:{}", lib.path().display()))
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of(&format!(
            "docker run --rm -v $(pwd):/src {INNER} cat /src/hello.txt"
        )),
        ["the build's own source"]
    );
    assert_eq!(r.output_of("cat made.txt"), ["from-a-container"]);
    assert_eq!(
        r.output_of(&format!("echo piped-in | docker run -i --rm {INNER} cat")),
        ["piped-in"]
    );
    assert_eq!(
        r.output_of(&format!("docker run --rm -v cache:/c {INNER} cat /c/f")),
        ["kept"]
    );
    assert_eq!(
        r.output_of(&format!(
            "docker run --rm -v \"$CODEBUILD_SRC_DIR_lib\":/lib {INNER} cat /lib/lib.txt"
        )),
        ["a secondary source"]
    );
    assert!(refused_lines(&r).is_empty(), "{:#?}", refused_lines(&r));
}

#[test]
fn a_mounted_source_maps_its_subfolders_to_the_host_folder_and_no_further() {
    let r = privileged(&buildspec(&[
        format!("docker run --rm -v $(pwd)/sub:/s {INNER} cat /s/in-sub.txt"),
        "ln -s / sub/root".to_owned(),
        format!("docker run --rm -v $(pwd)/sub/root/etc:/e {INNER} true || echo link-refused"),
    ]))
    .file("sub/in-sub.txt", "in the subfolder\n")
    .arg("-m")
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of(&format!(
            "docker run --rm -v $(pwd)/sub:/s {INNER} cat /s/in-sub.txt"
        )),
        ["in the subfolder"]
    );
    assert!(r.stdout.contains("\nlink-refused\n"), "{}", r.stdout);
}

#[test]
fn containers_volumes_and_networks_the_build_makes_are_its_own_and_go_with_it() {
    let r = privileged(&buildspec(&[
        format!("docker run -d --name lbtest-left-$CODEBUILD_BUILD_NUMBER {INNER} sleep 300"),
        "docker volume create lbtest-vol-$CODEBUILD_BUILD_NUMBER".to_owned(),
        "docker network create lbtest-net-$CODEBUILD_BUILD_NUMBER".to_owned(),
        format!("docker create -v anon:/a {INNER} true"),
        "docker ps -q --filter label=localbuild.build-id=$CODEBUILD_BUILD_ID | wc -l".to_owned(),
    ]))
    .run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    // The build container and the two it made carry the build's label.
    assert_eq!(
        r.output_of("docker ps -q --filter label=localbuild.build-id=$CODEBUILD_BUILD_ID | wc -l"),
        ["2"]
    );
    // `run` checked that nothing labelled with the build is left (Build::finished).
}

#[test]
fn kill_9_leaves_the_builds_docker_objects_to_gc() {
    let b = privileged(&buildspec(&[
        format!("docker run -d {INNER} sleep 300"),
        "docker volume create lbtest-killed-$CODEBUILD_BUILD_NUMBER".to_owned(),
        "echo \"id=$CODEBUILD_BUILD_ID\"".to_owned(),
        "sleep 300".to_owned(),
    ]));
    let mut running = b.spawn();
    running.wait_for_line(|l| l.contains("Running command sleep 300"));
    let kill = Command::new("kill")
        .args(["-9", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    running.finish_killed();
    let log = std::fs::read_dir(b.home.path().join("builds/it"))
        .unwrap()
        .filter_map(Result::ok)
        .find_map(|e| std::fs::read_to_string(e.path().join("build.log")).ok())
        .expect("the build's log");
    let id = log
        .lines()
        .find_map(|l| l.strip_prefix("id="))
        .expect("the build printed its id")
        .to_owned();
    assert_eq!(
        crate::util::containers_of(&id).len(),
        2,
        "build and its own"
    );
    let (code, out, err) = b.cli(&["gc"]);
    assert_eq!(code, 0, "{out}{err}");
    crate::util::assert_nothing_left(&id);
}

#[test]
fn docker_host_access_gives_the_hosts_daemon_and_warns() {
    let secret = HostSecret::new();
    let dir = secret.dir();
    let spec = buildspec(&[format!(
        "docker run --rm -v {dir}:/h {INNER} cat /h/secret.txt"
    )]);
    let r = privileged(&spec).arg("--docker-host-access").run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&secret.text), "{}", r.stdout);
    assert!(
        r.log_lines()
            .iter()
            .any(|l| l.contains("Warning: docker-host-access is on")),
        "{:#?}",
        r.log_lines()
    );

    // The user's config may say it; a project's file (the repository's) may not.
    let b = privileged(&spec);
    std::fs::create_dir_all(b.home.path().join("config/localbuild")).unwrap();
    std::fs::write(
        b.home.path().join("config/localbuild/config.toml"),
        "docker-host-access = true\n",
    )
    .unwrap();
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&secret.text), "{}", r.stdout);

    let b = privileged(&spec).file(".localbuild.toml", "docker-host-access = true\n");
    let out = b.command().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("docker-host-access: only the command line"),
        "{stderr}"
    );
}

/// The hints of a finished build (`Hint: …` lines of its log).
fn hints_of(r: &Finished) -> Vec<String> {
    r.log_lines()
        .into_iter()
        .filter_map(|l| l.split_once("Hint: ").map(|(_, h)| h.to_owned()))
        .collect()
}

#[test]
fn an_image_on_an_unreachable_registry_gets_one_offline_hint_naming_it() {
    // `.invalid` never resolves: the same error as Docker Hub on a machine without a network.
    let spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - printf 'FROM registry.invalid/lbtest/base:1\\n' > Dockerfile\n      - docker build -t lbtest-offline:1 .\n  post_build:\n    commands:\n      - docker pull registry.invalid/lbtest/app:2\n";
    let r = privileged(spec).run();
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let hints = hints_of(&r);
    assert_eq!(hints.len(), 2, "{hints:#?}");
    for (hint, image) in hints.iter().zip([
        "registry.invalid/lbtest/base:1",
        "registry.invalid/lbtest/app:2",
    ]) {
        assert!(
            hint.starts_with(&format!(
                "image {image} is on registry.invalid, which this machine cannot reach (it looks offline)"
            )),
            "{hint}"
        );
        assert!(hint.contains("docker load -i"), "{hint}");
    }

    // The build image itself.
    let r = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - echo never\n")
        .image("registry.invalid/lbtest/build-image:1")
        .run();
    assert_ne!(r.code, 0);
    assert_eq!(
        r.context("PROVISIONING").0,
        "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE"
    );
    let hints = hints_of(&r);
    assert_eq!(hints.len(), 1, "{hints:#?}\n{}", r.stdout);
    assert!(
        hints[0].starts_with("image registry.invalid/lbtest/build-image:1 is on registry.invalid"),
        "{}",
        hints[0]
    );
}

#[test]
fn ctrl_c_removes_what_the_builds_docker_commands_made() {
    let b = privileged(&buildspec(&[
        format!("docker run -d {INNER} sleep 300"),
        "docker network create lbtest-stopped-$CODEBUILD_BUILD_NUMBER".to_owned(),
        "sleep 300".to_owned(),
    ]));
    let mut running = b.spawn();
    running.wait_for_line(|l| l.contains("Running command sleep 300"));
    let kill = Command::new("kill")
        .args(["-INT", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // `finish` checks that nothing labelled with the build is left.
    let r = running.finish();
    assert_eq!(r.status(), "STOPPED", "{}", r.stdout);
}

#[test]
fn serve_gives_privileged_builds_the_guarded_api_unless_started_with_docker_host_access() {
    let secret = HostSecret::new();
    let command = format!(
        "docker run --rm -v {}:/h {INNER} cat /h/secret.txt",
        secret.dir()
    );
    for (args, status) in [
        (&[][..], "FAILED"),
        (&["--docker-host-access"][..], "SUCCEEDED"),
    ] {
        let s = crate::serve::Serve::start(args);
        let buildspec = buildspec(std::slice::from_ref(&command));
        let source = serde_json::json!({"type": "NO_SOURCE", "buildspec": buildspec}).to_string();
        let env = serde_json::json!({"type": "LINUX_CONTAINER", "image": DOCKER_IMAGE,
            "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": true})
        .to_string();
        s.ok(&[
            "codebuild",
            "create-project",
            "--name",
            "dockerish",
            "--source",
            &source,
            "--artifacts",
            "type=NO_ARTIFACTS",
            "--environment",
            &env,
            "--service-role",
            "arn:aws:iam::000000000000:role/any",
        ]);
        let id = s.start_build("dockerish")["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let b = s.wait_complete(&id);
        let log = std::fs::read_to_string(s.home.path().join("builds/dockerish/1/build.log"))
            .expect("the build's log");
        assert_eq!(b["buildStatus"], status, "{args:?}: {log}");
        assert_eq!(
            log.contains(&secret.text),
            status == "SUCCEEDED",
            "{args:?}: {log}"
        );
        assert_eq!(
            log.contains("Refused a Docker call of the build: a bind mount of the host path"),
            status == "FAILED",
            "{args:?}: {log}"
        );
        crate::util::assert_nothing_left(&id);
    }
}

/// One raw HTTP/1.1 request on a Unix socket: the status and the body.
fn raw(socket: &std::path::Path, head: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let req = format!(
        "{head} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn hostile_requests_on_the_guarded_socket_get_docker_errors_never_a_hang() {
    let b = privileged(&buildspec(&["sleep 300".to_owned()]));
    let mut running = b.spawn();
    running.wait_for_line(|l| l.contains("Running command sleep 300"));
    let socket = b.home.path().join("builds/it/1/docker.sock");
    assert!(socket.exists(), "no guarded socket at {}", socket.display());

    let (status, body) = raw(&socket, "POST /v1.41/containers/create", b"{not json");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let big = vec![b' '; 5 << 20];
    let (status, _) = raw(&socket, "POST /containers/create", &big);
    assert_eq!(status, 400);
    let (status, body) = raw(
        &socket,
        "POST /containers/create",
        br#"{"Image":"x","HostConfig":{"Binds":["/:/host"]}}"#,
    );
    assert_eq!(status, 403, "{body}");
    let v: serde_json::Value = serde_json::from_str(body.trim()).expect("Docker's JSON error");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("a bind mount of the host path /"),
        "{v}"
    );
    let (status, body) = raw(&socket, "POST /containers/create", br#"[1, 2]"#);
    assert_eq!(status, 403, "{body}");
    let (status, _) = raw(&socket, "GET /_ping", b"");
    assert_eq!(status, 200);

    let kill = Command::new("kill")
        .args(["-INT", &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let r = running.finish();
    assert_eq!(r.status(), "STOPPED");
    assert!(!socket.exists(), "the socket outlived its build");
}

#[test]
fn a_build_folder_too_long_for_a_unix_socket_still_gets_its_guarded_api() {
    let b = privileged(&buildspec(&[format!(
        "docker run --rm -v $(pwd):/src {INNER} cat /src/hello.txt"
    )]))
    .file("hello.txt", "long home\n");
    let long_home = b.home.path().join("h".repeat(120));
    let out = b
        .command()
        .env("LOCALBUILD_HOME", &long_home)
        .output()
        .unwrap();
    let r = b.finished(out);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of(&format!(
            "docker run --rm -v $(pwd):/src {INNER} cat /src/hello.txt"
        )),
        ["long home"]
    );
}
