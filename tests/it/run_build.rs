//! `localbuild run` end to end on a real Docker daemon: CodeBuild's phases, transitions, shell
//! semantics, log lines, variables and record.

use crate::harness::{Build, IMAGE};

fn full(statuses: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE"]
        .iter()
        .map(|p| format!("{p}:SUCCEEDED"))
        .collect();
    v.extend(statuses.iter().map(|s| (*s).to_owned()));
    v.push("FINALIZING:SUCCEEDED".into());
    v.push("COMPLETED".into());
    v
}

#[test]
fn a_successful_build_runs_every_phase_and_exits_0() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hello from build\n",
    );
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.phase_list(),
        full(&[
            "INSTALL:SUCCEEDED",
            "PRE_BUILD:SUCCEEDED",
            "BUILD:SUCCEEDED",
            "POST_BUILD:SUCCEEDED",
            "UPLOAD_ARTIFACTS:SUCCEEDED"
        ])
    );
    assert_eq!(r.output_of("echo hello from build"), ["hello from build"]);
    assert_eq!(r.status(), "SUCCEEDED");
    assert!(
        r.stdout.contains("\nBUILD              SUCCEEDED"),
        "{}",
        r.stdout
    );
}

#[test]
fn log_lines_follow_the_agent_format() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo hi\n      - exit 3\n",
    );
    let r = b.run();
    let lines = r.log_lines();
    let expect = [
        "Running on localbuild 0.1.0",
        "Phase is DOWNLOAD_SOURCE",
        "Processing environment variables",
        "Phases found in YAML: 1",
        " BUILD: 2 commands",
        "Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED",
        "Phase context status code:  Message: ",
        "Entering phase INSTALL",
        "Phase complete: INSTALL State: SUCCEEDED",
        "Entering phase BUILD",
        "Running command echo hi",
        "hi",
        "",
        "Running command exit 3",
        "",
        "Command did not exit successfully exit 3 exit status 3",
        "Phase complete: BUILD State: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: exit 3. Reason: exit status 3",
        "Entering phase POST_BUILD",
    ];
    // Each expected line appears, in this order.
    let mut at = 0;
    for e in expect {
        match lines[at..].iter().position(|l| l == e) {
            Some(i) => at += i + 1,
            None => panic!("missing or out of order: {e:?}\n{}", r.stdout),
        }
    }
    // Every agent line has the `[Container] YYYY/MM/DD HH:MM:SS.ffffff ` prefix.
    let re =
        regex::Regex::new(r"^\[Container\] \d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{6} ").unwrap();
    for l in r.stdout.lines().filter(|l| l.starts_with("[Container]")) {
        assert!(re.is_match(l), "bad agent line {l:?}");
    }
    // The log file kept with the record holds the same build log.
    let log = std::fs::read_to_string(r.record["logs"]["localPath"].as_str().unwrap()).unwrap();
    assert!(log.contains("Command did not exit successfully exit 3 exit status 3"));
    assert!(log.contains("\nhi\n\n"));
}

#[test]
fn install_failure_goes_straight_to_finalizing() {
    let r = Build::new(
        "version: 0.2\nphases:\n  install:\n    commands:\n      - exit 1\n  build:\n    commands:\n      - echo never\n",
    )
    .run();
    assert_eq!(r.code, 1);
    assert_eq!(r.phase_list(), full(&["INSTALL:FAILED"]));
    assert!(!r.stdout.contains("Entering phase BUILD"));
}

#[test]
fn pre_build_failure_skips_build_post_build_and_upload() {
    let r = Build::new("version: 0.2\nphases:\n  pre_build:\n    commands:\n      - false\n").run();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.phase_list(),
        full(&["INSTALL:SUCCEEDED", "PRE_BUILD:FAILED"])
    );
}

#[test]
fn build_failure_still_runs_post_build_which_sees_succeeding_0() {
    let r = Build::new(
        r#"version: 0.2
phases:
  build:
    commands:
      - 'echo "before: $CODEBUILD_BUILD_SUCCEEDING"'
      - exit 7
      - echo not reached
    finally:
      - 'echo "finally: $CODEBUILD_BUILD_SUCCEEDING last=$CODEBUILD_LAST_EXIT"'
  post_build:
    commands:
      - 'echo "post: $CODEBUILD_BUILD_SUCCEEDING"'
"#,
    )
    .run();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.phase_list(),
        full(&[
            "INSTALL:SUCCEEDED",
            "PRE_BUILD:SUCCEEDED",
            "BUILD:FAILED",
            "POST_BUILD:SUCCEEDED",
            "UPLOAD_ARTIFACTS:SUCCEEDED"
        ])
    );
    assert_eq!(
        r.output_of("echo \"before: $CODEBUILD_BUILD_SUCCEEDING\""),
        ["before: 1"]
    );
    assert_eq!(
        r.output_of("echo \"finally: $CODEBUILD_BUILD_SUCCEEDING last=$CODEBUILD_LAST_EXIT\""),
        ["finally: 0 last=7"]
    );
    assert_eq!(
        r.output_of("echo \"post: $CODEBUILD_BUILD_SUCCEEDING\""),
        ["post: 0"]
    );
    assert!(!r.stdout.contains("not reached"));
    assert_eq!(
        r.context("BUILD"),
        (
            "COMMAND_EXECUTION_ERROR".into(),
            "Error while executing command: exit 7. Reason: exit status 7".into()
        )
    );
    assert_eq!(r.status(), "FAILED");
}

#[test]
fn post_build_failure_still_uploads() {
    let r =
        Build::new("version: 0.2\nphases:\n  post_build:\n    commands:\n      - exit 2\n").run();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.phases().last().map(|p| p.0.clone()),
        Some("COMPLETED".to_owned())
    );
    assert!(r.phase_list().contains(&"POST_BUILD:FAILED".to_owned()));
    assert!(
        r.phase_list()
            .contains(&"UPLOAD_ARTIFACTS:SUCCEEDED".to_owned())
    );
}

#[test]
fn finally_stops_at_its_own_first_failure_and_fails_the_phase() {
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo ok\n    finally:\n      - exit 4\n      - echo after-finally-failure\n",
    )
    .run();
    assert_eq!(r.code, 1);
    assert!(r.phase_list().contains(&"BUILD:FAILED".to_owned()));
    assert!(!r.stdout.contains("after-finally-failure\n"));
}

#[test]
fn on_failure_abort_skips_post_build_and_upload() {
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    on-failure: ABORT\n    commands:\n      - exit 1\n  post_build:\n    commands:\n      - echo nope\n",
    )
    .run();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.phase_list(),
        full(&["INSTALL:SUCCEEDED", "PRE_BUILD:SUCCEEDED", "BUILD:FAILED"])
    );
}

#[test]
fn on_failure_continue_goes_on_and_the_build_still_fails() {
    let r = Build::new(
        "version: 0.2\nphases:\n  install:\n    on-failure: CONTINUE\n    commands:\n      - exit 1\n  pre_build:\n    commands:\n      - 'echo \"pre: $CODEBUILD_BUILD_SUCCEEDING\"'\n",
    )
    .run();
    assert_eq!(r.code, 1);
    assert!(r.phase_list().contains(&"INSTALL:FAILED".to_owned()));
    assert!(r.phase_list().contains(&"PRE_BUILD:SUCCEEDED".to_owned()));
    assert_eq!(
        r.output_of("echo \"pre: $CODEBUILD_BUILD_SUCCEEDING\""),
        ["pre: 0"]
    );
    assert_eq!(r.status(), "FAILED");
}

#[test]
fn on_failure_retry_reruns_the_phase_and_keeps_shell_state() {
    // The phase fails twice, then succeeds on the third attempt (state persists in a file).
    let r = Build::new(
        r#"version: 0.2
phases:
  build:
    on-failure: RETRY-2
    commands:
      - echo x >> /tmp/attempts
      - test "$(wc -l < /tmp/attempts)" -ge 3
"#,
    )
    .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("Retrying phase BUILD (attempt 1 of 2)"));
    assert!(r.stdout.contains("Retrying phase BUILD (attempt 2 of 2)"));
    assert!(r.phase_list().contains(&"BUILD:SUCCEEDED".to_owned()));
}

#[test]
fn cwd_and_variables_carry_over_across_commands_and_phases() {
    let r = Build::new(
        r#"version: 0.2
env:
  variables:
    FROM_SPEC: "$HOME/not-expanded"
    NUMBER: 4.10
phases:
  install:
    commands:
      - mkdir -p /tmp/w && cd /tmp/w
      - PLAIN=plain-value
      - export EXPORTED=exported-value
  build:
    commands:
      - echo "pwd=$(pwd) plain=$PLAIN exported=$EXPORTED"
      - sh -c 'echo "child sees $PLAIN"'
      - echo "spec=$FROM_SPEC number=$NUMBER"
      - exit 0
      - echo "still running after exit 0"
      - cd "$CODEBUILD_SRC_DIR" && echo "src=$(pwd)"
"#,
    )
    .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(
        r.output_of("echo \"pwd=$(pwd) plain=$PLAIN exported=$EXPORTED\""),
        ["pwd=/tmp/w plain=plain-value exported=exported-value"]
    );
    assert_eq!(
        r.output_of("sh -c 'echo \"child sees $PLAIN\"'"),
        ["child sees plain-value"]
    );
    assert_eq!(
        r.output_of("echo \"spec=$FROM_SPEC number=$NUMBER\""),
        ["spec=$HOME/not-expanded number=4.10"]
    );
    assert_eq!(
        r.output_of("echo \"still running after exit 0\""),
        ["still running after exit 0"]
    );
    let src = r.output_of("cd \"$CODEBUILD_SRC_DIR\" && echo \"src=$(pwd)\"");
    assert!(
        regex::Regex::new(r"^src=/codebuild/output/src\d+/src$")
            .unwrap()
            .is_match(&src[0]),
        "{src:?}"
    );
}

#[test]
fn version_0_1_runs_every_command_in_a_fresh_shell() {
    let r = Build::new(
        "version: 0.1\nphases:\n  build:\n    commands:\n      - cd /tmp && X=1\n      - echo \"[$X] $(pwd)\"\n",
    )
    .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    let out = r.output_of("echo \"[$X] $(pwd)\"");
    assert_eq!(out.len(), 1);
    assert!(out[0].starts_with("[] /codebuild/output/src"), "{out:?}");
}

#[test]
fn a_multi_line_block_is_one_command_with_its_last_status() {
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - |\n        false\n        echo masked\n      - |\n        set -e\n        false\n        echo unreachable\n",
    )
    .run();
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("Running command false\necho masked\n"));
    assert!(r.stdout.contains("masked\n"));
    assert!(r.stdout.contains(
        "Error while executing command: set -e\nfalse\necho unreachable\n. Reason: exit status 1"
    ));
}

#[test]
fn codebuild_variables_are_set() {
    let r = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - env | grep -E '^(CODEBUILD_|AWS_|HOME=)' | sort\n",
    )
    .env("AWS_REGION", "eu-west-3")
    .run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    let vars: std::collections::HashMap<String, String> = r
        .output_of("env | grep -E '^(CODEBUILD_|AWS_|HOME=)' | sort")
        .iter()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let id = r.record["id"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^it:[0-9a-f-]{36}$")
            .unwrap()
            .is_match(id),
        "{id}"
    );
    assert_eq!(vars["CODEBUILD_BUILD_ID"], id);
    assert_eq!(
        vars["CODEBUILD_BUILD_ARN"],
        format!("arn:aws:codebuild:eu-west-3:000000000000:build/{id}")
    );
    assert_eq!(vars["AWS_REGION"], "eu-west-3");
    assert_eq!(vars["AWS_DEFAULT_REGION"], "eu-west-3");
    assert_eq!(vars["CODEBUILD_BUILD_NUMBER"], "1");
    assert_eq!(vars["CODEBUILD_BUILD_IMAGE"], IMAGE);
    assert_eq!(vars["CODEBUILD_BUILD_SUCCEEDING"], "1");
    assert_eq!(vars["HOME"], "/root");
    assert!(vars["CODEBUILD_START_TIME"].parse::<u64>().unwrap() > 1_700_000_000_000);
    assert!(vars["CODEBUILD_SRC_DIR"].starts_with("/codebuild/output/src"));
    assert!(!vars.contains_key("CODEBUILD_RESOLVED_SOURCE_VERSION"));
}

#[test]
fn resolved_source_version_is_the_git_head() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo \"rev=$CODEBUILD_RESOLVED_SOURCE_VERSION\"\n",
    );
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-C"])
            .arg(b.src())
            .args(args)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        String::from_utf8(ok.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "x"]);
    let head = git(&["rev-parse", "HEAD"]).trim().to_owned();
    let r = b.run();
    assert_eq!(
        r.output_of("echo \"rev=$CODEBUILD_RESOLVED_SOURCE_VERSION\""),
        [format!("rev={head}")]
    );
    assert_eq!(r.record["resolvedSourceVersion"], head.as_str());
}

#[test]
fn the_record_has_codebuilds_shape_and_build_numbers_count() {
    let b = Build::new("version: 0.2\nphases:\n  build:\n    commands:\n      - exit 1\n");
    let first = b.run();
    let r = b.run();
    assert_eq!(first.record["buildNumber"], 1);
    assert_eq!(r.record["buildNumber"], 2);
    let rec = &r.record;
    assert_eq!(rec["currentPhase"], "COMPLETED");
    assert_eq!(rec["buildStatus"], "FAILED");
    assert_eq!(rec["buildComplete"], true);
    assert_eq!(rec["projectName"], "it");
    assert_eq!(rec["environment"]["image"], IMAGE);
    assert_eq!(rec["logs"]["groupName"], "/aws/codebuild/it");
    assert!(rec["startTime"].as_f64().unwrap() <= rec["endTime"].as_f64().unwrap());
    let phases = rec["phases"].as_array().unwrap();
    assert!(
        phases[0].get("contexts").is_none(),
        "SUBMITTED has no contexts"
    );
    let completed = phases.last().unwrap();
    assert!(completed.get("phaseStatus").is_none() && completed.get("endTime").is_none());
    assert_eq!(completed["startTime"], rec["endTime"]);
    // Contiguous phases with truncated integer durations.
    for w in phases.windows(2) {
        assert_eq!(w[0]["endTime"], w[1]["startTime"]);
        let d = w[0]["endTime"].as_f64().unwrap() - w[0]["startTime"].as_f64().unwrap();
        assert_eq!(
            w[0]["durationInSeconds"].as_i64().unwrap(),
            d.floor() as i64
        );
    }
    assert_eq!(r.context("DOWNLOAD_SOURCE"), (String::new(), String::new()));
    // The record is also kept with the build.
    let kept = r.home.join("builds/it/2/build.json");
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(kept).unwrap()).unwrap();
    assert_eq!(kept["id"], rec["id"]);
}

#[test]
fn the_source_directory_is_not_modified_without_mount() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo changed > input.txt\n      - touch new-file\n      - cat input.txt\n",
    )
    .file("input.txt", "original\n");
    // A sparse file (Docker cannot extract GNU sparse tar entries).
    std::fs::File::create(b.src().join("sparse.bin"))
        .unwrap()
        .set_len(4 << 20)
        .unwrap();
    let r = b.run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(r.output_of("cat input.txt"), ["changed"]);
    assert_eq!(
        std::fs::read_to_string(b.src().join("input.txt")).unwrap(),
        "original\n"
    );
    assert!(!b.src().join("new-file").exists());
}

#[test]
fn with_mount_the_build_works_on_the_source_directory_itself() {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo built > out.txt\n",
    )
    .arg("-m");
    let r = b.run();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert_eq!(
        std::fs::read_to_string(b.src().join("out.txt")).unwrap(),
        "built\n"
    );
}

#[test]
fn a_buildspec_error_fails_download_source_with_yaml_file_error() {
    let r = Build::new("version: 0.2\nphases:\n  biuld:\n    commands:\n      - echo x\n").run();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.phase_list(),
        full(&[])[..3]
            .iter()
            .cloned()
            .chain([
                "DOWNLOAD_SOURCE:FAILED".to_owned(),
                "FINALIZING:SUCCEEDED".to_owned(),
                "COMPLETED".to_owned(),
            ])
            .collect::<Vec<_>>()
    );
    let (code, msg) = r.context("DOWNLOAD_SOURCE");
    assert_eq!(code, "YAML_FILE_ERROR");
    assert!(
        msg.starts_with(
            "Invalid buildspec phase name: biuld. Expecting: build,install,post_build,pre_build"
        ),
        "{msg}"
    );
    assert!(r.stderr.contains("buildspec.yml:3:"), "{}", r.stderr);
}

#[test]
fn a_missing_buildspec_is_yaml_file_does_not_exist() {
    let b = Build::new("version: 0.2\n");
    std::fs::remove_file(b.src().join("buildspec.yml")).unwrap();
    let r = b.run();
    assert_eq!(r.code, 1);
    assert_eq!(
        r.context("DOWNLOAD_SOURCE"),
        ("YAML_FILE_ERROR".into(), "YAML file does not exist".into())
    );
}

#[test]
fn an_image_that_cannot_be_pulled_is_a_provisioning_fault() {
    let r = Build::new("version: 0.2\n")
        .image("127.0.0.1:1/none:0")
        .run();
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.status(), "FAULT");
    let (code, msg) = r.context("PROVISIONING");
    assert_eq!(code, "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE");
    assert!(msg.contains("127.0.0.1:1/none:0"), "{msg}");
    // The record keeps CodeBuild's wording; what to do about it is the CLI's to say.
    assert!(!msg.contains("-i") && !msg.contains("localbuild"), "{msg}");
    assert!(
        r.stderr.contains("hint:") && r.stderr.contains("-i"),
        "{}",
        r.stderr
    );
    assert!(r.phase_list().contains(&"PROVISIONING:FAILED".to_owned()));
    assert!(
        !r.phase_list()
            .iter()
            .any(|p| p.starts_with("DOWNLOAD_SOURCE"))
    );
}

#[test]
fn an_unreachable_docker_daemon_is_exit_3_naming_the_socket() {
    let r = Build::new("version: 0.2\n")
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .run();
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("unix:///nonexistent/docker.sock"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("Is Docker running?"), "{}", r.stderr);
}

#[test]
fn ctrl_c_stops_the_build_records_stopped_and_removes_the_container() {
    stop_with("-INT");
}

#[test]
fn sigterm_stops_the_build_like_ctrl_c() {
    stop_with("-TERM");
}

fn stop_with(signal: &str) {
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 300\n",
    );
    let mut running = b.spawn();
    // Wait until the long command is running.
    running.wait_for_line(|l| l.contains("Running command sleep 300"));
    let started = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .args([signal, &running.pid().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let r = running.finish();
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(r.code, 130, "{}", r.stdout);
    assert_eq!(r.status(), "STOPPED");
    assert!(
        r.phase_list().contains(&"BUILD:STOPPED".to_owned()),
        "{:?}",
        r.phase_list()
    );
    assert!(r.stdout.contains("Phase complete: BUILD State: STOPPED"));
}

#[test]
fn secondary_sources_get_their_own_directories_and_variables() {
    let lib = tempfile::tempdir().unwrap();
    std::fs::write(lib.path().join("lib.txt"), "from the library\n").unwrap();
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - cat \"$CODEBUILD_SRC_DIR_lib/lib.txt\"\n      - cat main.txt\n      - echo \"$CODEBUILD_SRC_DIR $CODEBUILD_SRC_DIR_lib\"\n",
    )
    .file("main.txt", "from the primary\n")
    .arg("-s")
    .arg(&format!("lib:{}", lib.path().display()));
    let r = b.run();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.output_of("cat \"$CODEBUILD_SRC_DIR_lib/lib.txt\""),
        ["from the library"]
    );
    assert_eq!(r.output_of("cat main.txt"), ["from the primary"]);
    let dirs = r.output_of("echo \"$CODEBUILD_SRC_DIR $CODEBUILD_SRC_DIR_lib\"");
    let re = regex::Regex::new(
        r"^(/codebuild/output/src\d+/src)/s3/00 (/codebuild/output/src\d+/src)/s3/01$",
    )
    .unwrap();
    let caps = re.captures(&dirs[0]).unwrap_or_else(|| panic!("{dirs:?}"));
    assert_eq!(&caps[1], &caps[2]);
    assert!(
        r.log_lines()
            .iter()
            .any(|l| l.starts_with("CODEBUILD_SRC_DIR_lib=/codebuild/output/src"))
    );
    assert_eq!(r.record["secondarySources"][0]["sourceIdentifier"], "lib");
}

#[test]
fn bad_source_flags_are_usage_errors() {
    let r = Build::new("version: 0.2\n")
        .arg("-s")
        .arg("lib:/nonexistent/dir")
        .run();
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("-s: source directory '/nonexistent/dir'"),
        "{}",
        r.stderr
    );
    let r = Build::new("version: 0.2\n").arg("-s").arg("/tmp").run();
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("only one primary source"), "{}", r.stderr);
}

#[test]
fn output_streams_live_while_the_command_runs() {
    // The command prints a line, then waits for a file the test creates only after it has seen
    // that line: the line can only have arrived while the command was still running.
    let b = Build::new(
        "version: 0.2\nphases:\n  build:\n    commands:\n      - echo tick-1; while [ ! -f go ]; do sleep 0.1; done; echo tick-2\n",
    )
    .arg("-m");
    let mut running = b.spawn();
    running.wait_for_line(|l| l == "tick-1\n");
    std::fs::write(b.src().join("go"), "").unwrap();
    let r = running.finish();
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("tick-2\n"));
}

#[test]
fn an_image_without_a_shell_is_single_build_container_dead() {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY Dockerfile /\n",
    )
    .unwrap();
    let image = format!("localbuild-test/noshell:{}", std::process::id());
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &image])
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let r = Build::new("version: 0.2\n").image(&image).run();
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &image])
        .output();
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.status(), "FAULT");
    let (code, msg) = r.context("PROVISIONING");
    assert_eq!(code, "SINGLE_BUILD_CONTAINER_DEAD");
    assert!(msg.contains("Build container found dead"), "{msg}");
}
