//! Build numbering, listing, deletion and orphan detection against real
//! SQLite files.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::thread;

use localbuild_db::{BuildQuery, Db, DbError, NewBuild, process_alive, this_process};

fn new_build(project: &str, id: &str, start: f64) -> NewBuild {
    NewBuild {
        id: id.to_string(),
        project: project.to_string(),
        arn: format!("arn:aws:codebuild:us-east-1:000000000000:build/{id}"),
        start_time: start,
        status: "IN_PROGRESS".to_string(),
        owner_pid: 4242,
        owner_start: 99,
        log_path: Some(format!("/logs/{id}.log")),
    }
}

fn record(id: &str, n: u64) -> String {
    format!(r#"{{"id":"{id}","buildNumber":{n}}}"#)
}

fn insert(db: &Db, project: &str, id: &str, start: f64) -> u64 {
    db.insert_build(&new_build(project, id, start), |n| record(id, n))
        .unwrap()
}

fn open(dir: &Path) -> Db {
    Db::open(&dir.join("history.db")).unwrap()
}

#[test]
fn numbers_are_sequential_per_project() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    assert_eq!(insert(&db, "a", "a:1", 1.0), 1);
    assert_eq!(insert(&db, "a", "a:2", 2.0), 2);
    assert_eq!(insert(&db, "b", "b:1", 3.0), 1);
    assert_eq!(insert(&db, "a", "a:3", 4.0), 3);
    assert_eq!(insert(&db, "b", "b:2", 5.0), 2);

    let row = db.build_by_number("a", 3).unwrap().unwrap();
    assert_eq!(row.id, "a:3");
    assert_eq!(row.json, record("a:3", 3));
    assert_eq!(row.number, 3);
    assert!(!row.complete);
    assert_eq!(row.status, "IN_PROGRESS");
    assert_eq!(row.log_path.as_deref(), Some("/logs/a:3.log"));
    assert_eq!((row.owner_pid, row.owner_start), (4242, 99));
    assert_eq!(row.start_time, 4.0);
    assert!(db.build_by_number("a", 4).unwrap().is_none());
    assert!(db.build_by_number("c", 1).unwrap().is_none());
    assert!(db.build_by_number("a", u64::MAX).unwrap().is_none());
}

#[test]
fn duplicate_id_does_not_consume_a_number() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    assert_eq!(insert(&db, "a", "a:x", 1.0), 1);
    let err = db
        .insert_build(&new_build("a", "a:x", 2.0), |n| record("a:x", n))
        .unwrap_err();
    assert!(matches!(err, DbError::AlreadyExists { .. }), "{err:?}");
    assert_eq!(insert(&db, "a", "a:y", 3.0), 2);
    // The original row is untouched.
    assert_eq!(db.get_build("a:x").unwrap().unwrap().start_time, 1.0);
}

#[test]
fn deleted_numbers_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 1..=3 {
        assert_eq!(insert(&db, "a", &format!("a:{i}"), i as f64), i);
    }
    let ids: Vec<String> = (1..=3).map(|i| format!("a:{i}")).collect();
    let (deleted, missing) = db.delete_builds(&ids).unwrap();
    assert_eq!(deleted, ids);
    assert!(missing.is_empty());
    assert_eq!(insert(&db, "a", "a:4", 4.0), 4);

    // Deleting and re-creating the project does not reset numbering either.
    db.create_project("a", "{}", 0.0).unwrap();
    assert!(db.delete_project("a").unwrap());
    db.create_project("a", "{}", 1.0).unwrap();
    assert_eq!(insert(&db, "a", "a:5", 5.0), 5);

    // ...and it survives reopening.
    drop(db);
    let db = open(dir.path());
    assert_eq!(insert(&db, "a", "a:6", 6.0), 6);
}

#[test]
fn delete_builds_reports_missing_and_dedups() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    insert(&db, "a", "a:1", 1.0);
    insert(&db, "a", "a:2", 2.0);
    let req: Vec<String> = ["nope", "a:2", "a:2", "a:1", "gone"]
        .map(String::from)
        .to_vec();
    let (deleted, missing) = db.delete_builds(&req).unwrap();
    assert_eq!(deleted, ["a:2", "a:1"]);
    assert_eq!(missing, ["nope", "gone"]);
    assert!(db.get_build("a:1").unwrap().is_none());
    assert_eq!(db.delete_builds(&[]).unwrap(), (vec![], vec![]));
}

#[test]
fn concurrent_opens_allocate_unique_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    // Every thread opens the (not yet existing) file itself, at the same time.
    let barrier = Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let path = path.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                let db = Db::open(&path).expect("open");
                let mut nums = Vec::new();
                for i in 0..25 {
                    let id = format!("p:t{t}-{i}");
                    let n = db
                        .insert_build(&new_build("p", &id, i as f64), |n| record(&id, n))
                        .expect("insert must not surface SQLITE_BUSY");
                    db.update_build(&id, "SUCCEEDED", true, &record(&id, n))
                        .expect("update must not surface SQLITE_BUSY");
                    nums.push(n);
                }
                nums
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (1..=100).collect::<Vec<u64>>());

    let db = Db::open(&path).unwrap();
    let (ids, next) = db
        .list_builds(&BuildQuery {
            page_size: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(ids.len(), 100);
    assert!(next.is_none());
    assert!(db.integrity_check().unwrap());
}

#[test]
fn shared_handle_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let db = db.clone();
            thread::spawn(move || {
                (0..25)
                    .map(|i| insert(&db, "q", &format!("q:{t}-{i}"), 0.0))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: HashSet<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(all, (1..=100).collect());
}

#[test]
fn update_and_set_owner() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    insert(&db, "a", "a:1", 1.0);
    db.update_build("a:1", "FAILED", true, r#"{"done":true}"#)
        .unwrap();
    db.set_owner("a:1", 7, 8).unwrap();
    let b = db.get_build("a:1").unwrap().unwrap();
    assert_eq!(b.status, "FAILED");
    assert!(b.complete);
    assert_eq!(b.json, r#"{"done":true}"#);
    assert_eq!((b.owner_pid, b.owner_start), (7, 8));

    // Full u64 range of the start token round-trips.
    db.set_owner("a:1", u32::MAX, u64::MAX).unwrap();
    let b = db.get_build("a:1").unwrap().unwrap();
    assert_eq!((b.owner_pid, b.owner_start), (u32::MAX, u64::MAX));

    assert!(matches!(
        db.update_build("x", "FAILED", true, "{}"),
        Err(DbError::NotFound { .. })
    ));
    assert!(matches!(
        db.set_owner("x", 1, 1),
        Err(DbError::NotFound { .. })
    ));
}

#[test]
fn get_builds_keeps_request_order_and_skips_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for i in 1..=3 {
        insert(&db, "a", &format!("a:{i}"), i as f64);
    }
    let req: Vec<String> = ["a:3", "zzz", "a:1", "a:2", "a:1"]
        .map(String::from)
        .to_vec();
    let got: Vec<String> = db
        .get_builds(&req)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(got, ["a:3", "a:1", "a:2", "a:1"]);
    assert!(db.get_builds(&[]).unwrap().is_empty());
}

/// Fetches all pages, checking each page's size.
fn all_pages(db: &Db, mut q: BuildQuery) -> Vec<String> {
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let (ids, next) = db.list_builds(&q).unwrap();
        pages += 1;
        assert!(ids.len() <= q.page_size);
        if next.is_some() {
            assert_eq!(ids.len(), q.page_size, "non-final pages are full");
        }
        out.extend(ids);
        match next {
            Some(t) => q.next_token = Some(t),
            None => break,
        }
        assert!(pages < 1000, "pagination does not terminate");
    }
    out
}

/// What the list test inserted, for computing the expected order.
struct Listed {
    start: f64,
    number: u64,
    id: String,
    project: String,
    status: String,
}

#[test]
fn list_order_filters_and_pagination() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    // 250 builds: project a gets 2/3, b 1/3; start times with ties (three
    // builds share each second) so the number/id tiebreaks matter.
    let mut expected: Vec<Listed> = Vec::new();
    for i in 0..250u32 {
        let project = if i % 3 == 2 { "b" } else { "a" };
        let id = format!("{project}:{i:04}");
        let start = 1_700_000_000.0 + f64::from(i / 3);
        let n = insert(&db, project, &id, start);
        let status = ["SUCCEEDED", "FAILED", "IN_PROGRESS", "STOPPED"][i as usize % 4];
        if status != "IN_PROGRESS" {
            db.update_build(&id, status, true, &record(&id, n)).unwrap();
        }
        expected.push(Listed {
            start,
            number: n,
            id,
            project: project.to_string(),
            status: status.to_string(),
        });
    }
    expected.sort_by(|x, y| {
        x.start
            .total_cmp(&y.start)
            .then(x.number.cmp(&y.number))
            .then(x.id.cmp(&y.id))
    });
    let ids_where = |f: &dyn Fn(&Listed) -> bool| -> Vec<String> {
        expected
            .iter()
            .filter(|e| f(e))
            .map(|e| e.id.clone())
            .collect()
    };
    let asc_all = ids_where(&|_| true);
    let desc_all: Vec<String> = asc_all.iter().rev().cloned().collect();

    // Default: DESCENDING, pages of 100 -> 100 + 100 + 50.
    let (p1, t1) = db.list_builds(&BuildQuery::default()).unwrap();
    assert_eq!(p1.len(), 100);
    assert_eq!(p1[..], desc_all[..100]);
    let t1 = t1.expect("more pages");
    let (p2, t2) = db
        .list_builds(&BuildQuery {
            next_token: Some(t1),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p2[..], desc_all[100..200]);
    let (p3, t3) = db
        .list_builds(&BuildQuery {
            next_token: t2,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p3[..], desc_all[200..]);
    assert_eq!(p3.len(), 50);
    assert!(t3.is_none());

    // Ascending, all pages.
    let asc_q = BuildQuery {
        descending: false,
        ..Default::default()
    };
    assert_eq!(all_pages(&db, asc_q.clone()), asc_all);

    // Odd page size that splits ties.
    assert_eq!(
        all_pages(
            &db,
            BuildQuery {
                page_size: 7,
                ..Default::default()
            }
        ),
        desc_all
    );

    // Project filter (ListBuildsForProject).
    let b_desc: Vec<String> = ids_where(&|e| e.project == "b").into_iter().rev().collect();
    assert_eq!(b_desc.len(), 83);
    assert_eq!(
        all_pages(
            &db,
            BuildQuery {
                project: Some("b".into()),
                page_size: 10,
                ..Default::default()
            }
        ),
        b_desc
    );

    // Status filter, alone and combined with project.
    assert_eq!(
        all_pages(
            &db,
            BuildQuery {
                status: Some("FAILED".into()),
                descending: false,
                page_size: 20,
                ..Default::default()
            }
        ),
        ids_where(&|e| e.status == "FAILED")
    );
    assert_eq!(
        all_pages(
            &db,
            BuildQuery {
                project: Some("a".into()),
                status: Some("IN_PROGRESS".into()),
                descending: false,
                ..Default::default()
            }
        ),
        ids_where(&|e| e.project == "a" && e.status == "IN_PROGRESS")
    );
    let (none, t) = db
        .list_builds(&BuildQuery {
            project: Some("nope".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(none.is_empty() && t.is_none());

    // Exactly one full page: no token.
    let (p, t) = db
        .list_builds(&BuildQuery {
            page_size: 250,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p.len(), 250);
    assert!(t.is_none());

    // Tokens stay stable when newer builds arrive and earlier ones vanish.
    let (_, tok) = db.list_builds(&BuildQuery::default()).unwrap();
    insert(&db, "a", "a:newest", 1_800_000_000.0);
    db.delete_builds(&[desc_all[0].clone()]).unwrap();
    let (p2_again, _) = db
        .list_builds(&BuildQuery {
            next_token: tok.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(p2_again[..], desc_all[100..200]);

    // Bad tokens are rejected as input errors.
    let err = db
        .list_builds(&BuildQuery {
            next_token: Some("not-a-token".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, DbError::InvalidInput(_)), "{err:?}");
    let err = db
        .list_builds(&BuildQuery {
            next_token: tok,
            descending: false,
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(err, DbError::InvalidInput(_)), "{err:?}");
}

#[test]
fn orphans_with_fake_liveness() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let mut b = new_build("a", "a:1", 1.0);
    b.owner_pid = 10;
    b.owner_start = 100;
    db.insert_build(&b, |_| "{}".into()).unwrap();
    b.id = "a:2".into();
    b.start_time = 2.0;
    b.owner_pid = 20;
    b.owner_start = 200;
    db.insert_build(&b, |_| "{}".into()).unwrap();
    b.id = "a:3".into();
    b.start_time = 3.0;
    b.owner_pid = 10;
    b.owner_start = 101; // pid 10 reused by a different process
    db.insert_build(&b, |_| "{}".into()).unwrap();
    b.id = "a:4".into();
    b.start_time = 4.0;
    b.owner_pid = 30;
    b.owner_start = 300;
    db.insert_build(&b, |_| "{}".into()).unwrap();
    // Complete builds are never orphans, even with a dead owner.
    db.update_build("a:4", "SUCCEEDED", true, "{}").unwrap();

    // Alive: (10, 100) only.
    let alive = |pid: u32, start: u64| (pid, start) == (10, 100);
    let ids: Vec<String> = db
        .orphans(alive)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, ["a:2", "a:3"]);

    // Adopting a build makes it owned again.
    db.set_owner("a:2", 10, 100).unwrap();
    let ids: Vec<String> = db
        .orphans(alive)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, ["a:3"]);
    assert!(db.orphans(|_, _| true).unwrap().is_empty());
    assert_eq!(db.orphans(|_, _| false).unwrap().len(), 3);
}

#[cfg(target_os = "linux")]
#[test]
fn orphans_with_real_processes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());

    let mut child = std::process::Command::new("true").spawn().unwrap();
    let child_pid = child.id();
    // Token captured while the child may still run; if it already exited,
    // the token is unknown, which must not look alive either.
    let child_start = localbuild_db::process::process_start_token(child_pid).unwrap_or(1);
    assert!(child.wait().unwrap().success());
    assert!(!process_alive(child_pid, child_start));

    let (me, my_start) = this_process();
    let mut b = new_build("a", "a:dead", 1.0);
    b.owner_pid = child_pid;
    b.owner_start = child_start;
    db.insert_build(&b, |_| "{}".into()).unwrap();
    let mut b = new_build("a", "a:mine", 2.0);
    b.owner_pid = me;
    b.owner_start = my_start;
    db.insert_build(&b, |_| "{}".into()).unwrap();

    let ids: Vec<String> = db
        .orphans(process_alive)
        .unwrap()
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(ids, ["a:dead"]);
}

#[cfg(target_os = "linux")]
#[test]
fn zombie_is_not_alive() {
    let mut child = std::process::Command::new("sleep")
        .arg("0.2")
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = localbuild_db::process::process_start_token(pid).expect("child running");
    assert!(process_alive(pid, start));
    // Wait until it has exited but is not yet reaped (zombie).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while localbuild_db::process::process_start_token(pid).is_some() {
        assert!(std::time::Instant::now() < deadline, "child never exited");
        thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!process_alive(pid, start));
    child.wait().unwrap();
    assert!(!process_alive(pid, start));
}

#[test]
fn reopen_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        db.create_project("a", r#"{"name":"a"}"#, 1.0).unwrap();
        insert(&db, "a", "a:1", 1.0);
        db.update_build("a:1", "SUCCEEDED", true, r#"{"final":1}"#)
            .unwrap();
        db.put_doc("pipeline", "p", r#"{"p":1}"#).unwrap();
        assert!(db.integrity_check().unwrap());
    }
    let db = open(dir.path());
    assert!(db.integrity_check().unwrap());
    assert_eq!(
        db.get_project("a").unwrap().as_deref(),
        Some(r#"{"name":"a"}"#)
    );
    let b = db.get_build("a:1").unwrap().unwrap();
    assert_eq!((b.status.as_str(), b.complete), ("SUCCEEDED", true));
    assert_eq!(b.json, r#"{"final":1}"#);
    assert_eq!(
        db.get_doc("pipeline", "p").unwrap().as_deref(),
        Some(r#"{"p":1}"#)
    );
    assert_eq!(insert(&db, "a", "a:2", 2.0), 2);
}
