//! `localbuild run`: start a build, print its log live, then a per-phase summary.
//!
//! When stdout's reader goes away (`localbuild run | head -1`) while the build runs, the build
//! is stopped as Ctrl-C stops it (recorded STOPPED, its container removed) and `run` ends
//! quietly ([`CliError::Closed`]): nobody reads what it would print, and a build that outlives
//! its viewer would keep the shell's pipeline waiting. A build that ended on its own keeps its
//! exit status when only the summary after it goes unread.

use super::error::CliError;
use super::{OutputFormat, RunArgs, exit};
use localbuild_docker::Docker;
use localbuild_engine::images::PhaseImages;
use localbuild_engine::log::agent_line;
use localbuild_engine::record::{Build, PhaseType, Status};
use localbuild_engine::{
    BuildHandle, BuildRequest, BuildspecSource, Engine, Event, Outcome, Pause, Source,
};
use localbuild_store::HistoryStore;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where builds are kept: `LOCALBUILD_HOME`, else `$XDG_STATE_HOME/localbuild`, else
/// `~/.local/state/localbuild`.
pub fn store_root() -> PathBuf {
    if let Some(h) = std::env::var_os("LOCALBUILD_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(x).join("localbuild");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".local/state/localbuild")
}

fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

type Sources = (PathBuf, Vec<(String, PathBuf)>);

/// `-s DIR` (the primary, once) and `-s ID:DIR` (secondary sources), as codebuild_build.sh.
pub(super) fn parse_sources(values: &[String]) -> Result<Sources, String> {
    let mut primary: Option<PathBuf> = None;
    let mut secondary: Vec<(String, PathBuf)> = vec![];
    for v in values {
        let (id, dir) = match v.split_once(':') {
            Some((id, dir))
                if !id.is_empty()
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !std::path::Path::new(v).is_dir() =>
            {
                (Some(id), dir)
            }
            _ => (None, v.as_str()),
        };
        let path = PathBuf::from(dir);
        if !path.is_dir() {
            return Err(format!(
                "-s: source directory '{dir}' does not exist or is not a directory"
            ));
        }
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        match id {
            None if primary.is_some() => {
                return Err(format!(
                    "-s: '{v}': only one primary source; name secondary sources ID:DIR"
                ));
            }
            None => primary = Some(path),
            Some(id) if secondary.iter().any(|(s, _)| s == id) => {
                return Err(format!("-s: source identifier '{id}' is used twice"));
            }
            Some(id) => secondary.push((id.to_owned(), path)),
        }
    }
    let primary = match primary {
        Some(p) => p,
        None => {
            std::fs::canonicalize(".").map_err(|e| format!("-s: the current directory: {e}"))?
        }
    };
    Ok((primary, secondary))
}

pub fn run(args: &RunArgs) -> Result<u8, CliError> {
    run_with(args, |_| Ok(()), |_| {})
}

/// `run`, with two seams for `reproduce`: `adjust` changes the checked flags' request before
/// it is checked and submitted, `after` sees the finished build after the summary.
pub(super) fn run_with(
    args: &RunArgs,
    adjust: impl FnOnce(&mut BuildRequest) -> Result<(), CliError>,
    after: impl FnOnce(&Outcome),
) -> Result<u8, CliError> {
    let (primary, secondary) = parse_sources(&args.source).map_err(CliError::Usage)?;
    let resolved = super::config::resolve(args, &primary)?;
    let args = &resolved.args;
    if let Some(id) = &args.account_id {
        localbuild_engine::check_account_id(id)
            .map_err(|e| CliError::Usage(format!("--account-id: {e}")))?;
    }
    if args.profile.is_some() && !args.aws_config {
        return Err(CliError::Usage(
            "-p/--profile needs -c/--aws-config (on the command line or in a config file)".into(),
        ));
    }
    let source = primary;
    let project = match &args.project {
        Some(p) => p.clone(),
        None => source
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty())
            .unwrap_or("localbuild")
            .to_owned(),
    };
    let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_owned());
    // The host's user; never `localbuild`, the initiator of builds `localbuild serve` starts
    // (the console tells CLI builds from API builds by it).
    let initiator = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "cli".to_owned());
    // Config files' `env` tables, then the env file; `-c` and `--env` win over both.
    let mut env_overrides = resolved.env.clone();
    let mut mask = vec![];
    let mut aws_dir = None;
    if args.aws_config {
        for (k, v) in std::env::vars() {
            if k.starts_with("AWS_") {
                // CodeBuild masks access key ids too.
                if matches!(
                    k.as_str(),
                    "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" | "AWS_SESSION_TOKEN"
                ) {
                    mask.push(v.clone());
                }
                env_overrides.push((k, v));
            }
        }
        if let Some(p) = &args.profile {
            env_overrides.push(("AWS_PROFILE".to_owned(), p.clone()));
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        aws_dir = home.map(|h| h.join(".aws")).filter(|d| d.is_dir());
    }
    for kv in &args.env {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--env: expected KEY=VALUE, found {kv:?}"
            )));
        };
        if let Err(m) = localbuild_engine::secrets::check_name(k) {
            return Err(CliError::Usage(format!("--env: {m}")));
        }
        env_overrides.push((k.to_owned(), v.to_owned()));
    }
    let secrets = match &args.secrets_file {
        None => Default::default(),
        Some(path) => {
            let parsed = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|t| localbuild_engine::secrets::SecretsFile::parse(&t));
            parsed
                .map_err(|e| CliError::Usage(format!("--secrets-file: {}: {e}", path.display())))?
        }
    };
    let mut buildspec = args
        .buildspec
        .clone()
        .map_or(BuildspecSource::Default, BuildspecSource::File);
    let source = match &args.source_version {
        None => Source::Dir(source),
        Some(version) => {
            if let Err(e) = localbuild_sources::resolve_version(&source, None)
                && matches!(e, localbuild_sources::SourceError::RepositoryNotFound(_))
            {
                return Err(CliError::Usage(format!(
                    "--source-version: {} is not a git repository",
                    source.display()
                )));
            }
            // A buildspec inside the repository is read from the checked-out commit.
            if let BuildspecSource::File(file) = &buildspec {
                let file = std::fs::canonicalize(file).unwrap_or_else(|_| absolute(file));
                if let Ok(rel) = file.strip_prefix(&source) {
                    buildspec = BuildspecSource::InSource(rel.display().to_string());
                }
            }
            Source::git(source, Some(version.clone()), args.git_clone_depth)
        }
    };
    let mut request = BuildRequest {
        secondary_sources: secondary,
        project,
        source,
        buildspec,
        image: args
            .image
            .clone()
            .unwrap_or_else(|| localbuild_engine::DEFAULT_IMAGE.to_owned()),
        bind_mount: args.mount,
        privileged: args.privileged,
        docker_host_access: args.docker_host_access,
        timeout: Duration::from_secs(args.timeout.unwrap_or(60).saturating_mul(60)),
        env_overrides,
        initiator,
        region,
        account_id: args
            .account_id
            .clone()
            .unwrap_or_else(|| localbuild_engine::ACCOUNT_ID.to_owned()),
        secrets,
        mask,
        aws_dir,
        artifacts_dir: args.artifacts.as_ref().map(|a| absolute(a)),
        reports_dir: args.reports.as_ref().map(|r| absolute(r)),
        zip: args.zip,
        no_cache: args.no_cache,
        respect_gitignore: !args.all_files,
        compute_type: None,
        batch: None,
        debug: localbuild_engine::Debug {
            session: args.debug,
            on_failure: args.shell_on_failure,
            keep_container: args.keep_container,
        },
        local_aws: None,
        s3_artifact: None,
        s3_secondary_artifacts: vec![],
        s3_cache: None,
        image_source: None,
    };
    adjust(&mut request)?;
    request.check()?;
    // A local AWS for the build, unless the host's credentials are forwarded (-c / -p): then
    // the build talks to real AWS.
    let mut ecr = None;
    if !args.aws_config {
        let local = local_aws(&request).map_err(|e| {
            CliError::Fault(format!(
                "cannot open the build history under {}: {e}",
                store_root().display()
            ))
        })?;
        request.secrets = local.secrets;
        // ECR references of the local account come from the local registry, which this run
        // starts (or joins, when a live `serve` runs it) only if the image is one.
        ecr = local.ecr.clone();
        if let Some(ecr) = &local.ecr {
            request.image_source = Some(localbuild_aws::ecr::EcrImages::hook(
                ecr.clone(),
                &request.region,
            ));
        }
        request.local_aws = Some(local.hook);
    }
    if args.batch {
        return super::batch::run(request, args);
    }
    super::runtime()?.block_on(run_build(request, ecr, args, after))
}

/// A run's local AWS: the store's values, the endpoint hook, ECR.
struct LocalAws {
    secrets: localbuild_engine::secrets::SecretsFile,
    hook: localbuild_engine::local_aws::LocalAwsHook,
    ecr: Option<Arc<localbuild_aws::ecr::Ecr>>,
}

/// The local AWS services of this process (the parameter and secret store over the history,
/// seeded by `--secrets-file`; STS sessions in memory) and the hook that gives each build its
/// endpoint; the store's values for `env.parameter-store` / `env.secrets-manager`.
fn local_aws(request: &BuildRequest) -> Result<LocalAws, String> {
    let history = HistoryStore::open(store_root()).map_err(|e| e.to_string())?;
    let aws = localbuild_server::aws::Aws {
        s3: localbuild_aws::s3::S3::new(
            store_root().join("s3"),
            store_root().join("tmp").join("s3"),
        ),
        store: localbuild_aws::params::Store::new(history.db().clone(), request.secrets.clone()),
        ids: localbuild_aws::sts::Identities::default().in_account(&request.account_id),
        iam: localbuild_aws::iam::Iam::new(history.db().clone()).in_account(&request.account_id),
        open: false,
        region: request.region.clone(),
        ecr: Some(Arc::new(
            localbuild_aws::ecr::Ecr::new(history.db().clone(), store_root().join("ecr"))
                .in_account(&request.account_id),
        )),
    };
    let secrets = aws.store.snapshot().map_err(|e| e.to_string())?;
    let ecr = aws.ecr.clone();
    let hook = localbuild_engine::local_aws::LocalAwsHook(Arc::new(
        localbuild_server::aws::endpoint::BuildEndpoints::new(&aws),
    ));
    Ok(LocalAws { secrets, hook, ecr })
}

async fn run_build(
    mut request: BuildRequest,
    ecr: Option<Arc<localbuild_aws::ecr::Ecr>>,
    args: &RunArgs,
    after: impl FnOnce(&Outcome),
) -> Result<u8, CliError> {
    let docker =
        super::ecr_hosts::with_ecr(Docker::connect().await?, ecr.as_ref(), &request.region);
    let mode = super::progress::Mode::detect(args.quiet);
    let store = open_store()?;
    // The shells `run` opens itself need a person at the terminal, and its text output.
    let interactive = super::attach::interactive() && args.output == OutputFormat::Text;
    if request.debug.on_failure && !interactive {
        eprintln!(
            "note: --shell-on-failure opens a shell only on an interactive terminal; a failed command fails its phase as usual"
        );
        request.debug.on_failure = false;
    }
    let debugger =
        (interactive && (request.debug.session || request.debug.on_failure)).then(|| Debugger {
            docker: docker.clone(),
            keys: super::attach::Keys::start(),
        });
    // What this run creates names this process, so `localbuild gc` leaves it alone.
    let docker = docker.owned_by(store.owner_label());
    let engine = Engine::new(Arc::new(docker), Arc::new(store));
    let image = request.image.clone();
    let handle = engine.submit(request).await?;
    spawn_signal_handler(handle.clone());
    let live = match args.output {
        OutputFormat::Text => print_live(&handle, mode, debugger).await,
        OutputFormat::Json => print_json(&handle).await,
    };
    let stopped = live.is_err();
    if stopped {
        // Nobody can see the build any more: stop it, as Ctrl-C does.
        handle.stop();
    }
    let outcome = handle.outcome().await;
    let shown = live.and_then(|()| match args.output {
        OutputFormat::Text => print_summary(&outcome, color()),
        OutputFormat::Json => print_outcome(&outcome),
    });
    if let Some(hint) = provisioning_hint(&outcome.build, &image) {
        eprintln!("hint: {hint}");
    }
    if let Some(e) = &outcome.store_error {
        eprintln!("warning: the build record could not be kept: {e}");
    }
    if let Some(path) = &args.build_json {
        let json = serde_json::to_string_pretty(&outcome.build).unwrap_or_default();
        if let Err(e) = std::fs::write(path, json + "\n") {
            eprintln!("error: --build-json: cannot write {}: {e}", path.display());
        }
    }
    after(&outcome);
    let status = exit::for_status(outcome.build.build_status);
    match shown.map_err(CliError::stdout) {
        // A build that ended on its own keeps its status when only its summary went unread.
        Err(CliError::Closed) if !stopped => Ok(status),
        Err(e) => Err(e),
        Ok(()) => Ok(status),
    }
}

/// The history a build is recorded in; without it no build runs (a FAULT).
pub(super) fn open_store() -> Result<HistoryStore, CliError> {
    HistoryStore::open(store_root()).map_err(|e| {
        CliError::Fault(format!(
            "cannot open the build history under {}: {e}",
            store_root().display()
        ))
    })
}

pub(super) fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// The build log as it happens: agent lines and output on stdout, localbuild's own progress
/// on stderr (a spinner for the image work of PROVISIONING on a terminal, see
/// [`super::progress`]). Returns at the first failed write to stdout.
async fn print_live(
    handle: &BuildHandle,
    mode: super::progress::Mode,
    mut debugger: Option<Debugger>,
) -> io::Result<()> {
    let mut events = handle.subscribe();
    let mut progress = super::progress::Progress::new(mode);
    let mut provisioning = false;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    while let Some(event) = events.next().await {
        let written = match event {
            Event::Agent { at, text } => writeln!(out, "{}", agent_line(at, &text)),
            Event::Output(bytes) | Event::Lagged { log: bytes } => out.write_all(&bytes),
            Event::Progress(line) => {
                out.flush()?;
                if provisioning {
                    progress.step(&line);
                } else {
                    progress.line(&line);
                }
                Ok(())
            }
            Event::PhaseStarted { phase, .. } => {
                provisioning = phase == PhaseType::Provisioning;
                Ok(())
            }
            Event::PhaseEnded { .. } => {
                provisioning = false;
                progress.finish();
                Ok(())
            }
            Event::Paused { why, target, .. } => {
                if let Some(d) = debugger.as_mut() {
                    out.flush()?;
                    progress.finish();
                    d.paused(handle, why, &target).await;
                }
                Ok(())
            }
            _ => Ok(()),
        };
        written?;
        progress.suspend(|| out.flush())?;
    }
    progress.finish();
    out.flush()
}

/// The shells `run` opens on an interactive terminal when its build pauses.
struct Debugger {
    docker: Docker,
    keys: super::attach::Keys,
}

impl Debugger {
    /// At a breakpoint, offer a shell; after a failed command (`--shell-on-failure`), open
    /// one. The build goes on when the shell says `codebuild-resume` (after a failure, also
    /// when the shell is left).
    async fn paused(&mut self, handle: &BuildHandle, why: Pause, target: &str) {
        if why == Pause::Breakpoint {
            eprint!("Open a shell in the paused build now? [Y/n] ");
            let _ = std::io::stderr().flush();
            let answer = tokio::select! {
                k = self.keys.next() => k,
                _ = handle.outcome() => None,
            };
            match answer {
                Some(k)
                    if !k.trim_ascii().starts_with(b"n") && !k.trim_ascii().starts_with(b"N") => {}
                _ => return,
            }
            if !super::attach::is_paused(&self.docker, target).await {
                eprintln!("The build is no longer paused.");
                return;
            }
        }
        if let Err(e) = super::attach::shell(&self.docker, target, &mut self.keys).await {
            eprintln!("error: {e}");
        }
        if why == Pause::Breakpoint && super::attach::is_paused(&self.docker, target).await {
            let id = handle.snapshot().id;
            eprintln!(
                "The build is still paused: `localbuild attach {id}` opens the shell again; codebuild-resume there lets it go on."
            );
        }
    }
}

/// `--output json`: every event as JSON Lines (then [`print_outcome`]); returns at the first
/// failed write to stdout.
async fn print_json(handle: &BuildHandle) -> io::Result<()> {
    let mut events = handle.subscribe();
    let mut out = super::out::Out::lock();
    while let Some(event) = events.next().await {
        let mut line = Vec::new();
        super::json::write_event(&mut line, &event)?;
        out.write_all(&line)?;
        out.flush()?;
    }
    Ok(())
}

/// `--output json`'s last line: the final record.
fn print_outcome(outcome: &Outcome) -> io::Result<()> {
    let mut out = super::out::Out::lock();
    super::json::write_outcome(&mut out, outcome)?;
    out.flush()
}

/// What to do about an image that could not be had (CLI wording, not the record's).
fn provisioning_hint(build: &Build, image: &str) -> Option<String> {
    let failed = build.phases.iter().any(|p| {
        p.contexts
            .iter()
            .flatten()
            .any(|c| c.status_code == "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE")
    });
    if !failed {
        return None;
    }
    Some(if image == localbuild_engine::DEFAULT_IMAGE {
        "run `localbuild image build` to build it".to_owned()
    } else {
        format!(
            "build or load it locally (`docker build -t {image} .` or `docker load`), or choose another image with -i"
        )
    })
}

/// Ctrl-C and SIGTERM stop the build (it still records, cleans up and exits 130).
fn spawn_signal_handler(handle: BuildHandle) {
    tokio::spawn(async move {
        interrupted().await;
        handle.stop();
    });
}

/// Wait for Ctrl-C or SIGTERM.
pub(super) async fn interrupted() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

pub(super) fn paint(color: bool, status: Status, text: &str) -> String {
    if !color {
        return text.to_owned();
    }
    let code = match status {
        Status::Succeeded => "32",
        Status::Failed | Status::Fault => "31",
        Status::TimedOut | Status::Stopped | Status::InProgress => "33",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The table after the log: phase, status, duration; then the final status.
pub fn summary(build: &Build, color: bool) -> String {
    let mut s = String::new();
    s.push('\n');
    s.push_str(&format!(
        "{:<18} {:<10} {:>9}\n",
        "PHASE", "STATUS", "DURATION"
    ));
    for p in &build.phases {
        if matches!(p.phase_type, PhaseType::Completed) {
            continue;
        }
        let status = p.phase_status.unwrap_or(Status::InProgress);
        let duration = match p.end_time {
            Some(end) => format!("{:.1}s", (end - p.start_time).max(0.0)),
            None => String::new(),
        };
        let cell = format!("{:<10}", status.as_str());
        s.push_str(&format!(
            "{:<18} {} {:>9}\n",
            p.phase_type.as_str(),
            paint(color, status, &cell),
            duration
        ));
        if status != Status::Succeeded
            && let Some(ctx) = p.contexts.as_ref().and_then(|c| c.first())
            && (!ctx.status_code.is_empty() || !ctx.message.is_empty())
        {
            s.push_str(&format!("  {}: {}\n", ctx.status_code, ctx.message));
        }
    }
    let total = build.end_time.unwrap_or(build.start_time) - build.start_time;
    s.push_str(&format!(
        "\nBuild #{} {} {} in {:.1}s\n",
        build.build_number,
        build.id,
        paint(color, build.build_status, build.build_status.as_str()),
        total.max(0.0),
    ));
    s
}

/// What the build did with images, per phase: `  BUILD: built app:1f3c`,
/// `  POST_BUILD: pushed 127.0.0.1:5000/app:1f3c@sha256:…`; empty when it did nothing.
pub fn images_summary(images: &[PhaseImages]) -> String {
    let mut s = String::new();
    for p in images {
        let phase = p.phase.as_str();
        for name in &p.built {
            s.push_str(&format!("  {phase}: built {name}\n"));
        }
        for pushed in &p.pushed {
            s.push_str(&format!("  {phase}: pushed {pushed}\n"));
        }
    }
    if s.is_empty() {
        return s;
    }
    format!("Images:\n{s}")
}

fn print_summary(outcome: &Outcome, color: bool) -> io::Result<()> {
    let mut text = summary(&outcome.build, color);
    text.push_str(&images_summary(&outcome.images));
    text.push_str(&reports_summary(outcome));
    for a in &outcome.artifacts {
        text.push_str(&format!("Artifact: {}\n", a.display()));
    }
    text.push_str(&format!("Log and record: {}\n", outcome.dir.display()));
    let mut out = super::out::Out::lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Per report group: counts (or coverage), then each failed test with its message.
pub fn reports_summary(outcome: &Outcome) -> String {
    let mut s = String::new();
    for r in &outcome.reports {
        s.push_str(&format!("Report {}: {}\n", r.name, r.one_line()));
        for t in r.failed() {
            let name = if t.prefix.is_empty() {
                t.name.clone()
            } else {
                format!("{}.{}", t.prefix, t.name)
            };
            match &t.message {
                Some(m) => s.push_str(&format!(
                    "  {} {name}: {}\n",
                    t.status.as_str(),
                    m.lines().next().unwrap_or_default()
                )),
                None => s.push_str(&format!("  {} {name}\n", t.status.as_str())),
            }
        }
        for w in &r.warnings {
            s.push_str(&format!("  warning: {w}\n"));
        }
    }
    s
}
