//! `localbuild builds list|batches|show|logs`: the build history, read from the store (the
//! same one `run` and `serve` write), with or without a server running.

use super::error::CliError;
use super::out::{self, Out};
use super::{BuildsCommand, exit};
use localbuild_engine::record::{Build, BuildGroup, Status};
use localbuild_store::{BuildQuery, BuildRow, HistoryStore};
use std::fmt::Write as _;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

pub fn run(cmd: &BuildsCommand) -> Result<u8, CliError> {
    let store = super::history()?;
    match cmd {
        BuildsCommand::List { project, status } => list(&store, project.clone(), status.clone()),
        BuildsCommand::Batches { project, status } => {
            batches(&store, project.as_deref(), status.as_deref())
        }
        BuildsCommand::Show { build, json } if is_batch(&store, build) => {
            show_batch(&store, build, *json)
        }
        BuildsCommand::Show { build, json } => {
            let b = find(&store, build)?;
            if *json {
                out::print(pretty(&b))?;
            } else {
                out::print(super::run::summary(&b, false))?;
            }
            Ok(exit::SUCCESS)
        }
        BuildsCommand::Logs { build, follow } => logs(&store, find(&store, build)?, *follow),
    }
}

/// A record as the API returns it, pretty-printed, with a final newline.
pub(super) fn pretty(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default() + "\n"
}

/// Epoch seconds as `YYYY-MM-DD HH:MM:SS` (UTC), as the tables and the console show them.
pub(super) fn utc(epoch: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch.max(0.0) as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn list(
    store: &HistoryStore,
    project: Option<String>,
    status: Option<String>,
) -> Result<u8, CliError> {
    let status = status.map(|s| s.to_ascii_uppercase());
    let mut query = BuildQuery {
        project,
        status,
        ..BuildQuery::default()
    };
    let mut out = Out::lock();
    out.send(format!(
        "{:<50} {:>6} {:<12} {:<20} {:>9}\n",
        "BUILD", "NUMBER", "STATUS", "STARTED (UTC)", "DURATION"
    ))?;
    // One page at a time: a long history is never all in memory.
    loop {
        let (ids, next) = store.db().list_builds(&query)?;
        let rows = store.db().get_builds(&ids).unwrap_or_default();
        let mut page = String::new();
        for row in rows {
            let Some(b) = record(&row) else { continue };
            let duration = b
                .end_time
                .map(|end| format!("{:.1}s", (end - b.start_time).max(0.0)))
                .unwrap_or_default();
            let _ = writeln!(
                page,
                "{:<50} {:>6} {:<12} {:<20} {:>9}",
                b.id,
                b.build_number,
                b.build_status.as_str(),
                utc(b.start_time),
                duration
            );
        }
        out.send(page)?;
        match next {
            Some(token) => query.next_token = Some(token),
            None => return Ok(exit::SUCCESS),
        }
    }
}

fn batches(
    store: &HistoryStore,
    project: Option<&str>,
    status: Option<&str>,
) -> Result<u8, CliError> {
    let all = store.batches(project)?;
    let mut text = format!(
        "{:<50} {:>6} {:<12} {:<20} {:>9}  TASKS\n",
        "BATCH", "NUMBER", "STATUS", "STARTED (UTC)", "DURATION"
    );
    for b in all {
        if status.is_some_and(|s| !s.eq_ignore_ascii_case(b.build_batch_status.as_str())) {
            continue;
        }
        let ok = b
            .build_groups
            .iter()
            .filter(|g| group_status(g) == Some(Status::Succeeded))
            .count();
        let _ = writeln!(
            text,
            "{:<50} {:>6} {:<12} {:<20} {:>9}  {ok}/{} succeeded",
            b.id,
            b.build_batch_number,
            b.build_batch_status.as_str(),
            utc(b.start_time),
            duration(b.start_time, b.end_time),
            b.build_groups.len()
        );
    }
    out::print(text)?;
    Ok(exit::SUCCESS)
}

fn group_status(g: &BuildGroup) -> Option<Status> {
    g.current_build_summary.as_ref().map(|s| s.build_status)
}

fn duration(start: f64, end: Option<f64>) -> String {
    end.map(|end| format!("{:.1}s", (end - start).max(0.0)))
        .unwrap_or_default()
}

fn is_batch(store: &HistoryStore, id: &str) -> bool {
    matches!(store.batch(id), Ok(Some(_)))
}

/// A batch: its tasks (status, build, depends-on), or its record with `json`.
fn show_batch(store: &HistoryStore, id: &str, json: bool) -> Result<u8, CliError> {
    let Ok(Some(b)) = store.batch(id) else {
        return Err(CliError::Failed(format!("no batch {id}")));
    };
    if json {
        out::print(pretty(&b))?;
        return Ok(exit::SUCCESS);
    }
    let width = b
        .build_groups
        .iter()
        .map(|g| g.identifier.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut text = format!(
        "{:<width$} {:<12} {:<50} DEPENDS ON\n",
        "TASK", "STATUS", "BUILD"
    );
    for g in &b.build_groups {
        let build = g
            .current_build_summary
            .as_ref()
            .and_then(|s| s.arn.as_deref())
            .map_or("-", |arn| {
                arn.split_once(":build/").map_or(arn, |(_, id)| id)
            });
        let depends = if g.depends_on.is_empty() {
            "-".to_owned()
        } else {
            g.depends_on.join(", ")
        };
        let status = group_status(g).map_or("WAITING", Status::as_str);
        let line = format!(
            "{:<width$} {status:<12} {build:<50} {depends}",
            g.identifier
        );
        let _ = writeln!(text, "{}", line.trim_end());
        if !g.prior_build_summary_list.is_empty() {
            let _ = writeln!(
                text,
                "{:<width$} earlier attempts: {}",
                "",
                g.prior_build_summary_list
                    .iter()
                    .map(|s| s.build_status.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let _ = writeln!(
        text,
        "\nBatch #{} {} {} {}",
        b.build_batch_number,
        b.id,
        b.build_batch_status.as_str(),
        duration(b.start_time, b.end_time)
    );
    out::print(text)?;
    Ok(exit::SUCCESS)
}

fn record(row: &BuildRow) -> Option<Build> {
    serde_json::from_str(&row.json).ok()
}

/// A build by id (`project:uuid`) or by `project:number`.
pub(super) fn find(store: &HistoryStore, which: &str) -> Result<Build, CliError> {
    let row = match which.rsplit_once(':') {
        Some((project, n)) if n.parse::<u64>().is_ok() => store
            .db()
            .build_by_number(project, n.parse().unwrap_or_default()),
        _ => store.db().get_build(which),
    };
    match row? {
        Some(row) => record(&row)
            .ok_or_else(|| CliError::Failed(format!("the record of {which} is not readable yet"))),
        None => Err(CliError::Failed(format!(
            "no build {which} (give a build id or PROJECT:NUMBER)"
        ))),
    }
}

/// Print the build log; with `follow`, keep printing what is appended until the build is
/// complete (whichever process runs it).
fn logs(store: &HistoryStore, build: Build, follow: bool) -> Result<u8, CliError> {
    let path = build
        .logs
        .local_path
        .clone()
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            store
                .root()
                .join("builds")
                .join(&build.project_name)
                .join(build.build_number.to_string())
                .join("build.log")
        });
    let mut file = std::fs::File::open(&path)
        .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
    let mut out = Out::lock();
    let mut complete = build.build_complete;
    loop {
        let mut chunk = Vec::new();
        let _ = file.read_to_end(&mut chunk);
        // A closed stdout also ends `-f`: nobody reads what would follow.
        out.send(&chunk)?;
        if !follow || complete {
            return Ok(exit::SUCCESS);
        }
        // The build runs in another process: poll its record and the file's growth.
        std::thread::sleep(Duration::from_millis(200));
        complete = store
            .build(&build.id)
            .ok()
            .flatten()
            .is_none_or(|b| b.build_complete || b.build_status != Status::InProgress);
    }
}
