//! Starting a build through the API's path (StartBuild, RetryBuild, a pipeline's CodeBuild
//! action, StartBuildBatch's request): StartBuild's input decoded into the service's
//! [`Overrides`], the service's project step (`Projects::prepare`) makes the engine's
//! [`BuildRequest`], and this layer lays the CodeBuild fields the record shows over it;
//! [`accept`] hands the request to the build service and keeps the input as the build's
//! document.

use super::*;
use localbuild_service::projects::{Artifacts, Cache, EnvVar, Overrides, PipelineSource};

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

/// Start a build of `project` for a pipeline action, through the same path as `StartBuild`;
/// its ticket.
pub(crate) fn start_for_pipeline(
    ctx: &Ctx,
    project: &str,
    source: PipelineSource,
    env: Vec<EnvVar>,
) -> Result<BuildTicket, ApiError> {
    let input = pipeline_input(project, source, env);
    Ok(accept(ctx, input, None)?.ticket)
}

/// The `StartBuild` (or `StartBuildBatch`) input of a pipeline's CodeBuild action.
pub(crate) fn pipeline_input(
    project: &str,
    source: PipelineSource,
    env: Vec<EnvVar>,
) -> StartBuildInput {
    StartBuildInput {
        project_name: project.to_owned(),
        environment_variables_override: Some(env),
        pipeline: Some(source),
        ..Default::default()
    }
}

/// An accepted build: the engine's request, and the CodeBuild fields laid over its record.
pub(crate) struct Prepared {
    pub(crate) request: BuildRequest,
    pub(crate) overlay: Value,
    pub(crate) limit: Option<usize>,
    /// The stored project.
    pub(crate) document: Map<String, Value>,
}

impl StartBuildInput {
    /// The overrides, as the service's types.
    pub(crate) fn overrides(&self) -> Overrides {
        Overrides {
            source_version: self.source_version.clone(),
            buildspec: self.buildspec_override.clone(),
            environment_variables: self
                .environment_variables_override
                .clone()
                .unwrap_or_default(),
            image: self.image_override.clone(),
            privileged_mode: self.privileged_mode_override,
            timeout_in_minutes: self.timeout_in_minutes_override,
            source_type: self.source_type_override.clone(),
            source_location: self.source_location_override.clone(),
            git_clone_depth: self.git_clone_depth_override,
            artifacts: self.artifacts_override.as_ref().map(Artifacts::from_json),
            secondary_artifacts: self
                .secondary_artifacts_override
                .as_ref()
                .map(|l| l.iter().map(Artifacts::from_json).collect()),
            cache: self.cache_override.as_ref().map(Cache::from_json),
            debug_session: self.debug_session_enabled.unwrap_or(false),
            pipeline: self.pipeline.clone(),
        }
    }
}

/// The project step of a start (the service's), and the CodeBuild fields the record shows:
/// the project's settings with the overrides.
pub(crate) fn prepare(ctx: &Ctx, input: &StartBuildInput) -> Result<Prepared, ApiError> {
    let prepared =
        ctx.state
            .projects
            .prepare(&ctx.region, &input.project_name, &input.overrides())?;
    let document = &prepared.stored.document;
    let project = &prepared.stored.project;
    let request = &prepared.request;
    let mut src = document.get("source").cloned().unwrap_or(json!({}));
    src["type"] = json!(prepared.source_type);
    if let Some(l) = &prepared.source_location {
        src["location"] = json!(l);
    }
    if let Some(b) = &prepared.buildspec {
        src["buildspec"] = json!(b);
    }
    let mut env = document.get("environment").cloned().unwrap_or(json!({}));
    env["image"] = json!(request.image);
    env["privilegedMode"] = json!(request.privileged);
    env["environmentVariables"] = json!(prepared.environment_variables);
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
        "serviceRole": document.get("serviceRole").cloned().unwrap_or(json!("")),
        "secondarySourceVersions": [],
        "queuedTimeoutInMinutes": document.get("queuedTimeoutInMinutes").cloned().unwrap_or(json!(480)),
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
        overlay,
        limit: prepared.project_limit,
        document: prepared.stored.document,
        request: prepared.request,
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
    Ok(answer(ctx, accept(ctx, input, retry_of)?))
}

/// StartBuild's (and RetryBuild's) answer for an accepted build.
pub(super) fn answer(ctx: &Ctx, started: Started) -> Value {
    let overlay = started
        .overlay
        .or_else(|| overlay_of(&ctx.state, started.ticket.id()));
    let build = present(&ctx.state, &started.record, overlay.as_ref());
    json!({ "build": build })
}
