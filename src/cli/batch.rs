//! `localbuild run --batch`: expand the buildspec's `batch` section, run it as a batch build,
//! show every task live, then a table of tasks and the batch's status.
//!
//! Each output line of a task is prefixed `[identifier] ` (a colour per task on a terminal,
//! plain when piped) and written whole, so tasks never interleave within a line; a progress
//! line goes to stderr whenever a task starts or ends. Ctrl-C / SIGTERM stop the whole batch.
//! With `--output json`, stdout is JSON Lines instead ([`super::json::BatchLine`]).

use super::json::BatchLine;
use super::run::{color, interrupted, paint, store_root, usage_error};
use super::{OutputFormat, RunArgs, exit};
use localbuild_buildspec as buildspec;
use localbuild_docker::Docker;
use localbuild_engine::log::agent_line;
use localbuild_engine::record::Status;
use localbuild_engine::{
    BatchConfig, BatchError, BatchEvent, BatchOutcome, BuildHandle, BuildRequest, BuildspecSource,
    Engine, Event, Source,
};
use localbuild_store::HistoryStore;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Run `request`'s buildspec as a batch.
pub fn run(request: BuildRequest, args: &RunArgs) -> u8 {
    let (name, bytes) = match buildspec_of(&request) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let parsed = match buildspec::parse(&bytes) {
        Ok(p) => p,
        Err(invalid) => {
            super::validate::print_all(&name, &bytes, &invalid.errors);
            return exit::FAILURE;
        }
    };
    let Some(batch) = &parsed.buildspec.batch else {
        eprintln!("{name}: error: the buildspec has no 'batch' section (run it without --batch)");
        return exit::FAILURE;
    };
    let expansion = match buildspec::batch::expand(batch) {
        Ok(e) => e,
        Err(d) => {
            super::validate::print_all(&name, &bytes, [&d]);
            return exit::FAILURE;
        }
    };
    for n in &expansion.notes {
        eprintln!("note: {n}");
    }
    let parallel = args.parallel.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |n| n as usize,
    );
    let config = BatchConfig {
        slots: localbuild_engine::Parallel::new(parallel),
        fast_fail: expansion.fast_fail,
        combine_artifacts: args.combine_artifacts,
        maximum_builds_allowed: args.max_builds,
        timeout: None,
    };
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(run_batch(
        request,
        expansion.tasks,
        config,
        args.build_json.clone(),
        args.quiet,
        args.output == OutputFormat::Json,
    ))
}

/// The batch's buildspec: its file, or the file at `--source-version` of the repository.
fn buildspec_of(request: &BuildRequest) -> Result<(String, Vec<u8>), u8> {
    let in_source = match &request.buildspec {
        BuildspecSource::File(p) => return read(p),
        BuildspecSource::Default => "buildspec.yml",
        BuildspecSource::InSource(p) => p.as_str(),
        BuildspecSource::Inline(_) => return Err(usage_error("--batch needs a buildspec file")),
    };
    match &request.source {
        Source::Dir(d) => {
            match localbuild_confine::Root::new(d).confined("buildspec path", in_source) {
                Ok(p) => read(&p),
                Err(e) => Err(usage_error(&e.to_string())),
            }
        }
        Source::Git { repo, version, .. } => {
            match localbuild_sources::read_file(repo, version.as_deref(), in_source) {
                Ok((commit, Some(bytes))) => Ok((format!("{in_source} (at {commit})"), bytes)),
                Ok((commit, None)) => {
                    eprintln!(
                        "error: {in_source} is not in {} at {commit}",
                        repo.display()
                    );
                    Err(exit::FAILURE)
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    Err(exit::FAILURE)
                }
            }
        }
        _ => Err(usage_error("--batch needs a buildspec file")),
    }
}

fn read(path: &std::path::Path) -> Result<(String, Vec<u8>), u8> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => Ok((name, bytes)),
        Err(e) => {
            eprintln!("{name}: error: cannot read the buildspec: {e}");
            Err(exit::FAILURE)
        }
    }
}

async fn run_batch(
    request: BuildRequest,
    tasks: Vec<buildspec::batch::Task>,
    config: BatchConfig,
    build_json: Option<PathBuf>,
    quiet: bool,
    json: bool,
) -> u8 {
    let docker = match Docker::connect().await {
        Ok(d) => d,
        Err(e) => {
            eprint!("{}", super::progress::docker_error(&e));
            return exit::FAULT;
        }
    };
    let store = match HistoryStore::open(store_root()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "error: cannot open the build history under {}: {e}",
                store_root().display()
            );
            return exit::FAULT;
        }
    };
    // What this run creates names this process, so `localbuild gc` leaves it alone.
    let docker = docker.owned_by(store.owner_label());
    let engine = Engine::new(Arc::new(docker), Arc::new(store));
    let identifiers: Vec<String> = tasks.iter().map(|t| t.identifier.clone()).collect();
    let handle = match engine.submit_batch(request, tasks, config).await {
        Ok(h) => h,
        Err(e @ (BatchError::Request(_) | BatchError::Task { .. })) => {
            return usage_error(&e.to_string());
        }
        Err(e @ BatchError::Store(_)) => {
            eprintln!("error: {e}");
            return exit::FAULT;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    eprintln!(
        "batch: {} with {} builds ({})",
        handle.id,
        identifiers.len(),
        identifiers.join(", ")
    );
    let stopper = handle.clone();
    tokio::spawn(async move {
        interrupted().await;
        eprintln!("batch: stopping every build");
        stopper.stop();
    });

    let color = color();
    let width = identifiers.iter().map(|i| i.len()).max().unwrap_or(0);
    let mut printers = tokio::task::JoinSet::new();
    let (mut running, mut done, mut failed) = (0usize, 0usize, 0usize);
    if let Some(mut events) = handle.events() {
        while let Some(event) = events.recv().await {
            match event {
                BatchEvent::TaskStarted { identifier, build } => {
                    running += 1;
                    if json {
                        json_line(&BatchLine::TaskStarted {
                            task: &identifier,
                            build_id: &build.id,
                        });
                        printers.spawn(print_task_json(build, identifier.clone()));
                        continue;
                    }
                    let index = identifiers
                        .iter()
                        .position(|i| *i == identifier)
                        .unwrap_or(0);
                    let prefix = prefix(&identifier, index, width, color);
                    progress(
                        quiet,
                        &format!("{identifier} started"),
                        running,
                        done,
                        failed,
                    );
                    printers.spawn(print_task(build, prefix, quiet));
                }
                BatchEvent::TaskFinished { identifier, status } => {
                    if json {
                        json_line(&BatchLine::TaskFinished {
                            task: &identifier,
                            status,
                        });
                    }
                    running = running.saturating_sub(1);
                    done += 1;
                    if status != Status::Succeeded {
                        failed += 1;
                    }
                    progress(
                        quiet,
                        &format!("{identifier} {}", status.as_str()),
                        running,
                        done,
                        failed,
                    );
                }
                BatchEvent::TaskSkipped {
                    identifier,
                    reason,
                    status,
                } => {
                    if json {
                        json_line(&BatchLine::TaskSkipped {
                            task: &identifier,
                            status,
                            reason: &reason,
                        });
                    }
                    done += 1;
                    failed += 1;
                    progress(
                        quiet,
                        &format!("{identifier} {reason}"),
                        running,
                        done,
                        failed,
                    );
                }
                BatchEvent::Finished(_) => break,
            }
        }
    }
    while printers.join_next().await.is_some() {}
    let outcome = handle.outcome().await;
    if json {
        json_line(&BatchLine::Batch {
            batch: &outcome.batch,
            dir: &outcome.dir,
        });
    } else {
        print!("{}", summary(&outcome, color));
    }
    let _ = std::io::stdout().flush();
    if let Some(e) = &outcome.store_error {
        eprintln!("warning: the batch record could not be kept: {e}");
    }
    if let Some(path) = build_json {
        let json = serde_json::to_string_pretty(&outcome.batch).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, json + "\n") {
            eprintln!("error: --build-json: cannot write {}: {e}", path.display());
        }
    }
    exit::for_status(outcome.batch.build_batch_status)
}

fn progress(quiet: bool, what: &str, running: usize, done: usize, failed: usize) {
    if quiet {
        return;
    }
    eprintln!("batch: {what}; {running} running, {done} done, {failed} failed");
}

/// `[identifier] ` padded to the longest identifier, coloured per task on a terminal.
fn prefix(identifier: &str, index: usize, width: usize, color: bool) -> Vec<u8> {
    let text = format!("{:<width$}", format!("[{identifier}]"), width = width + 2);
    if !color {
        return format!("{text} ").into_bytes();
    }
    const COLOURS: [&str; 6] = ["36", "35", "34", "33", "32", "31"];
    format!("\x1b[{}m{text}\x1b[0m ", COLOURS[index % COLOURS.len()]).into_bytes()
}

fn json_line(line: &BatchLine<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = super::json::write_batch_line(&mut out, line);
    let _ = out.flush();
}

/// `--output json`: one task's events as JSON Lines tagged with its identifier, then its
/// record; each event written whole.
async fn print_task_json(build: BuildHandle, task: String) {
    let mut events = build.subscribe();
    while let Some(event) = events.next().await {
        let mut buf = Vec::new();
        let _ = super::json::write_task_event(&mut buf, Some(&task), &event);
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&buf);
        let _ = out.flush();
    }
    let outcome = build.outcome().await;
    let mut buf = Vec::new();
    let _ = super::json::write_task_outcome(&mut buf, Some(&task), &outcome);
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(&buf);
    let _ = out.flush();
}

/// One task's log, each line prefixed and written whole.
async fn print_task(build: BuildHandle, prefix: Vec<u8>, quiet: bool) {
    let mut events = build.subscribe();
    while let Some(event) = events.next().await {
        let mut buf: Vec<u8> = Vec::new();
        let mut to_stderr = false;
        match event {
            Event::Agent { at, text } => {
                buf.extend_from_slice(&prefix);
                buf.extend_from_slice(agent_line(at, &text).as_bytes());
                buf.push(b'\n');
            }
            Event::Output(bytes) | Event::Lagged { log: bytes } => {
                for line in bytes.split_inclusive(|b| *b == b'\n') {
                    buf.extend_from_slice(&prefix);
                    buf.extend_from_slice(line);
                    if !line.ends_with(b"\n") {
                        buf.push(b'\n');
                    }
                }
            }
            Event::Progress(line) => {
                if quiet && !super::progress::is_warning(&line) {
                    continue;
                }
                to_stderr = true;
                buf.extend_from_slice(&prefix);
                buf.extend_from_slice(line.as_bytes());
                buf.push(b'\n');
            }
            _ => continue,
        }
        if to_stderr {
            let _ = std::io::stderr().lock().write_all(&buf);
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
    }
}

/// The table after the logs: task, status, duration, depends-on; then the batch.
fn summary(outcome: &BatchOutcome, color: bool) -> String {
    let width = outcome
        .tasks
        .iter()
        .map(|t| t.identifier.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut s = format!(
        "\n{:<width$} {:<10} {:>9}  DEPENDS ON\n",
        "TASK", "STATUS", "DURATION"
    );
    for t in &outcome.tasks {
        let duration = t
            .outcome
            .as_ref()
            .and_then(|o| o.build.end_time.map(|e| e - o.build.start_time))
            .map_or_else(|| "-".to_owned(), |d| format!("{:.1}s", d.max(0.0)));
        let cell = format!("{:<10}", t.status.as_str());
        let mut line = format!(
            "{:<width$} {} {:>9}  {}",
            t.identifier,
            paint(color, t.status, &cell),
            duration,
            if t.depends_on.is_empty() {
                "-".to_owned()
            } else {
                t.depends_on.join(", ")
            }
        );
        if t.ignore_failure {
            line.push_str("  (ignore-failure)");
        }
        s.push_str(line.trim_end());
        s.push('\n');
        if let Some(why) = &t.skipped {
            s.push_str(&format!("  {why}\n"));
        }
    }
    let b = &outcome.batch;
    let total = b.end_time.unwrap_or(b.start_time) - b.start_time;
    s.push_str(&format!(
        "\nBatch #{} {} {} in {:.1}s\n",
        b.build_batch_number,
        b.id,
        paint(color, b.build_batch_status, b.build_batch_status.as_str()),
        total.max(0.0)
    ));
    if let Some(a) = &outcome.artifacts {
        s.push_str(&format!("Combined artifacts: {}\n", a.display()));
    }
    s.push_str(&format!("Batch record: {}\n", outcome.dir.display()));
    s
}
