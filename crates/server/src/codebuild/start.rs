//! Starting a build through the API's path (StartBuild, RetryBuild, a pipeline's CodeBuild
//! action, StartBuildBatch's request): the stored project and the overrides become the
//! engine's [`BuildRequest`] (source, buildspec, image, variables, S3 artifacts) and the
//! CodeBuild fields the record shows; [`accept`] hands the request to the build service and
//! keeps the input as the build's document.

use super::projects::{check_artifacts, check_cache, check_secondary_artifacts};
use super::*;

/// The engine's S3 artifact for artifacts whose `type` is S3 (`default_name`: the object's
/// name when `name` is not given: the project's name, a secondary artifact's identifier).
pub(super) fn s3_artifact(
    state: &AppState,
    field: &str,
    default_name: &str,
    a: &Value,
) -> Result<Option<localbuild_engine::S3Artifact>, ApiError> {
    let get = |k: &str| a.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    check_artifacts(field, a)?;
    if get("type") != Some("S3") {
        return Ok(None);
    }
    let bucket = get("location").unwrap_or_default();
    let bucket_dir = localbuild_confine::component("bucket", bucket)
        .and_then(|b| localbuild_confine::Root::new(&state.roots.s3_root).sub("bucket", b))
        .map_err(|e| ApiError::InvalidInput(format!("Invalid {field}: {e}")))?;
    let flag = |k: &str| a.get(k).and_then(Value::as_bool).unwrap_or(false);
    Ok(Some(localbuild_engine::S3Artifact {
        bucket_dir: bucket_dir.path().to_path_buf(),
        bucket: bucket.to_owned(),
        path: get("path").unwrap_or("").trim_matches('/').to_owned(),
        build_id_namespace: get("namespaceType") == Some("BUILD_ID"),
        name: get("name")
            .unwrap_or(default_name)
            .trim_matches('/')
            .to_owned(),
        override_name: flag("overrideArtifactName"),
        zip: get("packaging") == Some("ZIP"),
        encryption_disabled: flag("encryptionDisabled"),
    }))
}

/// The engine's S3 cache for a cache of type S3 (checked with [`check_cache`]).
pub(super) fn s3_cache(
    state: &AppState,
    field: &str,
    c: &Value,
) -> Result<Option<localbuild_engine::S3Cache>, ApiError> {
    check_cache(field, c)?;
    if c.get("type").and_then(Value::as_str) != Some("S3") {
        return Ok(None);
    }
    let location = c
        .get("location")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim_end_matches('/');
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    let invalid = |e: localbuild_confine::Refused| {
        ApiError::InvalidInput(format!("Invalid {field}: location: {e}"))
    };
    let root = localbuild_confine::Root::new(&state.roots.s3_root);
    let bucket_dir = localbuild_confine::component("bucket", bucket)
        .and_then(|b| root.sub("bucket", b))
        .map_err(invalid)?;
    let dir = if prefix.is_empty() {
        bucket_dir.path().to_path_buf()
    } else {
        bucket_dir.confined("location", prefix).map_err(invalid)?
    };
    Ok(Some(localbuild_engine::S3Cache {
        dir,
        location: location.to_owned(),
    }))
}

/// `StartBuild`'s input, as far as localbuild uses it.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartBuildInput {
    pub(crate) project_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) source_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    buildspec_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment_variables_override: Option<Vec<EnvVar>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    privileged_mode_override: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_in_minutes_override: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_type_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_location_override: Option<String>,
    git_clone_depth_override: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compute_type_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment_type_override: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifacts_override: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    secondary_artifacts_override: Option<Vec<Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_override: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) idempotency_token: Option<String>,
    /// Session debugging: `codebuild-breakpoint` pauses the build until `codebuild-resume`
    /// runs in `localbuild attach`'s shell (the record's `debugSession`).
    #[serde(skip_serializing_if = "Option::is_none")]
    debug_session_enabled: Option<bool>,
    /// A build started by a pipeline's CodeBuild action: its input artifact, unpacked.
    #[serde(skip)]
    pipeline: Option<PipelineSource>,
}

/// The source of a build a pipeline starts (source type `CODEPIPELINE`).
#[derive(Debug, Clone, Default)]
pub(crate) struct PipelineSource {
    /// The primary input artifact, unpacked.
    pub dir: std::path::PathBuf,
    /// Where the primary input artifact is kept (`arn:aws:s3:::BUCKET/KEY`): the record's
    /// `source.location`.
    pub location: String,
    /// The other input artifacts, unpacked: (artifact name, folder).
    pub secondary: Vec<(String, std::path::PathBuf)>,
    /// The pipeline's name: the build's initiator is `codepipeline/<name>`.
    pub pipeline: String,
}

/// Start a build of `project` for a pipeline action, through the same path as `StartBuild`;
/// its ticket.
pub(crate) fn start_for_pipeline(
    ctx: &Ctx,
    project: &str,
    source: PipelineSource,
    env: Vec<(String, String, Option<String>)>,
) -> Result<BuildTicket, ApiError> {
    let input = pipeline_input(project, source, env);
    Ok(accept(ctx, input, None)?.ticket)
}

/// The `StartBuild` (or `StartBuildBatch`) input of a pipeline's CodeBuild action.
pub(crate) fn pipeline_input(
    project: &str,
    source: PipelineSource,
    env: Vec<(String, String, Option<String>)>,
) -> StartBuildInput {
    StartBuildInput {
        project_name: project.to_owned(),
        environment_variables_override: Some(
            env.into_iter()
                .map(|(name, value, kind)| EnvVar { name, value, kind })
                .collect(),
        ),
        pipeline: Some(source),
        ..Default::default()
    }
}

/// Where a build's source comes from, for the engine: the one place that maps CodeBuild's
/// source types and locations to this machine (`localbuild_sources::resolve`). A malformed
/// location, or one naming a path on this machine, is an `InvalidInputException`; a
/// well-formed one that resolves to nothing is accepted, as the cloud accepts it, as a
/// [`Source::Unresolved`](localbuild_engine::Source::Unresolved): the build fails in
/// DOWNLOAD_SOURCE with `CLIENT_ERROR` and the message that says where it looked.
pub(super) fn resolve_source(
    roots: &localbuild_sources::Roots,
    kind: &str,
    location: Option<&str>,
    version: Option<&str>,
    depth: Option<u32>,
) -> Result<localbuild_engine::Source, ApiError> {
    use localbuild_sources::{Resolved, SourceKind};
    let parsed: SourceKind = kind
        .parse()
        .map_err(|e: localbuild_sources::SourceError| ApiError::InvalidInput(e.to_string()))?;
    if parsed == SourceKind::NoSource {
        return Ok(localbuild_engine::Source::None);
    }
    let location = location.filter(|l| !l.is_empty()).ok_or_else(|| {
        ApiError::InvalidInput(format!(
            "Source location is required for source type {kind}"
        ))
    })?;
    match localbuild_sources::resolve(parsed, location, roots) {
        Ok(Resolved::Git { repo }) => Ok(localbuild_engine::Source::Git {
            repo,
            version: version.map(str::to_owned),
            depth,
            kind: kind.to_owned(),
            location: location.to_owned(),
        }),
        Ok(Resolved::Dir(dir)) => Ok(localbuild_engine::Source::Dir(dir)),
        Ok(Resolved::Zip(file)) => Ok(localbuild_engine::Source::Zip {
            file,
            location: location.to_owned(),
        }),
        Ok(Resolved::None) => Ok(localbuild_engine::Source::None),
        Err(e @ localbuild_sources::SourceError::Unresolved { .. }) => {
            Ok(localbuild_engine::Source::Unresolved {
                kind: kind.to_owned(),
                location: location.to_owned(),
                reason: e.to_string(),
            })
        }
        Err(e) => Err(ApiError::InvalidInput(e.to_string())),
    }
}

/// A buildspec value: inline YAML (it contains a newline or starts with `version`) or a path
/// in the source.
pub fn buildspec_source(text: Option<&str>) -> BuildspecSource {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => BuildspecSource::Default,
        Some(_)
            if text.is_some_and(|t| t.contains('\n') || t.trim_start().starts_with("version")) =>
        {
            BuildspecSource::Inline(text.unwrap_or_default().to_owned())
        }
        Some(t) => BuildspecSource::InSource(t.to_owned()),
    }
}

/// An accepted build: the engine's request, and the CodeBuild fields laid over its record.
pub(crate) struct Prepared {
    pub(crate) request: BuildRequest,
    pub(crate) overlay: Value,
    pub(crate) limit: Option<usize>,
}

pub(crate) fn prepare(ctx: &Ctx, input: &StartBuildInput) -> Result<Prepared, ApiError> {
    let state = &ctx.state;
    let stored = state
        .history
        .db()
        .get_project(&input.project_name)
        .map_err(ApiError::db)?
        .ok_or_else(|| project_not_found(ctx, &input.project_name))?;
    let project_json: Value = serde_json::from_str(&stored)
        .map_err(|e| ApiError::Service(format!("the stored project is unreadable: {e}")))?;
    let project: StoredProject = serde_json::from_value(project_json.clone())
        .map_err(|e| ApiError::Service(format!("the stored project is unreadable: {e}")))?;
    let kind = input
        .source_type_override
        .clone()
        .unwrap_or(project.source.kind.clone());
    check_source_type(&kind)?;
    let location = input
        .source_location_override
        .clone()
        .or(project.source.location.clone());
    let depth = input
        .git_clone_depth_override
        .or(project.source.git_clone_depth);
    let (kind, location) = match &input.pipeline {
        Some(p) => ("CODEPIPELINE".to_owned(), Some(p.location.clone())),
        None => (kind, location),
    };
    let source = match &input.pipeline {
        Some(p) => localbuild_engine::Source::Pipeline {
            dir: p.dir.clone(),
            location: p.location.clone(),
        },
        None => resolve_source(
            &state.roots,
            &kind,
            location.as_deref(),
            input.source_version.as_deref(),
            depth,
        )?,
    };
    let buildspec_text = input
        .buildspec_override
        .clone()
        .or(project.source.buildspec.clone());
    let mut request = BuildRequest::new(&input.project_name, source);
    request.buildspec = buildspec_source(buildspec_text.as_deref());
    request.image = input
        .image_override
        .clone()
        .or(Some(project.environment.image.clone()))
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_owned());
    request.privileged = input
        .privileged_mode_override
        .or(project.environment.privileged_mode)
        .unwrap_or(false);
    request.docker_host_access = state.docker_host_access;
    request.account_id = state.account_id.clone();
    let minutes = match input.timeout_in_minutes_override {
        Some(t) if !(5..=2160).contains(&t) => {
            return Err(ApiError::InvalidInput(format!(
                "Invalid timeoutInMinutesOverride: {t}. It must be between 5 and 2160"
            )));
        }
        Some(t) => t as u64,
        None => project.timeout_in_minutes.unwrap_or(60),
    };
    request.timeout = Duration::from_secs(minutes * 60);
    request.debug.session = input.debug_session_enabled.unwrap_or(false);
    request.region = ctx.region.clone();
    if let Some(p) = &input.pipeline {
        request.initiator = format!("codepipeline/{}", p.pipeline);
        request.secondary_sources = p.secondary.clone();
    }
    // Artifacts of type S3 (a pipeline's build hands its artifacts to the pipeline instead);
    // an override replaces the project's setting as a whole.
    if input.pipeline.is_none() {
        let (field, artifacts) = match &input.artifacts_override {
            Some(a) => ("artifactsOverride", Some(a)),
            None => ("artifacts", project_json.get("artifacts")),
        };
        if let Some(a) = artifacts {
            request.s3_artifact = s3_artifact(state, field, &input.project_name, a)?;
        }
        let (field, secondary) = match &input.secondary_artifacts_override {
            Some(list) => ("secondaryArtifactsOverride", list.clone()),
            None => (
                "secondaryArtifacts",
                project_json
                    .get("secondaryArtifacts")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            ),
        };
        check_secondary_artifacts(field, &secondary)?;
        for a in &secondary {
            let id = a["artifactIdentifier"].as_str().unwrap_or_default();
            if let Some(s3) = s3_artifact(state, field, id, a)? {
                request.s3_secondary_artifacts.push((id.to_owned(), s3));
            }
        }
    }
    let (field, cache) = match &input.cache_override {
        Some(c) => ("cacheOverride", Some(c)),
        None => ("cache", project_json.get("cache")),
    };
    if let Some(c) = cache {
        request.s3_cache = s3_cache(state, field, c)?;
    }
    // The one parameter and secret store: the secrets file with every API write applied.
    let secrets = state
        .aws
        .store
        .snapshot()
        .unwrap_or_else(|_| state.secrets.clone());
    request.secrets = secrets.clone();
    request.local_aws = Some(localbuild_engine::local_aws::LocalAwsHook(Arc::new(
        crate::aws::endpoint::BuildEndpoints {
            aws: state.aws.clone(),
        },
    )));
    if let Some(ecr) = &state.aws.ecr {
        request.image_source = Some(localbuild_engine::request::ImageSourceHook(Arc::new(
            localbuild_aws::ecr::EcrImages {
                ecr: ecr.clone(),
                region: ctx.region.clone(),
            },
        )));
    }
    let mut vars = project.environment.environment_variables.clone();
    vars.extend(
        input
            .environment_variables_override
            .iter()
            .flatten()
            .cloned(),
    );
    for v in &vars {
        let value = match v.kind.as_deref().unwrap_or("PLAINTEXT") {
            "PLAINTEXT" => v.value.clone(),
            "PARAMETER_STORE" => secrets
                .parameter(&v.value)
                .map_err(ApiError::InvalidInput)?,
            "SECRETS_MANAGER" => {
                let r =
                    localbuild_engine::buildspec::parse_secret_ref(&v.value).ok_or_else(|| {
                        ApiError::InvalidInput(format!(
                            "Invalid Secrets Manager reference for {}: {}",
                            v.name, v.value
                        ))
                    })?;
                secrets.secret(&r).map_err(ApiError::InvalidInput)?
            }
            other => {
                return Err(ApiError::InvalidInput(format!(
                    "Invalid environment variable type {other} for {}: PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER",
                    v.name
                )));
            }
        };
        if v.kind.as_deref().is_some_and(|k| k != "PLAINTEXT") {
            request.mask.push(value.clone());
        }
        request.env_overrides.push((v.name.clone(), value));
    }
    request
        .check()
        .map_err(|e| ApiError::InvalidInput(e.to_string()))?;

    // What the record shows: the project's settings with the overrides.
    let mut src = project_json.get("source").cloned().unwrap_or(json!({}));
    src["type"] = json!(kind);
    if let Some(l) = &location {
        src["location"] = json!(l);
    }
    if let Some(b) = &buildspec_text {
        src["buildspec"] = json!(b);
    }
    let mut env = project_json
        .get("environment")
        .cloned()
        .unwrap_or(json!({}));
    env["image"] = json!(request.image);
    env["privilegedMode"] = json!(request.privileged);
    env["environmentVariables"] = json!(vars);
    if let Some(c) = &input.compute_type_override {
        env["computeType"] = json!(c);
    }
    if let Some(t) = &input.environment_type_override {
        env["type"] = json!(t);
    }
    if env.get("imagePullCredentialsType").is_none() {
        env["imagePullCredentialsType"] = json!(
            project
                .environment
                .image_pull_credentials_type
                .clone()
                .unwrap_or_else(|| "CODEBUILD".to_owned())
        );
    }
    let mut overlay = json!({
        "source": src,
        "environment": env,
        "serviceRole": project_json.get("serviceRole").cloned().unwrap_or(json!("")),
        "secondarySourceVersions": [],
        "queuedTimeoutInMinutes": project_json.get("queuedTimeoutInMinutes").cloned().unwrap_or(json!(480)),
    });
    if let Some(v) = &input.source_version {
        overlay["sourceVersion"] = json!(v);
    }
    if let Some(p) = input.pipeline.as_ref().filter(|p| !p.secondary.is_empty()) {
        let sources: Vec<Value> = p
            .secondary
            .iter()
            .map(|(name, _)| json!({ "type": "CODEPIPELINE", "sourceIdentifier": name }))
            .collect();
        overlay["secondarySources"] = json!(sources);
    }
    Ok(Prepared {
        request,
        overlay,
        limit: project
            .concurrent_build_limit
            .and_then(|l| usize::try_from(l).ok()),
    })
}

/// A build accepted through the CodeBuild API's path: its ticket and record, and the
/// CodeBuild fields laid over the record (`None` for a build an idempotency token named: they
/// are in its document).
pub(crate) struct Started {
    pub(crate) ticket: BuildTicket,
    pub(crate) record: Build,
    pub(crate) overlay: Option<Value>,
}

/// Accept a build (StartBuild, RetryBuild, a pipeline's CodeBuild action): project and
/// overrides to a request, then the build service; the input is kept as the build's document.
pub(crate) fn accept(
    ctx: &Ctx,
    input: StartBuildInput,
    retry_of: Option<&str>,
) -> Result<Started, ApiError> {
    let state = &ctx.state;
    check_name(&input.project_name).map_err(|_| project_not_found(ctx, &input.project_name))?;
    let token = input
        .idempotency_token
        .clone()
        .filter(|_| retry_of.is_none());
    if let Some(known) = token.as_deref().and_then(|t| state.builds.by_token(t)) {
        return Ok(Started {
            ticket: known.ticket,
            record: known.record,
            overlay: None,
        });
    }
    let prepared = prepare(ctx, &input)?;
    let overlay = prepared.overlay;
    let start = StartBuild {
        request: prepared.request,
        project_limit: prepared.limit,
        idempotency_token: token,
    };
    let accepted = state.builds.start(start, |record: &Build| {
        let doc = json!({"input": input, "overlay": overlay, "retryOf": retry_of});
        state
            .history
            .db()
            .put_doc(BUILD_DOC, &record.id, &doc.to_string())
            .map_err(ApiError::db)
    })?;
    Ok(Started {
        ticket: accepted.ticket,
        record: accepted.record,
        overlay: Some(overlay),
    })
}

pub(super) fn start_build(
    ctx: &Ctx,
    input: StartBuildInput,
    retry_of: Option<&str>,
) -> Result<Value, ApiError> {
    let started = accept(ctx, input, retry_of)?;
    let overlay = started
        .overlay
        .or_else(|| overlay_of(&ctx.state, started.ticket.id()));
    let build = present(&ctx.state, &started.record, overlay.as_ref());
    Ok(json!({ "build": build }))
}
