//! DOWNLOAD_SOURCE: a git source's checkout and the buildspec (both made on the host before
//! PROVISIONING, reported here), the secrets, the environment every command starts with, the
//! sources (only what git does not ignore, for a work tree), the first shell and the cache
//! restore.

use super::*;
use crate::request::Source as RequestSource;
use crate::secrets::Masker;
use crate::source;
use std::path::Path;

impl BuildExecution {
    /// DOWNLOAD_SOURCE: source, buildspec, environment, the first driver.
    pub(super) async fn download_source(
        &mut self,
        loaded: Loaded,
    ) -> Result<Buildspec, PhaseError> {
        let version = env!("CARGO_PKG_VERSION");
        self.agent(&format!("Running on localbuild {version}"));
        if let Some(s) = &self.stand_in {
            let note = s.note.clone();
            self.agent(&note);
        }
        self.agent("Waiting for agent ping");
        self.agent("Waiting for DOWNLOAD_SOURCE");
        self.agent("Phase is DOWNLOAD_SOURCE");
        let src_dir = self.src_dir.clone();
        self.agent(&format!("CODEBUILD_SRC_DIR={src_dir}"));
        for (id, path) in self.secondary_dirs() {
            self.agent(&format!("CODEBUILD_SRC_DIR_{id}={path}"));
        }
        // A git source's checkout, made on the host before PROVISIONING.
        loaded.source.map_err(PhaseError::Failed)?;

        // The buildspec, read on the host: CodeBuild reads it from the downloaded source.
        self.agent(&format!("YAML location is {}", loaded.shown));
        for line in &loaded.diagnostics {
            self.progress(line);
        }
        let spec = loaded.spec.map_err(PhaseError::Failed)?;
        if spec.batch.is_some() && self.req.batch.is_none() {
            self.progress("warning: the buildspec has a 'batch' section: running it as a single build (as StartBuild does); `localbuild run --batch` runs the batch");
        }

        self.agent("Processing environment variables");
        loaded.secrets.map_err(PhaseError::Failed)?;
        if spec.env.git_credential_helper {
            self.agent(
                "git-credential-helper: not needed locally (the source is already here); skipping",
            );
        }
        let runtimes = self.select_runtimes(&spec).await?;

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
        self.install_runtimes(&spec, &runtimes).await?;
        self.agent(&format!("Moving to directory {src_dir}"));
        self.restore_cache(&spec).await?;
        self.agent("Registering with agent");
        let defined: Vec<_> = spec.phases.defined().collect();
        self.agent(&format!("Phases found in YAML: {}", defined.len()));
        let lines: Vec<String> = defined
            .iter()
            .map(|(n, p)| format!(" {}: {} commands", n.upper(), p.commands.len()))
            .collect();
        for line in lines {
            self.agent(&line);
        }
        Ok(spec)
    }

    /// Read and check the buildspec, resolve its secrets, and work out the environment every
    /// command starts with. Pure host work; its failures are reported in DOWNLOAD_SOURCE.
    pub(super) async fn load(&mut self) -> Loaded {
        let source = self.check_out().await;
        let (path, shown) = self.buildspec_location();
        let mut loaded = Loaded {
            source: Ok(()),
            spec: Err(PhaseContext::default()),
            secrets: Ok(()),
            diagnostics: vec![],
            shown: shown.clone(),
        };
        if let Err(context) = source {
            loaded.source = Err(context);
            self.driver_env = self.environment(None, &[]);
            return loaded;
        }
        let read = match (&self.req.buildspec, &path) {
            (BuildspecSource::Inline(text), _) => Ok(text.clone().into_bytes()),
            (_, Some(path)) => tokio::fs::read(path).await,
            (_, None) => Err(std::io::ErrorKind::NotFound.into()),
        };
        let bytes = match read {
            Ok(b) => b,
            Err(e) => {
                let in_source = !matches!(self.req.buildspec, BuildspecSource::File(_));
                let message = if in_source && e.kind() == std::io::ErrorKind::NotFound {
                    "YAML file does not exist".to_owned()
                } else {
                    format!("stat {shown}: {}", io_reason(&e))
                };
                loaded.spec = Err(PhaseContext::new("YAML_FILE_ERROR", message));
                self.driver_env = self.environment(None, &[]);
                return loaded;
            }
        };
        let shown_path = path.map_or_else(|| shown.clone(), |p| p.display().to_string());
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
        // Every reference is looked up: a failure names them all, in the buildspec's order.
        let mut missing = crate::secrets::Missing::default();
        for (name, parameter) in &spec.env.parameter_store {
            match self.req.secrets.lookup_parameter(parameter) {
                Ok(v) => resolved.push((name.clone(), v)),
                Err(e) => missing.push(name, e),
            }
        }
        for (name, reference) in &spec.env.secrets_manager {
            match self.req.secrets.lookup_secret(reference) {
                Ok(v) => resolved.push((name.clone(), v)),
                Err(e) => missing.push(name, e),
            }
        }
        if let Some((code, message)) = missing.context() {
            loaded.secrets = Err(PhaseContext::new(code, message));
        }
        self.hub.set_masker(Masker::new(
            resolved
                .iter()
                .map(|(_, v)| v.clone())
                .chain(self.req.mask.iter().cloned()),
        ));
        if loaded.secrets.is_err() {
            resolved.clear();
        }
        self.shell = spec.env.shell.clone().unwrap_or_else(|| "/bin/sh".into());
        self.driver_env = self.environment(Some(&spec), &resolved);
        loaded.spec = Ok(spec);
        loaded
    }

    /// A git source: check its version out into a folder the build owns, with
    /// `localbuild_sources::checkout` (CodeBuild's clone: `.git` present, on the branch or
    /// detached, full or shallow). Host work before PROVISIONING; a failure (an unknown
    /// version) is DOWNLOAD_SOURCE's `CLIENT_ERROR`.
    async fn check_out(&mut self) -> Result<(), PhaseContext> {
        if let RequestSource::Zip { file, .. } = &self.req.source {
            return self.unzip(file.clone()).await;
        }
        if let RequestSource::Unresolved { reason, .. } = &self.req.source {
            return Err(PhaseContext::new("CLIENT_ERROR", reason.clone()));
        }
        let RequestSource::Git {
            repo,
            version,
            depth,
            ..
        } = &self.req.source
        else {
            return Ok(());
        };
        let (repo, version, depth) = (repo.clone(), version.clone(), *depth);
        let failed = |message: String| {
            let message = match message.strip_prefix("CLIENT_ERROR: ") {
                Some(m) => m.to_owned(),
                None => message,
            };
            PhaseContext::new("CLIENT_ERROR", message)
        };
        // In the build's own folder (under the history's root), not in /tmp.
        let dir = tempfile::Builder::new()
            .prefix("source-")
            .tempdir_in(&self.place.dir)
            .map_err(|e| failed(format!("cannot make a folder for the git checkout: {e}")))?;
        let dest = dir.path().to_path_buf();
        tracing::debug!(
            "checking out {} {version:?} into {}",
            repo.display(),
            dest.display()
        );
        let checked = tokio::task::spawn_blocking(move || {
            localbuild_sources::checkout(&repo, version.as_deref(), depth, &dest)
        })
        .await;
        match checked {
            Ok(Ok(c)) => {
                self.build.resolved_source_version = Some(c.commit.clone());
                self.build
                    .source_version
                    .get_or_insert_with(|| c.commit.clone());
                self.checkout = Some(Checkout {
                    dir,
                    commit: c.commit,
                });
                Ok(())
            }
            Ok(Err(e)) => Err(failed(e.to_string())),
            Err(e) => Err(failed(format!("the git checkout failed: {e}"))),
        }
    }

    /// A zip source (S3): extract it into a folder the build owns, refusing entries that would
    /// land outside it. A bad zip is DOWNLOAD_SOURCE's `CLIENT_ERROR`.
    async fn unzip(&mut self, file: PathBuf) -> Result<(), PhaseContext> {
        let failed = |m: String| PhaseContext::new("CLIENT_ERROR", m);
        let dir = tempfile::Builder::new()
            .prefix("source-")
            .tempdir_in(&self.place.dir)
            .map_err(|e| failed(format!("cannot make a folder for the source: {e}")))?;
        let dest = dir.path().to_path_buf();
        let shown = file.display().to_string();
        let extracted = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let f = std::fs::File::open(&file).map_err(|e| e.to_string())?;
            let mut archive = zip::ZipArchive::new(f).map_err(|e| e.to_string())?;
            // `extract` refuses names with `..` or absolute paths.
            archive.extract(&dest).map_err(|e| e.to_string())
        })
        .await;
        match extracted {
            Ok(Ok(())) => {
                self.checkout = Some(Checkout {
                    dir,
                    commit: String::new(),
                });
                Ok(())
            }
            Ok(Err(e)) => Err(failed(format!("cannot extract the source {shown}: {e}"))),
            Err(e) => Err(failed(format!("cannot extract the source {shown}: {e}"))),
        }
    }

    /// The primary source's directory on this machine: the directory of a directory source,
    /// the checkout of a git source (once made).
    fn source_dir(&self) -> Option<&Path> {
        match &self.req.source {
            RequestSource::Git { .. }
            | RequestSource::Zip { .. }
            | RequestSource::Unresolved { .. } => self.checkout.as_ref().map(|c| c.dir.path()),
            _ => self.req.source_dir(),
        }
    }

    /// Secondary sources: identifier and directory in the container (decision U11).
    pub(super) fn secondary_dirs(&self) -> Vec<(String, String)> {
        self.req
            .secondary_sources
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (id.clone(), format!("{}/src/s3/{:02}", self.src_root, i + 1)))
            .collect()
    }

    /// Every source: host directory and its directory in the container, primary first.
    pub(super) fn sources(&self) -> Vec<(PathBuf, String)> {
        let mut v: Vec<(PathBuf, String)> = self
            .source_dir()
            .map(|d| (d.to_path_buf(), self.src_dir.clone()))
            .into_iter()
            .collect();
        for ((_, dir), (_, path)) in self.req.secondary_sources.iter().zip(self.secondary_dirs()) {
            v.push((dir.clone(), path));
        }
        v
    }

    /// The buildspec's host path (none for an inline buildspec or a `..` path), and how the
    /// log shows it.
    pub(super) fn buildspec_location(&self) -> (Option<PathBuf>, String) {
        let source = self.source_dir();
        match &self.req.buildspec {
            // A path in the source (a link in it included) never leads out of it: one that
            // would reads as a missing file, as it would in the cloud's copy of the source.
            BuildspecSource::Default => (
                source.and_then(|s| {
                    localbuild_confine::Root::new(s)
                        .confined("buildspec path", "buildspec.yml")
                        .ok()
                }),
                format!("{}/buildspec.yml", self.src_dir),
            ),
            BuildspecSource::InSource(rel) => {
                let rel = rel.trim_start_matches('/');
                (
                    source.and_then(|s| {
                        localbuild_confine::Root::new(s)
                            .confined("buildspec path", rel)
                            .ok()
                    }),
                    format!("{}/{rel}", self.src_dir),
                )
            }
            // CodeBuild keeps an inline buildspec at this path in the container.
            BuildspecSource::Inline(_) => (None, "/codebuild/readonly/buildspec.yml".to_owned()),
            BuildspecSource::File(p) => {
                let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                let shown = source
                    .map(|s| std::path::absolute(s).unwrap_or_else(|_| s.to_path_buf()))
                    .and_then(|src| abs.strip_prefix(&src).ok().map(|r| r.to_path_buf()))
                    .map_or_else(
                        || abs.display().to_string(),
                        |rel| format!("{}/{}", self.src_dir, rel.display()),
                    );
                (Some(abs), shown)
            }
        }
    }

    /// The variables every command starts with, lowest precedence first.
    pub(super) fn environment(
        &mut self,
        spec: Option<&Buildspec>,
        resolved: &[(String, String)],
    ) -> Vec<String> {
        let req = &self.req;
        let region = &req.region;
        let start_ms = (self.build.start_time * 1000.0).round() as i64;
        let (head, git) = match (&req.source, &self.checkout) {
            (RequestSource::Git { location, .. }, Some(c)) => {
                (Some(c.commit.clone()), Some(location))
            }
            (RequestSource::Git { .. }, None) => (None, None),
            _ => (req.source_dir().and_then(source::git_head), None),
        };
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
                    "arn:aws:codebuild:{region}:{}:project/{}",
                    req.account_id, req.project
                ),
            ),
            ("CODEBUILD_SRC_DIR".into(), self.src_dir.clone()),
        ];
        if let Some(member) = &req.batch {
            vars.push((
                "CODEBUILD_BATCH_BUILD_IDENTIFIER".into(),
                member.identifier.clone(),
            ));
            vars.push(("CODEBUILD_BUILD_BATCH_TRIGGERED".into(), "true".into()));
        }
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
            // A git source: the version asked for (its commit when none was).
            let version = match git {
                Some(_) => self.build.source_version.clone().unwrap_or(sha),
                None => sha,
            };
            vars.push(("CODEBUILD_SOURCE_VERSION".into(), version));
        }
        if let Some(location) = git {
            vars.push(("CODEBUILD_SOURCE_REPO_URL".into(), location.clone()));
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

    /// Copy every source into the container (nothing to do with `-m`).
    pub(super) async fn upload_sources(&self) -> Result<(), PhaseError> {
        if self.req.bind_mount {
            return Ok(());
        }
        let container = self.container.clone().unwrap_or_default();
        if self.source_dir().is_none() {
            // No source: the folder still exists, empty, and the commands run in it.
            let prefix = self.src_dir.trim_start_matches('/').to_owned();
            let made = self
                .guard(
                    self.runtime
                        .upload_tar(&container, Box::pin(source::empty_dir_tar(&prefix))),
                )
                .await
                .map_err(PhaseError::Interrupted)?;
            if let Err(e) = made {
                return Err(PhaseError::Failed(PhaseContext::new(
                    "CLIENT_ERROR",
                    format!("cannot make the source folder {}: {e}", self.src_dir),
                )));
            }
        }
        for (i, (dir, path)) in self.sources().into_iter().enumerate() {
            let prefix = path.trim_start_matches('/').to_owned();
            // A fresh checkout holds nothing git ignores.
            let checkout = i == 0 && self.checkout.is_some();
            let files = match self.req.respect_gitignore && !checkout {
                true => self.work_tree_files(&dir).await,
                false => None,
            };
            let tar = match files {
                Some(files) => Box::pin(source::tar_stream_files(dir, prefix, files)),
                None => Box::pin(source::tar_stream(dir, prefix)),
            };
            let uploaded = self
                .guard(self.runtime.upload_tar(&container, tar))
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

    /// The files of `dir` that git does not ignore, when it is a git work tree (`None`: copy
    /// everything). Says so on the progress stream, once per source.
    async fn work_tree_files(&self, dir: &Path) -> Option<Vec<PathBuf>> {
        let d = dir.to_path_buf();
        let listed =
            tokio::task::spawn_blocking(move || localbuild_sources::work_tree_files(&d)).await;
        match listed {
            Ok(Ok(Some(files))) => {
                self.progress(&format!(
                    "skipping files ignored by git in {}; --all-files copies everything",
                    dir.display()
                ));
                Some(files)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                self.progress(&format!(
                    "warning: cannot list the files git ignores in {} ({e}); copying everything",
                    dir.display()
                ));
                None
            }
            Err(_) => None,
        }
    }

    /// Cache restore, in DOWNLOAD_SOURCE after the buildspec is parsed (decision U12).
    pub(super) async fn restore_cache(&mut self, spec: &Buildspec) -> Result<(), PhaseError> {
        self.restore_outputs_cache(spec).await;
        Ok(())
    }

    /// UPLOAD_ARTIFACTS: artifacts, secondary artifacts, reports, cache save.
    pub(super) async fn upload_artifacts(&mut self, spec: &Buildspec) -> Result<(), PhaseError> {
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
}

/// The buildspec and its secrets, read before PROVISIONING and reported in DOWNLOAD_SOURCE.
pub(crate) struct Loaded {
    /// A git source's checkout, or the `CLIENT_ERROR` context.
    pub(crate) source: Result<(), PhaseContext>,
    /// How the log shows the buildspec's path.
    pub(crate) shown: String,
    /// The buildspec, or the `YAML_FILE_ERROR` context.
    pub(crate) spec: Result<Buildspec, PhaseContext>,
    /// Parameter Store / Secrets Manager resolution.
    pub(crate) secrets: Result<(), PhaseContext>,
    /// Rendered errors and warnings, printed as progress (never in the build log).
    pub(crate) diagnostics: Vec<String>,
}
