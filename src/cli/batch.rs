//! `localbuild run --batch`: expand the buildspec's `batch` section, run it as a batch build,
//! show every task live, then a table of tasks and the batch's status.
//!
//! Each output line of a task is prefixed `[identifier] ` (a colour per task on a terminal,
//! plain when piped) and written whole, so tasks never interleave within a line; a progress
//! line goes to stderr whenever a task starts or ends. Ctrl-C / SIGTERM stop the whole batch.
//! With `--output json`, stdout is JSON Lines instead ([`super::json::BatchLine`]). When
//! stdout's reader goes away, the batch is stopped, as `run` stops a build ([`Screen`]).

use super::error::CliError;
use super::json::BatchLine;
use super::out::Out;
use super::run::{color, interrupted, open_store, paint};
use super::{OutputFormat, RunArgs, exit};
use localbuild_buildspec as buildspec;
use localbuild_docker::Docker;
use localbuild_engine::log::agent_line;
use localbuild_engine::record::Status;
use localbuild_engine::{
    BatchConfig, BatchEvent, BatchHandle, BatchOutcome, BuildHandle, BuildRequest, BuildspecSource,
    Engine, Event, Source,
};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Run `request`'s buildspec as a batch.
pub fn run(request: BuildRequest, args: &RunArgs) -> Result<u8, CliError> {
    let (name, bytes) = buildspec_of(&request)?;
    let parsed = match buildspec::parse(&bytes) {
        Ok(p) => p,
        Err(invalid) => {
            return Err(CliError::Buildspec {
                name,
                text: bytes,
                diagnostics: invalid.errors,
            });
        }
    };
    let Some(batch) = &parsed.buildspec.batch else {
        return Err(CliError::InFile {
            file: name,
            message: "the buildspec has no 'batch' section (run it without --batch)".into(),
        });
    };
    let expansion = match buildspec::batch::expand(batch) {
        Ok(e) => e,
        Err(d) => {
            return Err(CliError::Buildspec {
                name,
                text: bytes,
                diagnostics: vec![d],
            });
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
    super::runtime()?.block_on(run_batch(
        request,
        expansion.tasks,
        config,
        args.build_json.clone(),
        args.quiet,
        args.output == OutputFormat::Json,
    ))
}

/// The batch's buildspec: its file, or the file at `--source-version` of the repository.
fn buildspec_of(request: &BuildRequest) -> Result<(String, Vec<u8>), CliError> {
    let needs_file = || CliError::Usage("--batch needs a buildspec file".into());
    let in_source = match &request.buildspec {
        BuildspecSource::File(p) => return read(p),
        BuildspecSource::Default => "buildspec.yml",
        BuildspecSource::InSource(p) => p.as_str(),
        BuildspecSource::Inline(_) => return Err(needs_file()),
    };
    match &request.source {
        Source::Dir(d) => {
            let path = localbuild_confine::Root::new(d)
                .confined("buildspec path", in_source)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            read(&path)
        }
        Source::Git { repo, version, .. } => {
            match localbuild_sources::read_file(repo, version.as_deref(), in_source) {
                Ok((commit, Some(bytes))) => Ok((format!("{in_source} (at {commit})"), bytes)),
                Ok((commit, None)) => Err(CliError::Failed(format!(
                    "{in_source} is not in {} at {commit}",
                    repo.display()
                ))),
                Err(e) => Err(CliError::Failed(e.to_string())),
            }
        }
        _ => Err(needs_file()),
    }
}

fn read(path: &std::path::Path) -> Result<(String, Vec<u8>), CliError> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => Ok((name, bytes)),
        Err(e) => Err(CliError::InFile {
            file: name,
            message: format!("cannot read the buildspec: {e}"),
        }),
    }
}

/// stdout, shared by the batch's printers: after the first failed write (its reader went
/// away) nothing more is written and the batch is stopped.
#[derive(Clone)]
struct Screen {
    batch: BatchHandle,
    failed: Arc<Mutex<Option<io::Error>>>,
}

impl Screen {
    /// Write `bytes` whole, unless an earlier write failed.
    fn write(&self, bytes: &[u8]) {
        let Ok(mut failed) = self.failed.lock() else {
            return;
        };
        if failed.is_some() {
            return;
        }
        let mut out = Out::lock();
        if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
            *failed = Some(e);
            self.batch.stop();
        }
    }

    /// Whether a write failed (and so the batch was stopped).
    fn failed(&self) -> bool {
        self.failed.lock().map_or(true, |f| f.is_some())
    }

    /// The first failed write, as the command's error.
    fn result(&self) -> Result<(), CliError> {
        match self.failed.lock().ok().and_then(|mut f| f.take()) {
            Some(e) => Err(CliError::stdout(e)),
            None => Ok(()),
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
) -> Result<u8, CliError> {
    let docker = Docker::connect().await?;
    let store = open_store()?;
    // What this run creates names this process, so `localbuild gc` leaves it alone.
    let docker = docker.owned_by(store.owner_label());
    let engine = Engine::new(Arc::new(docker), Arc::new(store));
    let identifiers: Vec<String> = tasks.iter().map(|t| t.identifier.clone()).collect();
    let handle = engine.submit_batch(request, tasks, config).await?;
    let screen = Screen {
        batch: handle.clone(),
        failed: Arc::default(),
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
                        json_line(
                            &screen,
                            &BatchLine::TaskStarted {
                                task: &identifier,
                                build_id: &build.id,
                            },
                        );
                        printers.spawn(print_task_json(screen.clone(), build, identifier.clone()));
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
                    printers.spawn(print_task(screen.clone(), build, prefix, quiet));
                }
                BatchEvent::TaskFinished { identifier, status } => {
                    if json {
                        json_line(
                            &screen,
                            &BatchLine::TaskFinished {
                                task: &identifier,
                                status,
                            },
                        );
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
                        json_line(
                            &screen,
                            &BatchLine::TaskSkipped {
                                task: &identifier,
                                status,
                                reason: &reason,
                            },
                        );
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
    let stopped = screen.failed();
    if json {
        json_line(
            &screen,
            &BatchLine::Batch {
                batch: &outcome.batch,
                dir: &outcome.dir,
            },
        );
    } else {
        screen.write(summary(&outcome, color).as_bytes());
    }
    if let Some(e) = &outcome.store_error {
        eprintln!("warning: the batch record could not be kept: {e}");
    }
    if let Some(path) = build_json {
        let json = serde_json::to_string_pretty(&outcome.batch).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, json + "\n") {
            eprintln!("error: --build-json: cannot write {}: {e}", path.display());
        }
    }
    let status = exit::for_status(outcome.batch.build_batch_status);
    match screen.result() {
        // A batch that ended on its own keeps its status when only its table went unread.
        Err(CliError::Closed) if !stopped => Ok(status),
        Err(e) => Err(e),
        Ok(()) => Ok(status),
    }
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

fn json_line(screen: &Screen, line: &BatchLine<'_>) {
    let mut buf = Vec::new();
    let _ = super::json::write_batch_line(&mut buf, line);
    screen.write(&buf);
}

/// `--output json`: one task's events as JSON Lines tagged with its identifier, then its
/// record; each event written whole.
async fn print_task_json(screen: Screen, build: BuildHandle, task: String) {
    let mut events = build.subscribe();
    while let Some(event) = events.next().await {
        let mut buf = Vec::new();
        let _ = super::json::write_task_event(&mut buf, Some(&task), &event);
        screen.write(&buf);
    }
    let outcome = build.outcome().await;
    let mut buf = Vec::new();
    let _ = super::json::write_task_outcome(&mut buf, Some(&task), &outcome);
    screen.write(&buf);
}

/// One task's log, each line prefixed and written whole.
async fn print_task(screen: Screen, build: BuildHandle, prefix: Vec<u8>, quiet: bool) {
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
            screen.write(&buf);
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
