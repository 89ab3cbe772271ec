//! CodeBuild projects in the service: their storage over the history database
//! ([`Projects::create`], [`Projects::update`], [`Projects::delete`], [`Projects::get_many`],
//! [`Projects::list`]), the rules their settings obey ([`checks`]) and the one step from a
//! stored project and a start's [`Overrides`] to the engine's [`BuildRequest`]
//! ([`Projects::prepare`]): source, buildspec, image, privileged mode, timeout, S3 artifacts
//! and cache confined under the S3 root, PARAMETER_STORE / SECRETS_MANAGER variables from the
//! secret store (and masked), the local AWS endpoint and ECR image hooks.
//!
//! A project is stored as CodeBuild's `Project` JSON, the document the client sent with the
//! computed fields laid over it (unknown but valid fields are echoed back), so this module
//! names `serde_json` for that document; the settings a build uses are read from it as the
//! typed [`Project`].

pub mod checks;
mod types;

pub use checks::{buildspec_source, check_name, resolve_source};
pub use localbuild_store::ProjectSort;
pub use types::{
    Artifacts, Cache, EnvVar, Environment, Overrides, PipelineSource, Project, ProjectInput,
    ProjectSource,
};

use checks::{check_secondary_artifacts, check_source_type, s3_artifact, s3_cache};
use localbuild_engine::local_aws::LocalAwsHook;
use localbuild_engine::secrets::SecretsFile;
use localbuild_engine::{BuildRequest, DEFAULT_IMAGE};
use localbuild_store::{DbError, HistoryStore};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Why a project operation or a start's project step failed.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("Project cannot be found: {arn}")]
    NotFound { arn: String },
    #[error("Project already exists: {arn}")]
    AlreadyExists { arn: String },
    /// A value breaks a rule; the message names the field.
    #[error("{0}")]
    InvalidInput(String),
    /// The stored document does not read as a project.
    #[error("the stored project is unreadable: {0}")]
    Unreadable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What the projects' builds are made with: this server's roots, account, secrets and hooks.
#[derive(Clone)]
pub struct ProjectsConfig {
    /// Where sources resolve; `s3_root` holds the S3 artifacts and caches.
    pub roots: localbuild_sources::Roots,
    /// The account of ARNs and of builds.
    pub account_id: String,
    /// `serve --docker-host-access`.
    pub docker_host_access: bool,
    /// The parameter and secret store (the secrets file with every API write applied).
    pub secret_store: localbuild_aws::params::Store,
    /// The secrets file alone, when the store cannot be read.
    pub secrets_file: SecretsFile,
    /// The local AWS endpoint builds reach.
    pub local_aws: Option<LocalAwsHook>,
    /// The local ECR registry builds' images may come from.
    pub ecr: Option<Arc<localbuild_aws::ecr::Ecr>>,
    /// The image of a project that names none.
    pub default_image: String,
}

impl ProjectsConfig {
    /// A config with nothing but the roots and account (no secrets, no hooks).
    pub fn new(
        roots: localbuild_sources::Roots,
        account_id: &str,
        secret_store: localbuild_aws::params::Store,
    ) -> ProjectsConfig {
        ProjectsConfig {
            roots,
            account_id: account_id.to_owned(),
            docker_host_access: false,
            secret_store,
            secrets_file: SecretsFile::default(),
            local_aws: None,
            ecr: None,
            default_image: DEFAULT_IMAGE.to_owned(),
        }
    }
}

/// A stored project: the document as kept and the settings read from it.
#[derive(Debug, Clone)]
pub struct StoredProject {
    pub document: Map<String, Value>,
    pub project: Project,
}

/// A start's project step done: the engine's request and what the record shows of the
/// project's settings with the overrides.
pub struct Prepared {
    pub request: BuildRequest,
    /// The project's `concurrentBuildLimit`.
    pub project_limit: Option<usize>,
    pub stored: StoredProject,
    /// The source type and location the build uses (`CODEPIPELINE` for a pipeline's).
    pub source_type: String,
    pub source_location: Option<String>,
    /// The buildspec as given (project or override).
    pub buildspec: Option<String>,
    /// The variables as given: the project's, then the overrides.
    pub environment_variables: Vec<EnvVar>,
}

/// The projects of one server.
#[derive(Clone)]
pub struct Projects {
    history: HistoryStore,
    config: ProjectsConfig,
}

impl Projects {
    pub fn new(history: HistoryStore, config: ProjectsConfig) -> Projects {
        Projects { history, config }
    }

    pub fn config(&self) -> &ProjectsConfig {
        &self.config
    }

    /// A project's ARN in `region`.
    pub fn arn(&self, region: &str, name: &str) -> String {
        format!(
            "arn:aws:codebuild:{region}:{}:project/{name}",
            self.config.account_id
        )
    }

    /// The not-found error for `name`.
    pub fn not_found(&self, region: &str, name: &str) -> ProjectError {
        ProjectError::NotFound {
            arn: self.arn(region, name),
        }
    }

    /// The stored project `name`.
    pub fn get(&self, region: &str, name: &str) -> Result<StoredProject, ProjectError> {
        let stored = self
            .history
            .db()
            .get_project(name)?
            .ok_or_else(|| self.not_found(region, name))?;
        let unreadable = |e: serde_json::Error| ProjectError::Unreadable(e.to_string());
        let document: Map<String, Value> = serde_json::from_str(&stored).map_err(unreadable)?;
        let project: Project =
            serde_json::from_value(Value::Object(document.clone())).map_err(unreadable)?;
        Ok(StoredProject { document, project })
    }

    /// A project's source location must be well formed and must not name a path on this
    /// machine; it need not exist yet (a build of a location that resolves to nothing fails
    /// in DOWNLOAD_SOURCE, see [`resolve_source`]).
    fn check_location(&self, source: Option<&ProjectSource>) -> Result<(), ProjectError> {
        match source {
            Some(src) if src.kind != "NO_SOURCE" && src.kind != "CODEPIPELINE" => resolve_source(
                &self.config.roots,
                &src.kind,
                src.location.as_deref(),
                None,
                None,
            )
            .map(drop),
            _ => Ok(()),
        }
    }

    /// CreateProject: `input` checked (the tags by the caller, between
    /// [`ProjectInput::check`] and [`ProjectInput::check_rest`]), `document` (the request as
    /// sent) kept with the computed fields; the stored document.
    pub fn create(
        &self,
        region: &str,
        input: &ProjectInput,
        document: Map<String, Value>,
    ) -> Result<Value, ProjectError> {
        self.check_location(input.source.as_ref())?;
        let at = crate::record::now();
        let project = self.overlay(region, document, at, at);
        match self
            .history
            .db()
            .create_project(&input.name, &project.to_string(), at)
        {
            Ok(()) => Ok(project),
            Err(DbError::AlreadyExists { .. }) => Err(ProjectError::AlreadyExists {
                arn: self.arn(region, &input.name),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// UpdateProject: the fields sent replace the stored ones; the stored document.
    pub fn update(
        &self,
        region: &str,
        input: &ProjectInput,
        document: Map<String, Value>,
    ) -> Result<Value, ProjectError> {
        self.check_location(input.source.as_ref())?;
        let db = self.history.db();
        let stored = db
            .get_project(&input.name)?
            .ok_or_else(|| self.not_found(region, &input.name))?;
        let Ok(Value::Object(mut merged)) = serde_json::from_str::<Value>(&stored) else {
            return Err(ProjectError::Unreadable(input.name.clone()));
        };
        let created = merged.get("created").and_then(Value::as_f64).unwrap_or(0.0);
        merged.extend(document);
        let at = crate::record::now();
        let project = self.overlay(region, merged, created, at);
        db.update_project(&input.name, &project.to_string(), at)?;
        Ok(project)
    }

    /// DeleteProject (deleting a project that does not exist is not an error).
    pub fn delete(&self, name: &str) -> Result<(), ProjectError> {
        self.history.db().delete_project(name)?;
        Ok(())
    }

    /// The stored documents of those of `names` that exist: (name, document).
    pub fn get_many(&self, names: &[String]) -> Result<Vec<(String, Value)>, ProjectError> {
        Ok(self
            .history
            .db()
            .get_projects(names)?
            .into_iter()
            .filter_map(|(n, j)| Some((n, serde_json::from_str(&j).ok()?)))
            .collect())
    }

    /// Whether project `name` exists.
    pub fn exists(&self, name: &str) -> Result<bool, ProjectError> {
        Ok(self.history.db().get_project(name)?.is_some())
    }

    /// Every project's name, sorted.
    pub fn list(&self, sort: ProjectSort, descending: bool) -> Result<Vec<String>, ProjectError> {
        Ok(self.history.db().list_projects(sort, descending)?)
    }

    /// The computed fields of a stored project over what the client sent.
    fn overlay(
        &self,
        region: &str,
        mut p: Map<String, Value>,
        created: f64,
        modified: f64,
    ) -> Value {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        p.insert("arn".into(), json!(self.arn(region, &name)));
        p.insert("created".into(), json!(created));
        p.insert("lastModified".into(), json!(modified));
        p.entry("timeoutInMinutes").or_insert(json!(60));
        p.entry("queuedTimeoutInMinutes").or_insert(json!(480));
        p.entry("secondarySources").or_insert(json!([]));
        p.entry("secondaryArtifacts").or_insert(json!([]));
        p.entry("secondarySourceVersions").or_insert(json!([]));
        p.entry("cache").or_insert(json!({"type": "NO_CACHE"}));
        p.entry("encryptionKey").or_insert(json!(format!(
            "arn:aws:kms:{region}:{}:alias/aws/s3",
            self.config.account_id
        )));
        p.entry("badge").or_insert(json!({"badgeEnabled": false}));
        p.entry("logsConfig").or_insert(json!({
            "cloudWatchLogs": {"status": "ENABLED"},
            "s3Logs": {"status": "DISABLED", "encryptionDisabled": false}
        }));
        p.entry("projectVisibility").or_insert(json!("PRIVATE"));
        if let Some(Value::Object(env)) = p.get_mut("environment") {
            env.entry("environmentVariables").or_insert(json!([]));
            env.entry("privilegedMode").or_insert(json!(false));
            env.entry("imagePullCredentialsType")
                .or_insert(json!("CODEBUILD"));
        }
        if let Some(Value::Object(src)) = p.get_mut("source") {
            src.entry("insecureSsl").or_insert(json!(false));
        }
        Value::Object(p)
    }

    /// The one step from project `name` and a start's overrides to the engine's request
    /// (checked), in `region`.
    pub fn prepare(
        &self,
        region: &str,
        name: &str,
        o: &Overrides,
    ) -> Result<Prepared, ProjectError> {
        let stored = self.get(region, name)?;
        let project = &stored.project;
        let config = &self.config;
        let kind = o
            .source_type
            .clone()
            .unwrap_or_else(|| project.source.kind.clone());
        check_source_type(&kind)?;
        let location = o
            .source_location
            .clone()
            .or_else(|| project.source.location.clone());
        let depth = o.git_clone_depth.or(project.source.git_clone_depth);
        let (kind, location, source) = match &o.pipeline {
            Some(p) => (
                "CODEPIPELINE".to_owned(),
                Some(p.location.clone()),
                localbuild_engine::Source::Pipeline {
                    dir: p.dir.clone(),
                    location: p.location.clone(),
                },
            ),
            None => {
                let source = resolve_source(
                    &config.roots,
                    &kind,
                    location.as_deref(),
                    o.source_version.as_deref(),
                    depth,
                )?;
                (kind, location, source)
            }
        };
        let buildspec = o
            .buildspec
            .clone()
            .or_else(|| project.source.buildspec.clone());
        let mut request = BuildRequest::new(name, source);
        request.buildspec = buildspec_source(buildspec.as_deref());
        request.image = o
            .image
            .clone()
            .or_else(|| Some(project.environment.image.clone()))
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| config.default_image.clone());
        request.privileged = o
            .privileged_mode
            .or(project.environment.privileged_mode)
            .unwrap_or(false);
        request.docker_host_access = config.docker_host_access;
        request.account_id = config.account_id.clone();
        let minutes = match o.timeout_in_minutes {
            Some(t) => checks::check_timeout_override(t)?,
            None => project.timeout_in_minutes.unwrap_or(60),
        };
        request.timeout = Duration::from_secs(minutes * 60);
        request.debug.session = o.debug_session;
        request.region = region.to_owned();
        if let Some(p) = &o.pipeline {
            request.initiator = format!("codepipeline/{}", p.pipeline);
            request.secondary_sources = p.secondary.clone();
        }
        let s3_root = &config.roots.s3_root;
        // Artifacts of type S3 (a pipeline's build hands its artifacts to the pipeline
        // instead); an override replaces the project's setting as a whole.
        if o.pipeline.is_none() {
            // A project made for a pipeline hands its artifacts to the pipeline: started
            // directly, it needs somewhere else to put them (CodeBuild's own message).
            let for_pipeline =
                |a: Option<&Artifacts>| a.and_then(|a| a.kind.as_deref()) == Some("CODEPIPELINE");
            if for_pipeline(o.artifacts.as_ref())
                || (o.artifacts.is_none() && for_pipeline(project.artifacts.as_ref()))
            {
                return Err(ProjectError::InvalidInput(
                    "ArtifactsOverride must be set when using artifacts type CodePipelines".into(),
                ));
            }
            let (field, artifacts) = match &o.artifacts {
                Some(a) => ("artifactsOverride", Some(a)),
                None => ("artifacts", project.artifacts.as_ref()),
            };
            if let Some(a) = artifacts {
                request.s3_artifact = s3_artifact(s3_root, field, name, a)?;
            }
            let (field, secondary) = match &o.secondary_artifacts {
                Some(list) => ("secondaryArtifactsOverride", list.as_slice()),
                None => (
                    "secondaryArtifacts",
                    project.secondary_artifacts.as_deref().unwrap_or_default(),
                ),
            };
            check_secondary_artifacts(field, secondary)?;
            for a in secondary {
                let id = a.artifact_identifier.as_deref().unwrap_or_default();
                if let Some(s3) = s3_artifact(s3_root, field, id, a)? {
                    request.s3_secondary_artifacts.push((id.to_owned(), s3));
                }
            }
        }
        let (field, cache) = match &o.cache {
            Some(c) => ("cacheOverride", Some(c)),
            None => ("cache", project.cache.as_ref()),
        };
        if let Some(c) = cache {
            request.s3_cache = s3_cache(s3_root, field, c)?;
        }
        // The one parameter and secret store: the secrets file with every API write applied.
        let secrets = config
            .secret_store
            .snapshot()
            .unwrap_or_else(|_| config.secrets_file.clone());
        request.secrets = secrets.clone();
        request.local_aws = config.local_aws.clone();
        if let Some(ecr) = &config.ecr {
            request.image_source = Some(localbuild_aws::ecr::EcrImages::hook(ecr.clone(), region));
        }
        let mut vars = project.environment.environment_variables.clone();
        vars.extend(o.environment_variables.iter().cloned());
        for v in &vars {
            let value = resolve_variable(&secrets, v)?;
            if v.kind.as_deref().is_some_and(|k| k != "PLAINTEXT") {
                request.mask.push(value.clone());
            }
            request.env_overrides.push((v.name.clone(), value));
        }
        request
            .check()
            .map_err(|e| ProjectError::InvalidInput(e.to_string()))?;
        Ok(Prepared {
            request,
            project_limit: project
                .concurrent_build_limit
                .and_then(|l| usize::try_from(l).ok()),
            source_type: kind,
            source_location: location,
            buildspec,
            environment_variables: vars,
            stored,
        })
    }
}

/// A variable's value: PLAINTEXT as given, PARAMETER_STORE and SECRETS_MANAGER from `secrets`.
pub fn resolve_variable(secrets: &SecretsFile, v: &EnvVar) -> Result<String, ProjectError> {
    match v.kind.as_deref().unwrap_or("PLAINTEXT") {
        "PLAINTEXT" => Ok(v.value.clone()),
        "PARAMETER_STORE" => secrets
            .parameter(&v.value)
            .map_err(ProjectError::InvalidInput),
        "SECRETS_MANAGER" => {
            let r = localbuild_engine::buildspec::parse_secret_ref(&v.value).ok_or_else(|| {
                ProjectError::InvalidInput(format!(
                    "Invalid Secrets Manager reference for {}: {}",
                    v.name, v.value
                ))
            })?;
            secrets.secret(&r).map_err(ProjectError::InvalidInput)
        }
        other => Err(ProjectError::InvalidInput(format!(
            "Invalid environment variable type {other} for {}: PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER",
            v.name
        ))),
    }
}

#[cfg(test)]
mod tests;
