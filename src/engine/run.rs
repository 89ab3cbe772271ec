//! One build, start to finish: the algorithm of reference §2.9 over Docker.

use super::images::ImageTracker;
use super::log::{agent_line, context_message};
use super::machine::{Machine, Step, should_retry};
use super::record::*;
use super::shell::{
    AgentVars, Driver, Persistence, ShellError, TMP_DIR, compose_script, driver_command,
};
use super::{
    BuildRequest, CancellationToken, DEFAULT_IMAGE, EngineError, Event, Outcome, hints, source,
    store,
};
use crate::buildspec::{self, Buildspec, PhaseName, Version};
use crate::docker::{ContainerSpec, Docker, DockerError};
use crate::secrets::Masker;
use bytes::Bytes;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::time::Instant;

mod outputs;

/// Why a build stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    TimedOut,
    Stopped,
}

/// How a phase ended.
enum PhaseEnd {
    Done {
        ok: bool,
    },
    Interrupted(Interrupt),
    /// The build container died: FAULT.
    Fault(String),
}

/// Run one build. Returns `Err` only when no build could be attempted.
pub async fn run(
    req: BuildRequest,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) -> Result<Outcome, EngineError> {
    let docker = Docker::connect().await?;
    let (number, dir) =
        store::claim_build_dir(&req.store, &req.project).map_err(|source| EngineError::Store {
            path: req.store.clone(),
            source,
        })?;
    let log_path = dir.join("build.log");
    let log = std::fs::File::create(&log_path).map_err(|source| EngineError::Store {
        path: log_path.clone(),
        source,
    })?;
    let uuid = uuid::Uuid::new_v4().to_string();
    let build_id = format!("{}:{uuid}", req.project);
    // If this future panics or is dropped mid-build, the guard still removes the container.
    let mut guard = CleanupGuard {
        docker: Some(docker.clone()),
        build_id: build_id.clone(),
    };
    let now = OffsetDateTime::now_utc();
    let src_root = format!(
        "/codebuild/output/src{}",
        100_000_000 + (uuid::Uuid::new_v4().as_u128() % 900_000_000)
    );
    let mut run = Run {
        deadline: Instant::now() + req.timeout,
        build: new_record(&req, &build_id, &uuid, number, now, &log_path),
        docker,
        events,
        cancel,
        log: std::io::BufWriter::new(log),
        container: None,
        drivers: HashMap::new(),
        marker: format!("__localbuild_{}__", uuid::Uuid::new_v4().simple()),
        src_dir: if req.secondary_sources.is_empty() {
            format!("{src_root}/src")
        } else {
            format!("{src_root}/src/s3/00")
        },
        src_root,
        build_id,
        succeeding: true,
        last_exit: 0,
        driver_env: vec![],
        masker: Masker::default(),
        provisioned: false,
        main_driver: false,
        shell: "/bin/sh".to_owned(),
        leftovers: false,
        images: ImageTracker::new(),
        outputs: outputs::Outputs::new(dir.clone()),
        req,
    };
    run.execute().await;
    run.cleanup().await;
    guard.docker = None;
    let _ = run.log.flush();
    let json = serde_json::to_vec_pretty(&run.build).unwrap_or_default();
    std::fs::write(dir.join("build.json"), json).map_err(|source| EngineError::Store {
        path: dir.clone(),
        source,
    })?;
    Ok(Outcome {
        build: run.build,
        dir,
        log_path,
        images: run.images.into_phases(),
        reports: run.outputs.reports,
        artifacts: run.outputs.artifacts,
    })
}

fn epoch(t: OffsetDateTime) -> f64 {
    (t.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0
}

fn new_record(
    req: &BuildRequest,
    build_id: &str,
    uuid: &str,
    number: u64,
    now: OffsetDateTime,
    log_path: &std::path::Path,
) -> Build {
    let region = &req.region;
    let group = format!("/aws/codebuild/{}", req.project);
    Build {
        id: build_id.to_owned(),
        arn: format!("arn:aws:codebuild:{region}:000000000000:build/{build_id}"),
        build_number: number,
        start_time: epoch(now),
        end_time: None,
        current_phase: PhaseType::Submitted,
        build_status: Status::InProgress,
        resolved_source_version: None,
        project_name: req.project.clone(),
        phases: vec![],
        source: Source {
            kind: "NO_SOURCE".to_owned(),
            location: req.source_dir.display().to_string(),
            source_identifier: None,
            buildspec: req.buildspec.as_ref().map(|b| b.display().to_string()),
        },
        secondary_sources: req
            .secondary_sources
            .iter()
            .map(|(id, dir)| Source {
                kind: "NO_SOURCE".to_owned(),
                location: dir.display().to_string(),
                source_identifier: Some(id.clone()),
                buildspec: None,
            })
            .collect(),
        artifacts: Artifacts::default(),
        secondary_artifacts: vec![],
        cache: Cache {
            kind: "NO_CACHE".to_owned(),
        },
        environment: Environment {
            kind: "LINUX_CONTAINER".to_owned(),
            image: req.image.clone(),
            compute_type: "BUILD_GENERAL1_SMALL".to_owned(),
            environment_variables: vec![],
            privileged_mode: req.privileged,
            image_pull_credentials_type: "CODEBUILD".to_owned(),
        },
        logs: Logs {
            deep_link: format!(
                "https://console.aws.amazon.com/cloudwatch/home?region={region}#logEvent:group={group};stream={uuid}"
            ),
            group_name: group,
            stream_name: uuid.to_owned(),
            cloud_watch_logs: LogStatus {
                status: "ENABLED".to_owned(),
            },
            s3_logs: LogStatus {
                status: "DISABLED".to_owned(),
            },
            local_path: Some(log_path.display().to_string()),
        },
        timeout_in_minutes: req.timeout.as_secs().div_ceil(60),
        queued_timeout_in_minutes: 480,
        build_complete: false,
        initiator: req.initiator.clone(),
        encryption_key: format!("arn:aws:kms:{region}:000000000000:alias/aws/s3"),
        exported_environment_variables: vec![],
        report_arns: vec![],
    }
}

struct Run {
    req: BuildRequest,
    docker: Docker,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
    deadline: Instant,
    build: Build,
    log: std::io::BufWriter<std::fs::File>,
    build_id: String,
    container: Option<String>,
    /// One driver per `run-as` user (`None` = the image's default user, root).
    /// (In a `Mutex` only so that `Run` is `Sync`; a driver is used by one command at a time.)
    drivers: HashMap<Option<String>, std::sync::Mutex<Driver>>,
    marker: String,
    src_root: String,
    src_dir: String,
    succeeding: bool,
    last_exit: i64,
    /// The environment every driver starts with (`KEY=VALUE`).
    driver_env: Vec<String>,
    /// Secret values, replaced by `***` in everything this build writes.
    masker: Masker,
    /// The container id is known (it was created and started).
    provisioned: bool,
    /// The default user's shell is the container's main process (it ends when its stdin does).
    main_driver: bool,
    /// The shell commands run with (`env.shell`, default `/bin/sh`).
    shell: String,
    /// Removing the container failed: search by label at the end.
    leftovers: bool,
    /// Images built and pushed, read from command output.
    images: ImageTracker,
    /// Artifacts, reports and cache state (see `outputs`).
    outputs: outputs::Outputs,
}

impl Run {
    async fn emit(&self, event: Event) {
        let _ = self.events.send(event).await;
    }

    /// Write an agent line to the log and the event stream.
    async fn agent(&mut self, message: &str) {
        let line = agent_line(OffsetDateTime::now_utc(), &self.masker.mask(message));
        let _ = writeln!(self.log, "{line}");
        self.emit(Event::Agent(line)).await;
    }

    async fn output(&mut self, bytes: Bytes) {
        let bytes = match self.masker.mask_bytes(&bytes) {
            Some(masked) => Bytes::from(masked),
            None => bytes,
        };
        self.images.feed(self.build.current_phase, &bytes);
        let _ = self.log.write_all(&bytes);
        self.emit(Event::Output(bytes)).await;
    }

    async fn progress(&self, message: &str) {
        self.emit(Event::Progress(self.masker.mask(message))).await;
    }

    /// Start a phase; phases are contiguous in time.
    async fn begin(&mut self, phase: PhaseType) {
        let start = self
            .build
            .phases
            .last()
            .and_then(|p| p.end_time)
            .unwrap_or(self.build.start_time);
        self.build.current_phase = phase;
        self.build.phases.push(BuildPhase {
            phase_type: phase,
            phase_status: None,
            start_time: start,
            end_time: None,
            duration_in_seconds: None,
            contexts: None,
        });
        self.emit(Event::PhaseStarted(phase)).await;
    }

    /// End the current phase. `context: None` = no contexts key (SUBMITTED, QUEUED).
    async fn end(&mut self, status: Status, context: Option<PhaseContext>) {
        let now = epoch(OffsetDateTime::now_utc());
        let Some(p) = self.build.phases.last_mut() else {
            return;
        };
        let end = now.max(p.start_time);
        p.end_time = Some(end);
        p.duration_in_seconds = Some((end - p.start_time).floor() as i64);
        p.phase_status = Some(status);
        p.contexts = context.map(|mut c| {
            c.message = self.masker.mask(&c.message);
            vec![c]
        });
        let phase = p.phase_type;
        self.emit(Event::PhaseEnded(phase, status)).await;
    }

    /// The agent's two closing lines of a phase, and its end.
    async fn complete(&mut self, phase: PhaseType, status: Status, ctx: PhaseContext) {
        self.agent(&format!(
            "Phase complete: {} State: {}",
            phase.as_str(),
            status.as_str()
        ))
        .await;
        self.agent(&context_message(&ctx.status_code, &ctx.message))
            .await;
        self.end(status, Some(ctx)).await;
    }

    fn interrupted(&self) -> Option<Interrupt> {
        if self.cancel.is_cancelled() {
            Some(Interrupt::Stopped)
        } else if Instant::now() >= self.deadline {
            Some(Interrupt::TimedOut)
        } else {
            None
        }
    }

    /// Await `fut` unless the build is stopped or times out first.
    async fn guard<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, Interrupt> {
        interruptible(&self.cancel, self.deadline, fut).await
    }

    async fn execute(&mut self) {
        self.begin(PhaseType::Submitted).await;
        self.end(Status::Succeeded, None).await;
        self.begin(PhaseType::Queued).await;
        self.end(Status::Succeeded, None).await;

        // The buildspec and environment are worked out on the host first, so that the shell can
        // be the container's main process; problems are reported in DOWNLOAD_SOURCE, as
        // CodeBuild does.
        let loaded = self.load();
        self.begin(PhaseType::Provisioning).await;
        match self.provision().await {
            Ok(()) => {
                self.end(Status::Succeeded, Some(PhaseContext::default()))
                    .await
            }
            Err(PhaseError::Interrupted(i)) => return self.interrupt(i).await,
            Err(PhaseError::Failed(ctx)) => {
                self.end(Status::Failed, Some(ctx)).await;
                return self.finalize(Some(Status::Fault)).await;
            }
        }

        self.begin(PhaseType::DownloadSource).await;
        let spec = match self.download_source(loaded).await {
            Ok(spec) => spec,
            Err(PhaseError::Interrupted(i)) => return self.interrupt(i).await,
            Err(PhaseError::Failed(ctx)) => {
                self.complete(PhaseType::DownloadSource, Status::Failed, ctx)
                    .await;
                return self.finalize(None).await;
            }
        };
        self.complete(
            PhaseType::DownloadSource,
            Status::Succeeded,
            PhaseContext::default(),
        )
        .await;

        let mut machine = Machine::new();
        let mut step = machine.start();
        while let Step::Phase(name) = step {
            let phase = spec.phases.get(name).cloned().unwrap_or_default();
            match self.run_phase(&spec, name, &phase).await {
                PhaseEnd::Done { ok } => step = machine.after(name, ok, phase.on_failure.as_ref()),
                PhaseEnd::Interrupted(i) => return self.interrupt(i).await,
                PhaseEnd::Fault(msg) => {
                    self.complete(
                        name.into(),
                        Status::Failed,
                        PhaseContext::new("SINGLE_BUILD_CONTAINER_DEAD", msg),
                    )
                    .await;
                    return self.finalize(Some(Status::Fault)).await;
                }
            }
        }
        self.export_variables(&spec).await;
        if step == Step::UploadArtifacts {
            self.begin(PhaseType::UploadArtifacts).await;
            match self.upload_artifacts(&spec).await {
                Ok(()) => {
                    self.complete(
                        PhaseType::UploadArtifacts,
                        Status::Succeeded,
                        PhaseContext::default(),
                    )
                    .await
                }
                Err(PhaseError::Interrupted(i)) => return self.interrupt(i).await,
                Err(PhaseError::Failed(ctx)) => {
                    self.complete(PhaseType::UploadArtifacts, Status::Failed, ctx)
                        .await
                }
            }
        }
        self.finalize(None).await;
    }

    /// PROVISIONING: the image, the container.
    async fn provision(&mut self) -> Result<(), PhaseError> {
        let image = self.req.image.clone();
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        let docker = self.docker.clone();
        let ensure = async move {
            let mut progress = |line: &str| {
                let _ = tx.send(line.to_owned());
            };
            if image == DEFAULT_IMAGE {
                crate::docker::image::ensure_standard_image(&docker, &mut progress)
                    .await
                    .map_err(|e| DockerError::ImageUnavailable {
                        image: image.clone(),
                        reason: e.to_string(),
                    })
            } else {
                docker.ensure_image(&image, &mut progress).await
            }
        };
        let events = self.events.clone();
        let forward = async move {
            while let Some(line) = rx.recv().await {
                let _ = events.send(Event::Progress(line)).await;
            }
        };
        tracing::debug!("provisioning: image");
        let (result, ()) = self
            .guard(async { tokio::join!(ensure, forward) })
            .await
            .map_err(PhaseError::Interrupted)?;
        if let Err(e) = result {
            let hint = if self.req.image == DEFAULT_IMAGE {
                "run `localbuild image build` to build it".to_owned()
            } else {
                format!(
                    "build or load it locally (`docker build -t {0} .` or `docker load`), \
                     or choose another image with -i",
                    self.req.image
                )
            };
            return Err(PhaseError::Failed(PhaseContext::new(
                "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE",
                format!("Unable to pull customer's container image. {e}. To fix: {hint}"),
            )));
        }

        let mut binds = vec![];
        if self.req.bind_mount {
            for (dir, path) in self.sources() {
                binds.push(format!("{}:{path}", dir.display()));
            }
        }
        if let Some(aws) = &self.req.aws_dir {
            binds.push(format!("{}:/root/.aws:ro", aws.display()));
        }
        let mut keep_entrypoint = false;
        if self.req.privileged {
            let entrypoint = self
                .docker
                .image_entrypoint(&self.req.image)
                .await
                .unwrap_or_default();
            keep_entrypoint = entrypoint
                .iter()
                .any(|e| e.ends_with("dockerd-entrypoint.sh"));
            if !keep_entrypoint {
                if let Some(sock) = self.docker.socket_path() {
                    binds.push(format!("{sock}:/var/run/docker.sock"));
                }
            }
        }
        let mut spec = ContainerSpec {
            name: format!(
                "localbuild-{}-{}",
                sanitize(&self.req.project),
                &self.build.logs.stream_name[..8]
            ),
            image: self.req.image.clone(),
            build_id: self.build_id.clone(),
            env: vec!["HOME=/root".to_owned()],
            binds,
            privileged: self.req.privileged,
            keep_entrypoint,
            main: Some(driver_command(
                TMP_DIR,
                &self.marker,
                &self.shell,
                &self.src_dir,
            )),
        };
        spec.env.extend(self.driver_env.iter().cloned());
        tracing::debug!("provisioning: image ready, starting the container");
        let mut started = self
            .guard(self.docker.start_container(&spec))
            .await
            .map_err(PhaseError::Interrupted)?;
        if spec.privileged
            && started
                .as_ref()
                .is_err_and(DockerError::is_privilege_denied)
        {
            // A daemon that cannot grant privileges (itself in a restricted container): docker
            // commands still work through the mounted socket, so run unprivileged. (An image's
            // own dockerd then fails to start, and the wait below reports it.)
            let _ = self
                .docker
                .remove_build_resources(Some(&self.build_id))
                .await;
            let effect = if keep_entrypoint {
                "the image's own Docker daemon may fail to start"
            } else {
                "docker commands use this machine's daemon through its socket"
            };
            self.progress(&format!("warning: this Docker daemon cannot start privileged containers; running the build container unprivileged ({effect})")).await;
            spec.privileged = false;
            started = self
                .guard(self.docker.start_container(&spec))
                .await
                .map_err(PhaseError::Interrupted)?;
        }
        match started {
            Ok((id, session)) => {
                self.container = Some(id.clone());
                self.provisioned = true;
                if let Some(session) = session {
                    let driver = Driver::new(session, self.marker.clone());
                    self.drivers.insert(None, std::sync::Mutex::new(driver));
                    self.main_driver = true;
                }
                if keep_entrypoint {
                    self.wait_for_dockerd(&id).await?;
                }
                Ok(())
            }
            Err(e) => {
                // The container may exist even though it could not start.
                let _ = self
                    .docker
                    .remove_build_resources(Some(&self.build_id))
                    .await;
                Err(PhaseError::Failed(PhaseContext::new(
                    "SINGLE_BUILD_CONTAINER_DEAD",
                    format!("Build container found dead before completing the build. {e}"),
                )))
            }
        }
    }

    /// The image's `dockerd-entrypoint.sh` starts dockerd: wait (up to ~60 s, as the script
    /// does) until `docker info` succeeds in the container; fail if the container exits.
    async fn wait_for_dockerd(&mut self, id: &str) -> Result<(), PhaseError> {
        self.progress("Waiting for the Docker daemon in the build container")
            .await;
        let dead = |why: &str| {
            PhaseError::Failed(PhaseContext::new(
                "SINGLE_BUILD_CONTAINER_DEAD",
                format!("Build container found dead before completing the build. {why}"),
            ))
        };
        let until = Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if !self.docker.is_running(id).await {
                return Err(dead(
                    "Its entrypoint (dockerd-entrypoint.sh) exited before the Docker daemon started",
                ));
            }
            let cmd = vec!["docker".to_owned(), "info".to_owned()];
            let status = self
                .guard(self.docker.exec_status(id, cmd))
                .await
                .map_err(PhaseError::Interrupted)?;
            if matches!(status, Ok(0)) {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(dead(
                    "Timed out trying to connect to internal docker host (docker info did not succeed within 60 s)",
                ));
            }
            self.guard(tokio::time::sleep(std::time::Duration::from_secs(1)))
                .await
                .map_err(PhaseError::Interrupted)?;
        }
    }

    /// DOWNLOAD_SOURCE: source, buildspec, environment, the first driver.
    async fn download_source(&mut self, loaded: Loaded) -> Result<Buildspec, PhaseError> {
        let version = env!("CARGO_PKG_VERSION");
        self.agent(&format!("Running on localbuild {version}"))
            .await;
        self.agent("Waiting for agent ping").await;
        self.agent("Waiting for DOWNLOAD_SOURCE").await;
        self.agent("Phase is DOWNLOAD_SOURCE").await;
        let src_dir = self.src_dir.clone();
        self.agent(&format!("CODEBUILD_SRC_DIR={src_dir}")).await;
        for (id, path) in self.secondary_dirs() {
            self.agent(&format!("CODEBUILD_SRC_DIR_{id}={path}")).await;
        }

        // The buildspec, read on the host: CodeBuild reads it from the downloaded source.
        self.agent(&format!("YAML location is {}", loaded.shown))
            .await;
        for line in &loaded.diagnostics {
            self.progress(line).await;
        }
        let spec = loaded.spec.map_err(PhaseError::Failed)?;
        if spec.batch.is_some() {
            self.progress("warning: batch builds are not supported yet; running the buildspec as a single build")
                .await;
        }

        self.agent("Processing environment variables").await;
        loaded.secrets.map_err(PhaseError::Failed)?;
        if spec.env.git_credential_helper {
            self.agent(
                "git-credential-helper: not needed locally (the source is already here); skipping",
            )
            .await;
        }
        let runtimes = spec
            .phases
            .install
            .as_ref()
            .is_some_and(|p| !p.runtime_versions.is_empty());
        if runtimes {
            self.agent("Skipping install of runtimes. Runtime version selection is not supported by this build image")
                .await;
        } else {
            self.agent("No runtime version selected in buildspec.")
                .await;
        }

        // Like a project's environment variables: the overrides, by name only (values given
        // on a command line are often credentials; the record never holds them).
        self.build.environment.environment_variables = self
            .req
            .env_overrides
            .iter()
            .map(|(k, _)| EnvironmentVariable {
                name: k.clone(),
                value: String::new(),
                kind: Some("PLAINTEXT".to_owned()),
            })
            .collect();
        // Without a main-process shell (images that keep their entrypoint), one starts while
        // the sources upload: it runs nothing before they are there.
        let need_driver = !self.drivers.contains_key(&None);
        let open = async {
            match need_driver {
                true => Some(self.open_driver(None).await),
                false => None,
            }
        };
        let (driver, uploaded) = tokio::join!(open, self.upload_sources());
        uploaded?;
        match driver {
            None => {}
            Some(Ok(d)) => {
                self.drivers.insert(None, std::sync::Mutex::new(d));
            }
            Some(Err(e)) => {
                return Err(PhaseError::Failed(PhaseContext::new(
                    "CLIENT_ERROR",
                    format!("cannot start the command shell in the build container: {e}"),
                )));
            }
        }
        tracing::debug!("download source: sources uploaded, shell started");
        let shell = spec.env.shell.clone().unwrap_or_else(|| "/bin/sh".into());
        match self.capture(&spec, ":").await {
            Some((0, _)) => {}
            Some((code, out)) => {
                return Err(PhaseError::Failed(PhaseContext::new(
                    "CLIENT_ERROR",
                    format!(
                        "cannot run commands with the shell {shell} (env.shell) in image {}: {} (exit status {code})",
                        self.req.image,
                        String::from_utf8_lossy(&out).trim()
                    ),
                )));
            }
            None => {
                return Err(PhaseError::Failed(PhaseContext::new(
                    "CLIENT_ERROR",
                    format!("cannot start the shell {shell} in image {}", self.req.image),
                )));
            }
        }
        self.agent(&format!("Moving to directory {src_dir}")).await;
        self.restore_cache(&spec).await?;
        self.agent("Registering with agent").await;
        let defined: Vec<_> = spec.phases.defined().collect();
        self.agent(&format!("Phases found in YAML: {}", defined.len()))
            .await;
        let lines: Vec<String> = defined
            .iter()
            .map(|(n, p)| format!(" {}: {} commands", n.upper(), p.commands.len()))
            .collect();
        for line in lines {
            self.agent(&line).await;
        }
        Ok(spec)
    }

    /// Read and check the buildspec, resolve its secrets, and work out the environment every
    /// command starts with. Pure host work; its failures are reported in DOWNLOAD_SOURCE.
    fn load(&mut self) -> Loaded {
        let (path, shown) = self.buildspec_location();
        let mut loaded = Loaded {
            spec: Err(PhaseContext::default()),
            secrets: Ok(()),
            diagnostics: vec![],
            shown: shown.clone(),
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                let message =
                    if self.req.buildspec.is_none() && e.kind() == std::io::ErrorKind::NotFound {
                        "YAML file does not exist".to_owned()
                    } else {
                        format!("stat {shown}: {}", io_reason(&e))
                    };
                loaded.spec = Err(PhaseContext::new("YAML_FILE_ERROR", message));
                self.driver_env = self.environment(None, &[]);
                return loaded;
            }
        };
        let shown_path = path.display().to_string();
        let spec = match buildspec::parse(&bytes) {
            Ok(parsed) => {
                for w in &parsed.warnings {
                    let text = w.render(&shown_path, &bytes);
                    loaded.diagnostics.push(text.trim_end().to_owned());
                }
                parsed.buildspec
            }
            Err(invalid) => {
                for d in &invalid.errors {
                    let text = d.render(&shown_path, &bytes);
                    loaded.diagnostics.push(text.trim_end().to_owned());
                }
                let message = match invalid.errors.first() {
                    Some(d) if d.line > 0 => format!("{} at line {}", d.message, d.line),
                    _ => invalid.message().to_owned(),
                };
                loaded.spec = Err(PhaseContext::new("YAML_FILE_ERROR", message));
                self.driver_env = self.environment(None, &[]);
                return loaded;
            }
        };
        let mut resolved = Vec::new();
        let failed = |name: &str, m: String| {
            PhaseContext::new(
                "Decrypted Variables Error",
                format!("{m} (variable {name})"),
            )
        };
        for (name, parameter) in &spec.env.parameter_store {
            match self.req.secrets.parameter(parameter) {
                Ok(v) => resolved.push((name.clone(), v)),
                Err(m) => loaded.secrets = Err(failed(name, m)),
            }
        }
        for (name, reference) in &spec.env.secrets_manager {
            match self.req.secrets.secret(reference) {
                Ok(v) => resolved.push((name.clone(), v)),
                Err(m) => loaded.secrets = Err(failed(name, m)),
            }
        }
        self.masker = Masker::new(
            resolved
                .iter()
                .map(|(_, v)| v.clone())
                .chain(self.req.mask.iter().cloned()),
        );
        if loaded.secrets.is_err() {
            resolved.clear();
        }
        self.shell = spec.env.shell.clone().unwrap_or_else(|| "/bin/sh".into());
        self.driver_env = self.environment(Some(&spec), &resolved);
        loaded.spec = Ok(spec);
        loaded
    }

    /// The `script.sh` text for `cmd` at this point of the build.
    fn script(&self, spec: &Buildspec, cmd: &str) -> String {
        let persistence = match spec.version {
            Version::V0_1 => Persistence::Fresh,
            Version::V0_2 => Persistence::Carry,
        };
        let vars = AgentVars {
            succeeding: self.succeeding,
            last_exit: self.last_exit,
        };
        compose_script(TMP_DIR, &self.src_dir, persistence, vars, cmd)
    }

    /// Run `cmd` with the build's shell semantics as the default user, without logging it;
    /// returns its exit status and its output (stdout and stderr). `None` if the shell died.
    async fn capture(&mut self, spec: &Buildspec, cmd: &str) -> Option<(i64, Vec<u8>)> {
        self.driver(None).await.ok()?;
        let script = self.script(spec, cmd);
        let mut driver = self.take_driver(None)?;
        let mut out = Vec::new();
        let result = self
            .guard(driver.run(&script, &mut |b| out.extend_from_slice(&b)))
            .await;
        match result {
            Ok(Ok(code)) => {
                self.drivers.insert(None, std::sync::Mutex::new(driver));
                Some((code, out))
            }
            Ok(Err(ShellError::Ended { output })) => {
                out.extend_from_slice(&output);
                Some((self.ended_status(driver.exec_id(), 127).await, out))
            }
            _ => None,
        }
    }

    /// `env.exported-variables`: their values as the last command left them, into the record.
    async fn export_variables(&mut self, spec: &Buildspec) {
        let names: Vec<&String> = spec
            .env
            .exported_variables
            .iter()
            .filter(|n| crate::secrets::is_variable_name(n))
            .collect();
        if names.is_empty() || self.container.is_none() {
            return;
        }
        let cmd: String = names
            .iter()
            .map(|n| format!("printf '%s\\0' \"${{{n}-}}\"; "))
            .collect();
        let Some((0, out)) = self.capture(spec, &cmd).await else {
            return;
        };
        let values = out.split(|b| *b == 0);
        self.build.exported_environment_variables = names
            .iter()
            .zip(values)
            .map(|(n, v)| EnvironmentVariable {
                name: (*n).clone(),
                value: self.masker.mask(&String::from_utf8_lossy(v)),
                kind: None,
            })
            .collect();
    }

    /// Cache restore, in DOWNLOAD_SOURCE after the buildspec is parsed (decision U12).
    async fn restore_cache(&mut self, spec: &Buildspec) -> Result<(), PhaseError> {
        self.restore_outputs_cache(spec).await;
        Ok(())
    }

    /// UPLOAD_ARTIFACTS: artifacts, secondary artifacts, reports, cache save.
    async fn upload_artifacts(&mut self, spec: &Buildspec) -> Result<(), PhaseError> {
        // Transfers are not interrupted midway; a stop or timeout is honoured before and after.
        if let Some(i) = self.interrupted() {
            return Err(PhaseError::Interrupted(i));
        }
        self.upload_outputs(spec).await?;
        match self.interrupted() {
            Some(i) => Err(PhaseError::Interrupted(i)),
            None => Ok(()),
        }
    }

    /// Secondary sources: identifier and directory in the container (decision U11).
    fn secondary_dirs(&self) -> Vec<(String, String)> {
        self.req
            .secondary_sources
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.clone(), format!("{}/src/s3/{:02}", self.src_root, i + 1)))
            .collect()
    }

    /// Every source: host directory and its directory in the container, primary first.
    fn sources(&self) -> Vec<(PathBuf, String)> {
        let mut v = vec![(self.req.source_dir.clone(), self.src_dir.clone())];
        for ((_, dir), (_, path)) in self.req.secondary_sources.iter().zip(self.secondary_dirs()) {
            v.push((dir.clone(), path));
        }
        v
    }

    /// The buildspec's host path, and how the log shows it.
    fn buildspec_location(&self) -> (PathBuf, String) {
        match &self.req.buildspec {
            None => (
                self.req.source_dir.join("buildspec.yml"),
                format!("{}/buildspec.yml", self.src_dir),
            ),
            Some(p) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                let src = std::path::absolute(&self.req.source_dir)
                    .unwrap_or_else(|_| self.req.source_dir.clone());
                let shown = match abs.strip_prefix(&src) {
                    Ok(rel) => format!("{}/{}", self.src_dir, rel.display()),
                    Err(_) => abs.display().to_string(),
                };
                (abs, shown)
            }
        }
    }

    /// The variables every command starts with, lowest precedence first.
    fn environment(
        &mut self,
        spec: Option<&Buildspec>,
        resolved: &[(String, String)],
    ) -> Vec<String> {
        let req = &self.req;
        let region = &req.region;
        let start_ms = (self.build.start_time * 1000.0).round() as i64;
        let head = source::git_head(&req.source_dir);
        self.build.resolved_source_version = head.clone();
        let mut vars: Vec<(String, String)> = vec![
            ("AWS_DEFAULT_REGION".into(), region.clone()),
            ("AWS_REGION".into(), region.clone()),
            ("CODEBUILD_BUILD_ARN".into(), self.build.arn.clone()),
            ("CODEBUILD_BUILD_ID".into(), self.build.id.clone()),
            ("CODEBUILD_BUILD_IMAGE".into(), req.image.clone()),
            (
                "CODEBUILD_BUILD_NUMBER".into(),
                self.build.build_number.to_string(),
            ),
            ("CODEBUILD_BUILD_SUCCEEDING".into(), "1".into()),
            ("CODEBUILD_INITIATOR".into(), req.initiator.clone()),
            (
                "CODEBUILD_KMS_KEY_ID".into(),
                self.build.encryption_key.clone(),
            ),
            ("CODEBUILD_LAST_EXIT".into(), "0".into()),
            ("CODEBUILD_LOCAL_BUILD".into(), "true".into()),
            ("CODEBUILD_CI".into(), "false".into()),
            (
                "CODEBUILD_LOG_PATH".into(),
                self.build.logs.stream_name.clone(),
            ),
            (
                "CODEBUILD_PROJECT_ARN".into(),
                format!(
                    "arn:aws:codebuild:{region}:000000000000:project/{}",
                    req.project
                ),
            ),
            ("CODEBUILD_SRC_DIR".into(), self.src_dir.clone()),
        ];
        for (id, path) in self.secondary_dirs() {
            vars.push((format!("CODEBUILD_SRC_DIR_{id}"), path));
        }
        vars.extend([
            ("CODEBUILD_GOPATH".into(), self.src_root.clone()),
            ("CODEBUILD_START_TIME".into(), start_ms.to_string()),
            ("HOME".into(), "/root".into()),
        ]);
        if let Some(sha) = head {
            vars.push(("CODEBUILD_RESOLVED_SOURCE_VERSION".into(), sha.clone()));
            vars.push(("CODEBUILD_SOURCE_VERSION".into(), sha));
        }
        if let Some(spec) = spec {
            vars.extend(spec.env.variables.iter().cloned());
        }
        vars.extend(resolved.iter().cloned());
        vars.extend(req.env_overrides.iter().cloned());
        // Later entries win: keep the last value of each name.
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<String> = vars
            .into_iter()
            .rev()
            .filter(|(k, _)| seen.insert(k.clone()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        out.reverse();
        out
    }

    /// Take `user`'s driver out of the map while a command uses it.
    fn take_driver(&mut self, user: Option<&str>) -> Option<Driver> {
        let driver = self.drivers.remove(&user.map(str::to_owned))?;
        Some(driver.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// The exit status of a driver that ended: Docker's for an exec (126 for a missing
    /// `run-as` user), else `fallback`. (Takes the id, not the `Driver`, which is not `Sync`.)
    async fn ended_status(&self, exec_id: Option<&str>, fallback: i64) -> i64 {
        match exec_id {
            Some(id) => self.docker.exec_exit_code(id).await.unwrap_or(fallback),
            None => fallback,
        }
    }

    /// Make sure a driver runs for `user`.
    async fn driver(&mut self, user: Option<&str>) -> Result<(), DockerError> {
        let key = user.map(str::to_owned);
        if !self.drivers.contains_key(&key) {
            let driver = self.open_driver(user).await?;
            self.drivers.insert(key, std::sync::Mutex::new(driver));
        }
        Ok(())
    }

    /// Start a driver for `user` (it works from `/`; scripts `cd` where they run).
    async fn open_driver(&self, user: Option<&str>) -> Result<Driver, DockerError> {
        let shell = &self.shell;
        let container = self.container.clone().unwrap_or_default();
        let session = self
            .docker
            .start_session(
                &container,
                driver_command(TMP_DIR, &self.marker, shell, &self.src_dir),
                user,
                "/",
                &self.driver_env,
            )
            .await?;
        Ok(Driver::new(session, self.marker.clone()))
    }

    /// Copy every source into the container (nothing to do with `-m`).
    async fn upload_sources(&self) -> Result<(), PhaseError> {
        if self.req.bind_mount {
            return Ok(());
        }
        let container = self.container.clone().unwrap_or_default();
        for (dir, path) in self.sources() {
            let tar = source::tar_stream(dir, path.trim_start_matches('/').to_owned());
            let uploaded = self
                .guard(self.docker.upload_tar(&container, tar))
                .await
                .map_err(PhaseError::Interrupted)?;
            if let Err(e) = uploaded {
                return Err(PhaseError::Failed(PhaseContext::new(
                    "CLIENT_ERROR",
                    format!("error while downloading source: {e}"),
                )));
            }
        }
        Ok(())
    }

    /// One buildspec phase, with its retries.
    async fn run_phase(
        &mut self,
        spec: &Buildspec,
        name: PhaseName,
        phase: &buildspec::Phase,
    ) -> PhaseEnd {
        let pt: PhaseType = name.into();
        self.begin(pt).await;
        self.agent(&format!("Entering phase {}", name.upper()))
            .await;
        let user = phase.run_as.clone().or_else(|| spec.run_as.clone());
        let mut attempt = 0;
        loop {
            let mut failure: Option<(PhaseContext, Bytes, i64)> = None;
            for list in [&phase.commands, &phase.finally] {
                for cmd in list {
                    match self.run_command(spec, user.as_deref(), cmd).await {
                        CommandEnd::Ok => {}
                        CommandEnd::Failed { code, output } => {
                            if failure.is_none() {
                                failure = Some((
                                    PhaseContext::new(
                                        "COMMAND_EXECUTION_ERROR",
                                        format!(
                                            "Error while executing command: {cmd}. Reason: exit status {code}"
                                        ),
                                    ),
                                    output,
                                    code,
                                ));
                            }
                            break;
                        }
                        CommandEnd::Interrupted(i) => return PhaseEnd::Interrupted(i),
                        CommandEnd::Fault(m) => return PhaseEnd::Fault(m),
                    }
                }
            }
            let Some((ctx, output, code)) = failure else {
                self.complete(pt, Status::Succeeded, PhaseContext::default())
                    .await;
                return PhaseEnd::Done { ok: true };
            };
            let out_text = String::from_utf8_lossy(&output);
            if should_retry(
                phase.on_failure.as_ref(),
                attempt,
                &[&ctx.message, &out_text],
            ) {
                attempt += 1;
                let total = match &phase.on_failure {
                    Some(buildspec::OnFailure::Retry { count, .. }) => *count,
                    _ => 0,
                };
                self.agent(&format!(
                    "Retrying phase {} (attempt {attempt} of {total})",
                    name.upper()
                ))
                .await;
                continue;
            }
            let hint = hints::hint(&hints::Facts {
                output: &out_text,
                exit_code: code,
                privileged: self.req.privileged,
                shell: spec.env.shell.as_deref(),
                image: &self.req.image,
            });
            self.complete(pt, Status::Failed, ctx).await;
            if let Some(hint) = hint {
                self.agent(&format!("Hint: {hint}")).await;
            }
            return PhaseEnd::Done { ok: false };
        }
    }

    async fn run_command(&mut self, spec: &Buildspec, user: Option<&str>, cmd: &str) -> CommandEnd {
        if let Some(i) = self.interrupted() {
            return CommandEnd::Interrupted(i);
        }
        self.agent(&format!("Running command {cmd}")).await;
        if let Err(e) = self.driver(user).await {
            return CommandEnd::Fault(e.to_string());
        }
        let script = self.script(spec, cmd);
        let key = user.map(str::to_owned);
        let Some(mut driver) = self.take_driver(user) else {
            return CommandEnd::Fault("no command shell".into());
        };
        // Output flows through a channel so that the log and events see it live.
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let mut captured = Vec::new();
        let cancel = self.cancel.clone();
        let deadline = self.deadline;
        let result = {
            let run = async {
                let mut sink = |b: Bytes| {
                    let _ = tx.send(b);
                };
                let r = driver.run(&script, &mut sink).await;
                drop(tx);
                r
            };
            let pump = async {
                while let Some(b) = rx.recv().await {
                    if captured.len() < 1 << 20 {
                        captured.extend_from_slice(&b);
                    }
                    self.output(b).await;
                }
            };
            // `guard` would borrow `self`, which `pump` holds.
            interruptible(&cancel, deadline, async { tokio::join!(run, pump).0 }).await
        };
        let code = match result {
            Err(i) => return CommandEnd::Interrupted(i),
            Ok(Ok(code)) => {
                self.drivers.insert(key, std::sync::Mutex::new(driver));
                code
            }
            Ok(Err(ShellError::Ended { output })) => {
                // The driver ended: a missing run-as user (exit 126), or the container died.
                if !output.is_empty() {
                    captured.extend_from_slice(&output);
                    self.output(output).await;
                }
                let container = self.container.clone().unwrap_or_default();
                if !self.docker.is_running(&container).await {
                    return CommandEnd::Fault(
                        "Build container found dead before completing the build".into(),
                    );
                }
                self.ended_status(driver.exec_id(), 126).await
            }
            Ok(Err(e)) => return CommandEnd::Fault(e.to_string()),
        };
        let _ = writeln!(self.log);
        self.emit(Event::Output(Bytes::from_static(b"\n"))).await;
        self.last_exit = code;
        if code == 0 {
            CommandEnd::Ok
        } else {
            self.succeeding = false;
            self.agent(&format!(
                "Command did not exit successfully {cmd} exit status {code}"
            ))
            .await;
            CommandEnd::Failed {
                code,
                output: Bytes::from(captured),
            }
        }
    }

    /// The build was stopped or timed out: close the current phase, then finalize.
    async fn interrupt(&mut self, i: Interrupt) {
        let (status, ctx) = match i {
            Interrupt::TimedOut => (
                Status::TimedOut,
                PhaseContext::new("BUILD_TIMED_OUT", "Build has timed out. "),
            ),
            Interrupt::Stopped => (Status::Stopped, PhaseContext::default()),
        };
        let phase = self.build.current_phase;
        let logged = matches!(
            phase,
            PhaseType::DownloadSource
                | PhaseType::Install
                | PhaseType::PreBuild
                | PhaseType::Build
                | PhaseType::PostBuild
                | PhaseType::UploadArtifacts
        );
        if logged {
            self.complete(phase, status, ctx).await;
        } else {
            self.end(status, Some(ctx)).await;
        }
        self.finalize(Some(status)).await;
    }

    /// FINALIZING and COMPLETED; `forced` overrides the status computed from the phases.
    async fn finalize(&mut self, forced: Option<Status>) {
        self.begin(PhaseType::Finalizing).await;
        // A stopped, timed-out or faulted build may still be running a command: no waiting.
        self.remove_container(forced.is_none()).await;
        self.end(Status::Succeeded, Some(PhaseContext::default()))
            .await;
        self.begin(PhaseType::Completed).await;
        let end = self.build.phases.last().map(|p| p.start_time);
        self.build.end_time = end;
        self.build.build_complete = true;
        self.build.build_status = forced.unwrap_or_else(|| {
            if self
                .build
                .phases
                .iter()
                .any(|p| p.phase_status == Some(Status::Failed))
            {
                Status::Failed
            } else {
                Status::Succeeded
            }
        });
        self.emit(Event::PhaseStarted(PhaseType::Completed)).await;
    }

    async fn remove_container(&mut self, graceful: bool) {
        tracing::debug!("finalizing: removing the container");
        let root = self.take_driver(None);
        self.drivers.clear();
        if let Some(driver) = root {
            // End of stdin ends the main-process shell, and with it the container.
            driver.close().await;
        }
        if let Some(id) = self.container.take() {
            if graceful && self.main_driver {
                self.docker.wait_stopped(&id, Duration::from_secs(2)).await;
            }
            if self.docker.remove_container(&id).await.is_err() {
                self.leftovers = true;
            }
        }
    }

    /// Whatever happened, nothing labelled with this build stays behind. The container was
    /// removed by id in FINALIZING; a search by label is needed only when that failed or when
    /// provisioning did not get as far as knowing the container's id.
    async fn cleanup(&mut self) {
        tracing::debug!("cleanup");
        self.remove_container(false).await;
        if self.leftovers || !self.provisioned {
            let _ = self
                .docker
                .remove_build_resources(Some(&self.build_id))
                .await;
        }
    }
}

/// Removes the build's labelled resources on drop unless disarmed (panic or dropped future).
struct CleanupGuard {
    docker: Option<Docker>,
    build_id: String,
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        let Some(docker) = self.docker.take() else {
            return;
        };
        let id = std::mem::take(&mut self.build_id);
        // A fresh runtime on its own thread: this may run while a runtime is unwinding.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(docker.remove_build_resources(Some(&id)));
            }
        })
        .join();
    }
}

/// The buildspec and its secrets, read before PROVISIONING and reported in DOWNLOAD_SOURCE.
struct Loaded {
    /// How the log shows the buildspec's path.
    shown: String,
    /// The buildspec, or the `YAML_FILE_ERROR` context.
    spec: Result<Buildspec, PhaseContext>,
    /// Parameter Store / Secrets Manager resolution.
    secrets: Result<(), PhaseContext>,
    /// Rendered errors and warnings, printed as progress (never in the build log).
    diagnostics: Vec<String>,
}

/// Await `fut` unless `cancel` fires or `deadline` passes first.
async fn interruptible<T>(
    cancel: &CancellationToken,
    deadline: Instant,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, Interrupt> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(Interrupt::Stopped),
        () = tokio::time::sleep_until(deadline) => Err(Interrupt::TimedOut),
        v = fut => Ok(v),
    }
}

/// Why a lifecycle phase (PROVISIONING, DOWNLOAD_SOURCE, UPLOAD_ARTIFACTS) did not succeed.
enum PhaseError {
    Interrupted(Interrupt),
    Failed(PhaseContext),
}

enum CommandEnd {
    Ok,
    Failed { code: i64, output: Bytes },
    Interrupted(Interrupt),
    Fault(String),
}

/// A container-name-safe version of the project name.
fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    out.trim_start_matches(['-', '.', '_']).to_owned()
}

/// `no such file or directory`, as Go prints it.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        _ => e.to_string(),
    }
}
