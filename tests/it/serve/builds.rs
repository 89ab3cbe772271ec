//! Builds through the API: start, queue, stop, debug sessions, restarts, the log in pages.

use super::*;

#[test]
fn serve_runs_builds_for_the_aws_cli() {
    let s = Serve::start(&[]);
    let project = s.create_project("serve-demo", &["echo hello-from-serve"]);
    assert_eq!(
        project["project"]["arn"],
        "arn:aws:codebuild:us-east-1:000000000000:project/serve-demo"
    );

    let started = s.start_build("serve-demo");
    assert_eq!(started["buildStatus"], "IN_PROGRESS");
    assert_eq!(started["buildNumber"], 1);
    assert_eq!(phases(&started)[0], "SUBMITTED");
    let id = started["id"].as_str().unwrap().to_owned();
    let done = s.wait_complete(&id);
    assert_eq!(done["buildStatus"], "SUCCEEDED", "{done:#}");
    assert_eq!(
        phases(&done),
        [
            "SUBMITTED",
            "QUEUED",
            "PROVISIONING",
            "DOWNLOAD_SOURCE",
            "INSTALL",
            "PRE_BUILD",
            "BUILD",
            "POST_BUILD",
            "UPLOAD_ARTIFACTS",
            "FINALIZING",
            "COMPLETED"
        ]
    );
    assert!(done["logs"].get("localPath").is_none());
    assert_eq!(done["environment"]["image"], IMAGE);
    assert_eq!(done["serviceRole"], "arn:aws:iam::000000000000:role/any");

    // The log as CloudWatch Logs events.
    let stream = id.split_once(':').unwrap().1;
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/serve-demo",
        "--log-stream-name",
        stream,
        "--start-from-head",
    ]);
    let messages: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"hello-from-serve\n"), "{messages:?}");
    assert!(messages.iter().any(|m| m.starts_with("[Container] ")));
    assert!(events["events"][0]["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
    let groups = s.ok(&["logs", "describe-log-groups"]);
    assert_eq!(
        groups["logGroups"][0]["logGroupName"],
        "/aws/codebuild/serve-demo"
    );
    let err = s
        .aws(&[
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/serve-demo",
            "--log-stream-name",
            "nope",
        ])
        .unwrap_err();
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    assert!(
        err.contains("The specified log stream does not exist."),
        "{err}"
    );

    // The deep link serves the log.
    let link = done["logs"]["deepLink"].as_str().unwrap();
    let path = link.split_once(&s.addr).unwrap().1;
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        s.addr
    )
    .unwrap();
    let mut page = String::new();
    conn.read_to_string(&mut page).unwrap();
    assert!(page.contains("hello-from-serve"), "{page}");

    // Retry: a new build with the next number; listing is newest first.
    let retried = s.ok(&["codebuild", "retry-build", "--id", &id])["build"].clone();
    assert_eq!(retried["buildNumber"], 2);
    let id2 = retried["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_complete(&id2)["buildStatus"], "SUCCEEDED");
    let listed = s.ok(&[
        "codebuild",
        "list-builds-for-project",
        "--project-name",
        "serve-demo",
    ]);
    assert_eq!(listed["ids"], json!([id2, id]));
    let asc = s.ok(&["codebuild", "list-builds", "--sort-order", "ASCENDING"]);
    assert_eq!(asc["ids"], json!([id, id2]));

    let missing = s.ok(&["codebuild", "batch-get-builds", "--ids", "serve-demo:nope"]);
    assert_eq!(missing["buildsNotFound"], json!(["serve-demo:nope"]));
    let deleted = s.ok(&["codebuild", "batch-delete-builds", "--ids", &id]);
    assert_eq!(deleted["buildsDeleted"], json!([id]));
}

#[test]
fn serve_queues_and_stops_builds() {
    let s = Serve::start(&["--max-concurrent-builds", "1"]);
    s.create_project("serve-sleep", &["echo sleeping", "sleep 60"]);
    let first = s.start_build("serve-sleep")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = s.start_build("serve-sleep");
    let second_id = second["id"].as_str().unwrap().to_owned();
    assert_eq!(second["buildNumber"], 2);
    s.wait(&first, 60, "first build in BUILD", |b| {
        b["currentPhase"] == "BUILD"
    });
    // The first holds the only slot: the second is still QUEUED.
    let queued = s.build(&second_id);
    assert_eq!(queued["currentPhase"], "QUEUED", "{queued:#}");
    assert_eq!(queued["buildStatus"], "IN_PROGRESS");

    // A queued build stops without ever starting a container.
    let stopped = s.ok(&["codebuild", "stop-build", "--id", &second_id])["build"].clone();
    assert_eq!(stopped["buildStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(phases(&stopped), ["SUBMITTED", "QUEUED", "COMPLETED"]);
    assert!(containers_of(&second_id).is_empty());

    // A running one ends STOPPED and leaves nothing behind.
    let stopped = s.ok(&["codebuild", "stop-build", "--id", &first])["build"].clone();
    assert_eq!(stopped["buildStatus"], "STOPPED", "{stopped:#}");
    assert_eq!(stopped["buildComplete"], true);
    assert!(containers_of(&first).is_empty());
}

#[test]
fn serve_restarted_after_kill_9_finalises_what_it_left() {
    let mut s = Serve::start(&[]);
    s.create_project("victim", &["echo before", "sleep 300"]);
    s.create_project("done", &["echo finished"]);
    let done = s.start_build("done")["id"].as_str().unwrap().to_owned();
    s.wait_complete(&done);
    let id = s.start_build("victim")["id"].as_str().unwrap().to_owned();
    s.wait(&id, 120, "the sleep to run", |b| {
        b["currentPhase"] == "BUILD"
    });
    assert_eq!(containers_of(&id).len(), 1, "its container runs");
    // kill -9: no shutdown, no cleanup.
    let home = s.kill_9();

    let s = Serve::start_in(home, &[]);
    let b = s.build(&id);
    assert_eq!(b["buildStatus"], "FAILED", "{b:#}");
    assert_eq!(b["buildComplete"], true);
    let build = b["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phaseType"] == "BUILD")
        .unwrap();
    assert_eq!(build["phaseStatus"], "FAILED");
    assert!(
        build["contexts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("localbuild stopped"),
        "{build:#}"
    );
    assert!(
        containers_of(&id).is_empty(),
        "the dead server's container is gone"
    );
    // What had finished is intact, logs included.
    assert_eq!(s.build(&done)["buildStatus"], "SUCCEEDED");
    let events = s.ok(&[
        "logs",
        "get-log-events",
        "--log-group-name",
        "/aws/codebuild/victim",
        "--log-stream-name",
        id.split_once(':').unwrap().1,
        "--start-from-head",
    ]);
    assert!(events.to_string().contains("before"), "{events}");
}

#[test]
fn start_build_with_debug_session_enabled_pauses_at_a_breakpoint_until_codebuild_resume() {
    let s = Serve::start(&[]);
    s.create_project(
        "debugged",
        &[
            "export STAGE=two",
            "codebuild-breakpoint",
            "echo \"resumed with $STAGE\"",
        ],
    );
    let started = s.ok(&[
        "codebuild",
        "start-build",
        "--project-name",
        "debugged",
        "--debug-session-enabled",
    ])["build"]
        .clone();
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(started["debugSession"]["sessionEnabled"], true);
    // The build waits in its container (its sessionTarget) at the breakpoint.
    let b = s.wait(&id, 60, "a session target", |b| {
        b["debugSession"]["sessionTarget"].is_string()
    });
    let target = b["debugSession"]["sessionTarget"]
        .as_str()
        .unwrap()
        .to_owned();
    let exec = |args: &[&str]| {
        Command::new("docker")
            .args(["exec", &target])
            .args(args)
            .output()
            .unwrap()
    };
    eventually("the build to pause", Duration::from_secs(60), || {
        exec(&["test", "-p", "/codebuild/output/tmp/debug/resume"])
            .status
            .success()
    });
    assert_eq!(s.build(&id)["buildStatus"], "IN_PROGRESS");
    let resumed = exec(&["codebuild-resume"]);
    assert_eq!(
        String::from_utf8_lossy(&resumed.stdout),
        "codebuild-resume: the build goes on\n"
    );
    let done = s.wait_complete(&id);
    assert_eq!(done["buildStatus"], "SUCCEEDED");
    assert_eq!(done["debugSession"]["sessionTarget"], target.as_str());
}

#[test]
fn a_build_without_source_runs_in_its_empty_source_folder_and_uploads_artifacts() {
    let s = Serve::start(&[]);
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - test \"$(pwd)\" = \"$CODEBUILD_SRC_DIR\"\n      - test -z \"$(ls -A)\"\n      - echo made > out.txt\nartifacts:\n  files: [out.txt]\n";
    s.project(
        "nosource",
        json!({"type": "NO_SOURCE", "buildspec": buildspec}),
    )
    .create();
    let id = s.start_build("nosource")["id"].as_str().unwrap().to_owned();
    let b = s.wait_complete(&id);
    assert_eq!(b["buildStatus"], "SUCCEEDED", "{b:#}");
    let made = s
        .home
        .path()
        .join("builds/nosource/1/artifacts/primary/out.txt");
    assert_eq!(std::fs::read_to_string(made).unwrap(), "made\n");
}

/// The serve process's memory: (VmHWM, VmRSS) in bytes, from `/proc/<pid>/status`.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {status}"));
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kb * 1024
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// GetLogEvents and FilterLogEvents read pages of a log through its index, not the whole log:
/// four concurrent `--limit 10` calls on a 35 MB log leave the server's peak memory where it
/// was, give or take far less than the log (issue 21, item 8). An older log without an index
/// gets one on its first read, in bounded memory too.
#[test]
fn log_events_of_a_large_log_are_read_in_pages_in_bounded_memory() {
    let s = Serve::start(&[]);
    s.create_project(
        "big-log",
        &[
            "awk 'BEGIN { for (i = 0; i < 500000; i++) printf \"line %07d of a large build log, padded to about eighty bytes ......\\n\", i }'",
        ],
    );
    let id = s.start_build("big-log")["id"].as_str().unwrap().to_owned();
    assert_eq!(s.wait_complete(&id)["buildStatus"], "SUCCEEDED");
    let log_path = s.home.path().join("builds/big-log/1/build.log");
    let log = std::fs::read_to_string(&log_path).unwrap();
    let size = log.len() as u64;
    assert!(size > 30_000_000, "the log has {size} bytes");
    let lines: Vec<String> = log.split_inclusive('\n').map(str::to_owned).collect();
    drop(log);

    // A fresh server: its peak memory so far owes nothing to the build.
    let mut s = s;
    let s = Serve::start_in(s.kill_9(), &[]);
    let stream = id.split_once(':').unwrap().1.to_owned();
    let page = |from_head: bool| -> Vec<String> {
        let mut args = vec![
            "logs",
            "get-log-events",
            "--log-group-name",
            "/aws/codebuild/big-log",
            "--log-stream-name",
            &stream,
            "--limit",
            "10",
        ];
        if from_head {
            args.push("--start-from-head");
        }
        s.ok(&args)["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_owned())
            .collect()
    };
    s.ok(&["logs", "describe-log-groups"]);
    let pid = s.pid();
    let (before, _) = memory_of(pid);
    let pages: Vec<Vec<String>> = std::thread::scope(|t| {
        let calls: Vec<_> = [true, false, true, false]
            .into_iter()
            .map(|head| t.spawn(move || page(head)))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(pages[0], lines[..10], "the first ten lines");
    assert_eq!(pages[1], lines[lines.len() - 10..], "the last ten lines");
    assert_eq!((&pages[2], &pages[3]), (&pages[0], &pages[1]));
    // A filter walks the whole log, a line at a time.
    let found = s.ok(&[
        "logs",
        "filter-log-events",
        "--log-group-name",
        "/aws/codebuild/big-log",
        "--filter-pattern",
        "\"line 0314159 \"",
    ]);
    let found = found["events"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("line 0314159 of")
    );
    let (after, _) = memory_of(pid);
    assert!(
        after - before < size / 4,
        "the server's peak memory grew by {} MB reading pages of a {} MB log",
        (after - before) >> 20,
        size >> 20
    );

    // A log written before indexes existed: the first read makes its index, by a streaming pass.
    let index = s.home.path().join("builds/big-log/1/build.log.idx");
    std::fs::remove_file(&index).unwrap();
    assert_eq!(page(false), lines[lines.len() - 10..]);
    assert!(index.exists(), "the index is made again and kept");
    let (rebuilt, _) = memory_of(pid);
    assert!(
        rebuilt - before < size / 4,
        "the server's peak memory grew by {} MB rebuilding the index of a {} MB log",
        (rebuilt - before) >> 20,
        size >> 20
    );
}

/// The console's live log (`/builds/{id}/log/events`, Server-Sent Events) of a build still in
/// the queue waits for it to start, streams its lines as they come and ends with the build —
/// woken by the build's events, never by a timer.
#[test]
fn the_live_log_of_a_queued_build_streams_every_line_then_ends() {
    let s = Serve::start(&["--max-concurrent-builds", "1"]);
    s.create_project("stream-first", &["sleep 3"]);
    s.create_project(
        "stream-second",
        &["for i in 1 2 3; do echo line-$i; sleep 0.3; done"],
    );
    let first = s.start_build("stream-first")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = s.start_build("stream-second")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.build(&second)["currentPhase"], "QUEUED");
    // Read to the end of the stream: it ends only when the build has.
    let reply = crate::api::get(&s.addr, &format!("/builds/{second}/log/events"));
    assert_eq!(reply.status, 200, "{reply:?}");
    let body = &reply.body;
    let at = |needle: &str| {
        body.find(needle)
            .unwrap_or_else(|| panic!("the stream should hold {needle:?}:\n{body}"))
    };
    assert!(
        at("line-1") < at("line-2") && at("line-2") < at("line-3"),
        "{body}"
    );
    assert!(at("line-3") < at("event: end"), "{body}");
    assert_eq!(s.build(&second)["buildStatus"], "SUCCEEDED");
    assert_eq!(s.build(&first)["buildStatus"], "SUCCEEDED");
}
