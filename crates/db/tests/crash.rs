//! Multi-process tests: the test executable re-runs itself as a child
//! writer (selected by an environment variable), which is either killed with
//! SIGKILL mid-write or run several times concurrently.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use localbuild_db::{BuildQuery, Db, NewBuild};

const CHILD_DB: &str = "LOCALBUILD_DB_TEST_CHILD_DB";
const CHILD_TAG: &str = "LOCALBUILD_DB_TEST_CHILD_TAG";
const CHILD_COUNT: &str = "LOCALBUILD_DB_TEST_CHILD_COUNT";

fn record(id: &str, n: u64, status: &str) -> String {
    format!(r#"{{"id":"{id}","buildNumber":{n},"buildStatus":"{status}"}}"#)
}

/// Child entry point. Does nothing in a normal test run. With the variables
/// set it inserts builds (insert + completing update, as a build run does)
/// and prints `committed <i> <number>` after each completed build.
/// `CHILD_COUNT` bounds the loop; without it the child writes until killed.
#[test]
fn child_writer() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let tag = std::env::var(CHILD_TAG).unwrap_or_else(|_| "w".into());
    let count: Option<u64> = std::env::var(CHILD_COUNT).ok().map(|s| s.parse().unwrap());
    let db = Db::open(Path::new(&path)).unwrap();
    let (pid, start) = localbuild_db::this_process();
    let stdout = std::io::stdout();
    let mut i = 0u64;
    while count.is_none_or(|c| i < c) {
        let id = format!("p:{tag}-{i}");
        let b = NewBuild {
            id: id.clone(),
            project: "p".into(),
            arn: format!("arn:{id}"),
            start_time: i as f64,
            status: "IN_PROGRESS".into(),
            owner_pid: pid,
            owner_start: start,
            log_path: None,
        };
        let n = db
            .insert_build(&b, |n| record(&id, n, "IN_PROGRESS"))
            .unwrap();
        // Pad the document so pages and WAL frames are really written.
        let json = record(&id, n, "SUCCEEDED")
            .replace('}', &format!(r#","pad":"{}"}}"#, "x".repeat(2000)));
        db.update_build(&id, "SUCCEEDED", true, &json).unwrap();
        let mut out = stdout.lock();
        writeln!(out, "committed {i} {n}").unwrap();
        out.flush().unwrap();
        i += 1;
    }
}

fn child(path: &Path, tag: &str, count: Option<u64>) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_writer", "--nocapture", "--test-threads=1"])
        .env(CHILD_DB, path)
        .env(CHILD_TAG, tag)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    match count {
        Some(c) => cmd.env(CHILD_COUNT, c.to_string()),
        None => cmd.env_remove(CHILD_COUNT),
    };
    cmd
}

/// Parses a `committed <i> <number>` report. libtest may print its own
/// `test child_writer ... ` in front of the first one on the same line.
fn parse_committed(line: &str) -> Option<(u64, u64)> {
    let at = line.find("committed ")?;
    let mut parts = line[at + "committed ".len()..].split(' ');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[test]
fn survives_writer_killed_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    // Create the file first so the child only ever writes builds.
    Db::open(&path)
        .unwrap()
        .create_project("p", "{}", 0.0)
        .unwrap();

    let mut proc = child(&path, "k", None).spawn().unwrap();
    let reader = BufReader::new(proc.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut committed: Vec<(u64, u64)> = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        if let Some(c) = parse_committed(&line) {
            committed.push(c);
        }
        if committed.len() >= 150 || Instant::now() > deadline {
            break;
        }
    }
    // SIGKILL while the child is still writing (it never stops on its own).
    proc.kill().unwrap();
    let status = proc.wait().unwrap();
    assert!(!status.success(), "child should have been killed: {status}");
    assert!(
        committed.len() >= 150,
        "child only committed {} builds before deadline",
        committed.len()
    );

    let db = Db::open(&path).unwrap();
    assert!(db.integrity_check().unwrap());
    // Every build the child reported as committed is there, complete, intact.
    for &(i, n) in &committed {
        let id = format!("p:k-{i}");
        let b = db
            .get_build(&id)
            .unwrap()
            .unwrap_or_else(|| panic!("{id} lost"));
        assert_eq!(b.number, n);
        assert!(b.complete);
        assert_eq!(b.status, "SUCCEEDED");
        assert!(
            b.json
                .starts_with(&format!(r#"{{"id":"{id}","buildNumber":{n},"#))
        );
        assert!(
            b.json
                .ends_with(&format!(r#""pad":"{}"}}"#, "x".repeat(2000)))
        );
    }
    // Whatever else got committed before the kill is readable, numbered
    // contiguously, and at most one build is left half-done (inserted but not
    // yet completed) -- the one the child was working on.
    let (ids, next) = db
        .list_builds(&BuildQuery {
            descending: false,
            page_size: 100_000,
            ..Default::default()
        })
        .unwrap();
    assert!(next.is_none());
    let rows = db.get_builds(&ids).unwrap();
    assert!(rows.len() >= committed.len());
    let numbers: Vec<u64> = rows.iter().map(|b| b.number).collect();
    assert_eq!(numbers, (1..=rows.len() as u64).collect::<Vec<_>>());
    assert!(rows.iter().filter(|b| !b.complete).count() <= 1);
    // That half-done build is an orphan: its owner is gone.
    let orphans = db.orphans(localbuild_db::process_alive).unwrap();
    assert_eq!(orphans.len(), rows.iter().filter(|b| !b.complete).count());

    // The file is fully writable afterwards.
    let b = NewBuild {
        id: "p:after".into(),
        project: "p".into(),
        arn: "arn:after".into(),
        start_time: 1e9,
        status: "IN_PROGRESS".into(),
        owner_pid: 1,
        owner_start: 1,
        log_path: None,
    };
    assert_eq!(
        db.insert_build(&b, |_| "{}".into()).unwrap(),
        rows.len() as u64 + 1
    );
}

#[test]
fn concurrent_writer_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/history.db");
    // The children race to create and migrate the file themselves.
    let procs: Vec<_> = (0..3)
        .map(|t| child(&path, &format!("c{t}"), Some(30)).spawn().unwrap())
        .collect();
    let mut reported = Vec::new();
    for p in procs {
        let out = p.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed: {:?}", out.status);
        let text = String::from_utf8(out.stdout).unwrap();
        let numbers: Vec<u64> = text
            .lines()
            .filter_map(parse_committed)
            .map(|(_, n)| n)
            .collect();
        assert_eq!(numbers.len(), 30);
        reported.extend(numbers);
    }
    reported.sort_unstable();
    assert_eq!(reported, (1..=90).collect::<Vec<u64>>());
    let db = Db::open(&path).unwrap();
    assert!(db.integrity_check().unwrap());
    assert!(db.orphans(|_, _| false).unwrap().is_empty());
}
