//! CodeBuild's operations over the history database and the engine.
//!
//! Projects are kept as CodeBuild's `Project` JSON: the object as the client sent it (unknown
//! but valid fields are echoed back) with the computed fields laid over it. A build is
//! accepted by claiming its number, recorded QUEUED, and handed to the engine when the
//! [`Queue`](crate::queue::Queue) has a slot for it; while it runs, its handle is the truth,
//! afterwards the database. Every build leaves a document (`codebuild.build-input`) with the
//! `StartBuild` input and the CodeBuild fields the engine's record does not carry (the
//! project's source and environment, `serviceRole`, `sourceVersion`), laid over the record in
//! every response by [`present`], which also drops localbuild's `logs.localPath` and points
//! `logs.deepLink` at this server.

use crate::error::ApiError;
use crate::protocol::{json, parse, unknown};
use crate::{AppState, Ctx, Live, QueuedBuild};
use localbuild_engine::record::{Build, BuildPhase, PhaseType, Status, whole_seconds};
use localbuild_engine::request::check_project_name;
use localbuild_engine::store::Store;
use localbuild_engine::{ACCOUNT_ID, BuildRequest, BuildspecSource, DEFAULT_IMAGE};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The document kind holding each build's `StartBuild` input and overlay.
pub(crate) const BUILD_DOC: &str = "codebuild.build-input";
/// How long an `idempotencyToken` names the same build.
pub(crate) const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(5 * 60);
/// How long StopBuild waits for the build to end.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(30);

/// Run one CodeBuild operation.
pub async fn call(ctx: &Ctx, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "CreateProject" => create_project(ctx, body),
        "UpdateProject" => update_project(ctx, body),
        "DeleteProject" => delete_project(ctx, body),
        "BatchGetProjects" => batch_get_projects(ctx, body),
        "ListProjects" => list_projects(ctx, body),
        "StartBuild" => start_build(ctx, parse(body)?, None).await,
        "BatchGetBuilds" => batch_get_builds(ctx, body),
        "ListBuilds" => list_builds(ctx, body, false),
        "ListBuildsForProject" => list_builds(ctx, body, true),
        "StopBuild" => stop_build(ctx, body).await,
        "RetryBuild" => retry_build(ctx, body).await,
        "BatchDeleteBuilds" => batch_delete_builds(ctx, body),
        "StartBuildBatch" => crate::batch::start_build_batch(ctx, body).await,
        "BatchGetBuildBatches" => crate::batch::batch_get_build_batches(ctx, body),
        "ListBuildBatches" => crate::batch::list_build_batches(ctx, body, false),
        "ListBuildBatchesForProject" => crate::batch::list_build_batches(ctx, body, true),
        "StopBuildBatch" => crate::batch::stop_build_batch(ctx, body).await,
        "RetryBuildBatch" => crate::batch::retry_build_batch(ctx, body).await,
        "DeleteBuildBatch" => crate::batch::delete_build_batch(ctx, body),
        _ => Err(unknown(crate::protocol::CODEBUILD, op)),
    }
}

/// The model gives these id lists a minimum of one item: an empty one is left out.
pub(crate) fn without_empty(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|_, x| x.as_array().is_none_or(|a| !a.is_empty()));
    }
    v
}

pub(crate) fn now() -> f64 {
    localbuild_engine::record::epoch_now()
}

pub(crate) fn project_arn(region: &str, name: &str) -> String {
    format!("arn:aws:codebuild:{region}:{ACCOUNT_ID}:project/{name}")
}

// ---------------------------------------------------------------------------------------
// Projects

/// `ProjectSource` as far as localbuild reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectSource {
    #[serde(rename = "type")]
    kind: String,
    location: Option<String>,
    buildspec: Option<String>,
    git_clone_depth: Option<u32>,
    source_identifier: Option<String>,
}

/// `EnvironmentVariable`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EnvVar {
    name: String,
    value: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
}

/// `ProjectEnvironment` as far as localbuild reads it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ProjectEnvironment {
    image: String,
    environment_variables: Vec<EnvVar>,
    privileged_mode: Option<bool>,
    image_pull_credentials_type: Option<String>,
}

/// The checked fields of CreateProject / UpdateProject (the rest is kept as sent).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectInput {
    name: String,
    source: Option<ProjectSource>,
    artifacts: Option<Value>,
    environment: Option<ProjectEnvironment>,
    service_role: Option<String>,
    secondary_sources: Option<Vec<ProjectSource>>,
    secondary_artifacts: Option<Vec<Value>>,
    timeout_in_minutes: Option<i64>,
    queued_timeout_in_minutes: Option<i64>,
    concurrent_build_limit: Option<i64>,
    tags: Option<Vec<crate::tags::Tag>>,
}

/// A project as stored.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredProject {
    #[serde(default)]
    source: ProjectSource,
    #[serde(default)]
    environment: ProjectEnvironment,
    timeout_in_minutes: Option<u64>,
    concurrent_build_limit: Option<i64>,
}

pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    if name.len() > 150 || check_project_name(name).is_err() {
        return Err(ApiError::InvalidInput(format!(
            "Invalid project name: {name}. The name must be 2 to 150 characters: letters, digits, - and _, starting with a letter or digit"
        )));
    }
    Ok(())
}

/// A project's `artifacts`: CodeBuild's types, and for S3 a bucket name by S3's rule and a
/// relative `path` and `name` (they become a key, so a folder under the S3 root).
fn check_artifacts(a: &Value) -> Result<(), ApiError> {
    let field = |k: &str| a.get(k).and_then(Value::as_str);
    let invalid = |m: String| Err(ApiError::InvalidInput(format!("Invalid artifacts: {m}")));
    match field("type") {
        Some("NO_ARTIFACTS" | "CODEPIPELINE") => return Ok(()),
        Some("S3") => {}
        other => {
            return invalid(format!(
                "type {other:?} is not one of NO_ARTIFACTS, S3, CODEPIPELINE"
            ));
        }
    }
    let Some(bucket) = field("location").filter(|l| !l.is_empty()) else {
        return invalid("location (the bucket) is required for type S3".to_owned());
    };
    if let Err(e) = localbuild_aws::s3::check_bucket_name(bucket) {
        return invalid(format!("location: {e}"));
    }
    for key in ["path", "name"] {
        if let Some(v) = field(key).filter(|v| !v.is_empty())
            && let Err(e) = localbuild_confine::relative(key, v.trim_matches('/'))
        {
            return invalid(format!("{key}: {e}"));
        }
    }
    if let Some(ns) = field("namespaceType").filter(|n| !matches!(*n, "NONE" | "BUILD_ID")) {
        return invalid(format!("namespaceType {ns:?} is not one of NONE, BUILD_ID"));
    }
    if let Some(p) = field("packaging").filter(|p| !matches!(*p, "NONE" | "ZIP")) {
        return invalid(format!("packaging {p:?} is not one of NONE, ZIP"));
    }
    Ok(())
}

/// The engine's S3 artifact for a project whose `artifacts.type` is S3 (checked at create).
fn s3_artifact(
    state: &AppState,
    project: &str,
    a: &Value,
) -> Result<Option<localbuild_engine::S3Artifact>, ApiError> {
    let field = |k: &str| a.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    if field("type") != Some("S3") {
        return Ok(None);
    }
    check_artifacts(a)?;
    let bucket = field("location").unwrap_or_default();
    let bucket_dir = localbuild_confine::component("bucket", bucket)
        .and_then(|b| localbuild_confine::Root::new(&state.roots.s3_root).sub("bucket", b))
        .map_err(|e| ApiError::InvalidInput(format!("Invalid artifacts: {e}")))?;
    Ok(Some(localbuild_engine::S3Artifact {
        bucket_dir: bucket_dir.path().to_path_buf(),
        bucket: bucket.to_owned(),
        path: field("path").unwrap_or("").trim_matches('/').to_owned(),
        build_id_namespace: field("namespaceType") == Some("BUILD_ID"),
        name: field("name")
            .unwrap_or(project)
            .trim_matches('/')
            .to_owned(),
        override_name: a
            .get("overrideArtifactName")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        zip: field("packaging") == Some("ZIP"),
    }))
}

fn check_project(p: &ProjectInput, create: bool) -> Result<(), ApiError> {
    check_name(&p.name)?;
    if create {
        for (missing, field) in [
            (p.source.is_none(), "source"),
            (p.artifacts.is_none(), "artifacts"),
            (p.environment.is_none(), "environment"),
            (p.service_role.is_none(), "serviceRole"),
        ] {
            if missing {
                return Err(ApiError::InvalidInput(format!(
                    "Missing required parameter: {field}"
                )));
            }
        }
    }
    if let Some(t) = p.timeout_in_minutes
        && !(5..=2160).contains(&t)
    {
        return Err(ApiError::InvalidInput(format!(
            "Invalid timeoutInMinutes: {t}. It must be between 5 and 2160"
        )));
    }
    if let Some(t) = p.queued_timeout_in_minutes
        && !(5..=480).contains(&t)
    {
        return Err(ApiError::InvalidInput(format!(
            "Invalid queuedTimeoutInMinutes: {t}. It must be between 5 and 480"
        )));
    }
    if let Some(l) = p.concurrent_build_limit
        && l < 1
    {
        return Err(ApiError::InvalidInput(format!(
            "Invalid concurrentBuildLimit: {l}. It must be at least 1"
        )));
    }
    if let Some(src) = &p.source {
        check_source_type(&src.kind)?;
    }
    if let Some(tags) = &p.tags {
        crate::tags::check("tags", tags).map_err(|e| match e {
            crate::tags::TagProblem::Invalid(m) | crate::tags::TagProblem::TooMany(m) => {
                ApiError::InvalidInput(m)
            }
        })?;
    }
    for s in p.secondary_sources.iter().flatten() {
        check_source_type(&s.kind)?;
        let id = s.source_identifier.as_deref().unwrap_or_default();
        if let Err(why) = localbuild_buildspec::names::source_identifier(id) {
            return Err(ApiError::InvalidInput(format!(
                "Invalid secondarySources sourceIdentifier: {id:?}. {why}"
            )));
        }
    }
    if let Some(a) = &p.artifacts {
        check_artifacts(a)?;
    }
    for a in p.secondary_artifacts.iter().flatten() {
        let id = a["artifactIdentifier"].as_str().unwrap_or_default();
        if let Err(why) = localbuild_buildspec::names::artifact_identifier(id) {
            return Err(ApiError::InvalidInput(format!(
                "Invalid secondaryArtifacts artifactIdentifier: {id:?}: {why}"
            )));
        }
    }
    Ok(())
}

/// A project's source location must be well formed and must not name a path on this machine
/// (CreateProject, UpdateProject); it need not exist yet: a build of a location that resolves
/// to nothing fails in DOWNLOAD_SOURCE (see [`resolve_source`]).
fn check_location(ctx: &Ctx, source: Option<&ProjectSource>) -> Result<(), ApiError> {
    match source {
        Some(src) if src.kind != "NO_SOURCE" && src.kind != "CODEPIPELINE" => resolve_source(
            &ctx.state.roots,
            &src.kind,
            src.location.as_deref(),
            None,
            None,
        )
        .map(drop),
        _ => Ok(()),
    }
}

fn check_source_type(kind: &str) -> Result<(), ApiError> {
    const TYPES: [&str; 9] = [
        "CODECOMMIT",
        "CODEPIPELINE",
        "GITHUB",
        "GITLAB",
        "GITLAB_SELF_MANAGED",
        "S3",
        "BITBUCKET",
        "GITHUB_ENTERPRISE",
        "NO_SOURCE",
    ];
    if TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(ApiError::InvalidInput(format!(
            "Invalid source type: {kind}"
        )))
    }
}

pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse::<Value>(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::Serialization(
            "Invalid request body: expected a JSON object".into(),
        )),
    }
}

/// The computed fields of a stored project over what the client sent.
fn overlay_project(ctx: &Ctx, mut p: Map<String, Value>, created: f64, modified: f64) -> Value {
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    p.insert("arn".into(), json!(project_arn(&ctx.region, &name)));
    p.insert("created".into(), json!(created));
    p.insert("lastModified".into(), json!(modified));
    p.entry("timeoutInMinutes").or_insert(json!(60));
    p.entry("queuedTimeoutInMinutes").or_insert(json!(480));
    p.entry("secondarySources").or_insert(json!([]));
    p.entry("secondaryArtifacts").or_insert(json!([]));
    p.entry("secondarySourceVersions").or_insert(json!([]));
    p.entry("cache").or_insert(json!({"type": "NO_CACHE"}));
    p.entry("encryptionKey").or_insert(json!(format!(
        "arn:aws:kms:{}:{ACCOUNT_ID}:alias/aws/s3",
        ctx.region
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

fn create_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ProjectInput = parse(body)?;
    check_project(&input, true)?;
    check_location(ctx, input.source.as_ref())?;
    let raw = object(body)?;
    let at = now();
    let project = overlay_project(ctx, raw, at, at);
    let db = ctx.state.history.db();
    match db.create_project(&input.name, &project.to_string(), at) {
        Ok(()) => Ok(json!({ "project": project })),
        Err(localbuild_store::DbError::AlreadyExists { .. }) => {
            Err(ApiError::ResourceAlreadyExists(format!(
                "Project already exists: {}",
                project_arn(&ctx.region, &input.name)
            )))
        }
        Err(e) => Err(ApiError::db(e)),
    }
}

fn update_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ProjectInput = parse(body)?;
    check_project(&input, false)?;
    check_location(ctx, input.source.as_ref())?;
    let raw = object(body)?;
    let db = ctx.state.history.db();
    let stored = db
        .get_project(&input.name)
        .map_err(ApiError::db)?
        .ok_or_else(|| project_not_found(ctx, &input.name))?;
    let Ok(Value::Object(mut merged)) = serde_json::from_str::<Value>(&stored) else {
        return Err(ApiError::Service(format!(
            "the stored project {} is unreadable",
            input.name
        )));
    };
    let created = merged.get("created").and_then(Value::as_f64).unwrap_or(0.0);
    for (k, v) in raw {
        merged.insert(k, v);
    }
    let at = now();
    let project = overlay_project(ctx, merged, created, at);
    db.update_project(&input.name, &project.to_string(), at)
        .map_err(ApiError::db)?;
    Ok(json!({ "project": project }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameInput {
    name: String,
}

fn delete_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: NameInput = parse(body)?;
    ctx.state
        .history
        .db()
        .delete_project(&input.name)
        .map_err(ApiError::db)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NamesInput {
    names: Vec<String>,
}

fn batch_get_projects(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: NamesInput = parse(body)?;
    if input.names.is_empty() {
        return Err(ApiError::InvalidInput(
            "The input project name list cannot be empty.".into(),
        ));
    }
    if input.names.len() > 100 {
        return Err(ApiError::InvalidInput(format!(
            "Invalid names: {} project names given, at most 100 are allowed",
            input.names.len()
        )));
    }
    // Names may also be ARNs.
    let names = input
        .names
        .iter()
        .map(|n| checked_project_name(n))
        .collect::<Result<Vec<String>, _>>()?;
    let found = ctx
        .state
        .history
        .db()
        .get_projects(&names)
        .map_err(ApiError::db)?;
    let projects: Vec<Value> = found
        .iter()
        .filter_map(|(_, j)| serde_json::from_str(j).ok())
        .collect();
    let not_found: Vec<&String> = input
        .names
        .iter()
        .zip(&names)
        .filter(|(_, n)| !found.iter().any(|(f, _)| f == *n))
        .map(|(orig, _)| orig)
        .collect();
    Ok(without_empty(
        json!({"projects": projects, "projectsNotFound": not_found}),
    ))
}

/// A project name given to BatchGetProjects, or its ARN
/// (`arn:PARTITION:codebuild:REGION:ACCOUNT:project/NAME`): the name, or an
/// `InvalidInputException` naming the malformed entry.
fn checked_project_name(given: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::InvalidInput(format!(
            "Invalid project name or ARN provided: {given:?} in names: expected a project name (letters, digits, - and _, starting with a letter or digit) or a project ARN (arn:aws:codebuild:REGION:ACCOUNT:project/NAME)"
        ))
    };
    let name = if given.starts_with("arn:") {
        let parts: Vec<&str> = given.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "codebuild", region, account, resource]
                if !partition.is_empty() && !region.is_empty() && !account.is_empty() =>
            {
                resource.strip_prefix("project/").ok_or_else(invalid)?
            }
            _ => return Err(invalid()),
        }
    } else {
        given
    };
    check_project_name(name).map_err(|_| invalid())?;
    Ok(name.to_owned())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListProjectsInput {
    sort_by: Option<String>,
    sort_order: Option<String>,
    next_token: Option<String>,
}

pub(crate) fn sort_descending(order: Option<&str>, default: bool) -> Result<bool, ApiError> {
    match order {
        None => Ok(default),
        Some("ASCENDING") => Ok(false),
        Some("DESCENDING") => Ok(true),
        Some(o) => Err(ApiError::InvalidInput(format!(
            "Invalid sortOrder: {o}. Valid values: ASCENDING, DESCENDING"
        ))),
    }
}

fn list_projects(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    use localbuild_store::ProjectSort;
    let input: ListProjectsInput = parse(body)?;
    let sort = match input.sort_by.as_deref() {
        None | Some("NAME") => ProjectSort::Name,
        Some("CREATED_TIME") => ProjectSort::CreatedTime,
        Some("LAST_MODIFIED_TIME") => ProjectSort::LastModifiedTime,
        Some(s) => {
            return Err(ApiError::InvalidInput(format!(
                "Invalid sortBy: {s}. Valid values: NAME, CREATED_TIME, LAST_MODIFIED_TIME"
            )));
        }
    };
    let descending = sort_descending(input.sort_order.as_deref(), false)?;
    let names = ctx
        .state
        .history
        .db()
        .list_projects(sort, descending)
        .map_err(ApiError::db)?;
    let start = match &input.next_token {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::InvalidInput(format!("Invalid nextToken: {t}")))?,
    };
    let page: Vec<&String> = names.iter().skip(start).take(100).collect();
    let mut out = json!({ "projects": page });
    if start + 100 < names.len() {
        out["nextToken"] = json!((start + 100).to_string());
    }
    Ok(out)
}

pub(crate) fn project_not_found(ctx: &Ctx, name: &str) -> ApiError {
    ApiError::ResourceNotFound(format!(
        "Project cannot be found: {}",
        project_arn(&ctx.region, name)
    ))
}

// ---------------------------------------------------------------------------------------
// Builds

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
/// the build's id.
pub(crate) async fn start_for_pipeline(
    ctx: &Ctx,
    project: &str,
    source: PipelineSource,
    env: Vec<(String, String, Option<String>)>,
) -> Result<String, ApiError> {
    let input = pipeline_input(project, source, env);
    let out = start_build(ctx, input, None).await?;
    out["build"]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| ApiError::Service("the build has no id".into()))
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

/// Wait for a build to end; its outcome when the engine ran it, else its final record.
pub(crate) async fn wait_build(
    state: &Arc<AppState>,
    id: &str,
) -> (Option<localbuild_engine::Outcome>, Option<Build>) {
    loop {
        let handle = match state.inner().builds.get(id) {
            Some(Live::Running(h)) => Some(h.clone()),
            Some(Live::Queued(_)) => None,
            None => return (None, record(state, id)),
        };
        if let Some(h) = handle {
            let outcome = h.outcome().await;
            // The server's record (restamped) once the build has left the live set.
            return (Some(outcome), None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stop a build (or batch build) a pipeline started (best effort).
pub(crate) fn stop_for_pipeline(state: &Arc<AppState>, id: &str) {
    let mut inner = state.inner();
    if let Some(batch) = inner.batches.get(id) {
        batch.stop();
        return;
    }
    let waiting = inner.queue.cancel(id);
    match inner.builds.get_mut(id) {
        Some(Live::Running(h)) => h.stop(),
        Some(Live::Queued(q)) if !waiting => q.stop_requested = true,
        Some(Live::Queued(q)) => {
            let mut r = q.record.clone();
            end_record(&mut r, Status::Stopped, None);
            inner.builds.remove(id);
            drop(inner);
            keep(state, &r);
            state.store.forget(id);
        }
        None => {}
    }
}

/// Where a build's source comes from, for the engine: the one place that maps CodeBuild's
/// source types and locations to this machine (`localbuild_sources::resolve`). A malformed
/// location, or one naming a path on this machine, is an `InvalidInputException`; a
/// well-formed one that resolves to nothing is accepted, as the cloud accepts it, as a
/// [`Source::Unresolved`](localbuild_engine::Source::Unresolved): the build fails in
/// DOWNLOAD_SOURCE with `CLIENT_ERROR` and the message that says where it looked.
fn resolve_source(
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
    if input.pipeline.is_none()
        && let Some(a) = project_json.get("artifacts")
    {
        request.s3_artifact = s3_artifact(state, &input.project_name, a)?;
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

/// A build the server holds in its queue: the engine's own submitted record, accepted at `at`,
/// SUBMITTED done and QUEUED open.
fn queued_record(
    req: &BuildRequest,
    uuid: &str,
    number: u64,
    log: &std::path::Path,
    at: f64,
) -> Build {
    let dir = log
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let place = localbuild_engine::store::Place {
        number,
        log: log.to_path_buf(),
        artifacts: dir.join("artifacts"),
        reports: dir.join("reports"),
        dir,
    };
    let id = format!("{}:{uuid}", req.project);
    let mut build = localbuild_engine::new_record(req, &id, uuid, &place);
    build.start_time = at;
    build.current_phase = PhaseType::Queued;
    build.logs.deep_link = String::new();
    build.phases = queued_record_phases(at);
    build
}

/// The engine's record with the server's acceptance time: the build started when StartBuild
/// accepted it, SUBMITTED took no time and QUEUED lasted until the engine had it.
pub(crate) fn restamp(build: &mut Build, at: f64) {
    if build.start_time <= at {
        return;
    }
    build.start_time = at;
    for p in &mut build.phases {
        match p.phase_type {
            PhaseType::Submitted => {
                p.start_time = at;
                if p.end_time.is_some() {
                    p.end_time = Some(at);
                    p.duration_in_seconds = Some(whole_seconds(at, at));
                }
            }
            PhaseType::Queued => {
                p.start_time = at;
                if let Some(end) = p.end_time {
                    p.duration_in_seconds = Some(whole_seconds(at, end));
                }
            }
            _ => {}
        }
    }
}

/// A record as the API returns it.
pub(crate) fn present(state: &AppState, build: &Build, overlay: Option<&Value>) -> Value {
    let mut b = build.clone();
    // Right after submission the engine has not begun SUBMITTED yet: answer as CodeBuild.
    if b.phases.is_empty() {
        b.phases = queued_record_phases(b.start_time);
        b.current_phase = PhaseType::Queued;
    }
    let mut v = serde_json::to_value(&b).unwrap_or(json!({}));
    if let Some(Value::Object(o)) = overlay {
        for (k, val) in o {
            v[k] = val.clone();
        }
    }
    if let Some(Value::Object(logs)) = v.get_mut("logs") {
        logs.remove("localPath");
        logs.insert(
            "deepLink".into(),
            json!(crate::console::build_url(state.addr, &build.id)),
        );
        let region = build.arn.split(':').nth(3).unwrap_or("us-east-1");
        logs.insert(
            "cloudWatchLogsArn".into(),
            json!(format!(
                "arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{}:log-stream:{}",
                build.logs.group_name, build.logs.stream_name
            )),
        );
    }
    v
}

fn queued_record_phases(at: f64) -> Vec<BuildPhase> {
    vec![
        BuildPhase::open(PhaseType::Submitted, at).closed(Status::Succeeded, at),
        BuildPhase::open(PhaseType::Queued, at),
    ]
}

/// The overlay document of a build.
fn overlay_of(state: &AppState, id: &str) -> Option<Value> {
    let doc = state.history.db().get_doc(BUILD_DOC, id).ok()??;
    let v: Value = serde_json::from_str(&doc).ok()?;
    v.get("overlay").cloned()
}

fn input_of(state: &AppState, id: &str) -> Option<StartBuildInput> {
    let doc = state.history.db().get_doc(BUILD_DOC, id).ok()??;
    let v: Value = serde_json::from_str(&doc).ok()?;
    serde_json::from_value(v.get("input")?.clone()).ok()
}

/// Save a record the server made itself (a queued build's, one stopped or refused before it
/// reached the engine). A failure is reported, never dropped: on stderr (`tracing`), and a
/// final record is saved again until kept (`save_until_kept`), answered meanwhile from the
/// store's unsaved records (see [`record`]).
fn keep(state: &Arc<AppState>, record: &Build) {
    if let Err(e) = state.history.save(record) {
        tracing::error!(build = %record.id, "cannot save the build record: {e}");
        if record.build_complete {
            let store: Arc<dyn localbuild_engine::store::Store> = Arc::new(state.history.clone());
            tokio::spawn(localbuild_engine::store::save_until_kept(
                store,
                record.clone(),
            ));
        }
    }
}

/// The current record of a build: live from the server, else one the store could not save
/// yet (a full disk), else from the history.
pub(crate) fn record(state: &AppState, id: &str) -> Option<Build> {
    let live = match state.inner().builds.get(id) {
        Some(Live::Queued(q)) => Some(q.record.clone()),
        Some(Live::Running(h)) => Some(state.store.restamp(&h.snapshot())),
        None => None,
    };
    if live.is_some() {
        return live;
    }
    if let Some(unsaved) = state.history.unsaved(id) {
        return Some(unsaved);
    }
    let rows = state.history.db().get_builds(&[id.to_owned()]).ok()?;
    serde_json::from_str(&rows.first()?.json).ok()
}

/// A build's log file, if the build exists.
pub(crate) fn log_path(state: &AppState, id: &str) -> Option<std::path::PathBuf> {
    let build = record(state, id)?;
    build.logs.local_path.map(Into::into)
}

fn presented(state: &AppState, id: &str) -> Option<Value> {
    let build = record(state, id)?;
    Some(present(state, &build, overlay_of(state, id).as_ref()))
}

async fn start_build(
    ctx: &Ctx,
    input: StartBuildInput,
    retry_of: Option<&str>,
) -> Result<Value, ApiError> {
    let state = &ctx.state;
    check_name(&input.project_name).map_err(|_| project_not_found(ctx, &input.project_name))?;
    if let Some(token) = input
        .idempotency_token
        .as_deref()
        .filter(|_| retry_of.is_none())
    {
        let known = {
            let mut inner = state.inner();
            inner
                .tokens
                .retain(|_, (at, _)| at.elapsed() < IDEMPOTENCY_WINDOW);
            inner.tokens.get(token).map(|(_, id)| id.clone())
        };
        if let Some(build) = known.and_then(|id| presented(state, &id)) {
            return Ok(json!({ "build": build }));
        }
    }
    let prepared = prepare(ctx, &input)?;
    if state.inner().shutting_down {
        return Err(ApiError::Service(
            "localbuild serve is shutting down".into(),
        ));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let id = format!("{}:{uuid}", input.project_name);
    let at = now();
    let place = state
        .store
        .claim(&input.project_name, &id, at)
        .map_err(|e| ApiError::Service(e.to_string()))?;
    let record = queued_record(&prepared.request, &uuid, place.number, &place.log, at);
    let doc = json!({"input": input, "overlay": prepared.overlay, "retryOf": retry_of});
    state
        .history
        .db()
        .put_doc(BUILD_DOC, &id, &doc.to_string())
        .map_err(ApiError::db)?;
    keep(state, &record);
    let response = present(state, &record, Some(&prepared.overlay));
    {
        let mut inner = state.inner();
        if let Some(token) = input
            .idempotency_token
            .as_deref()
            .filter(|_| retry_of.is_none())
        {
            inner
                .tokens
                .insert(token.to_owned(), (Instant::now(), id.clone()));
        }
        inner.queue.push(&id, &input.project_name, prepared.limit);
        inner.builds.insert(
            id.clone(),
            Live::Queued(Box::new(QueuedBuild {
                record,
                request: prepared.request,
                uuid,
                stop_requested: false,
            })),
        );
    }
    pump(state);
    Ok(json!({ "build": response }))
}

/// Start every build the queue lets start.
pub(crate) fn pump(state: &Arc<AppState>) {
    let starts: Vec<(String, BuildRequest, String)> = {
        let mut inner = state.inner();
        if inner.shutting_down {
            return;
        }
        let ids = inner.queue.admit();
        ids.into_iter()
            .filter_map(|id| {
                // A batch's build: its batch submits it.
                if let Some(waiter) = inner.slot_waiters.remove(&id) {
                    let _ = waiter.send(());
                    return None;
                }
                Some(id)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .filter_map(|id| match inner.builds.get(&id) {
                Some(Live::Queued(q)) => Some((id, q.request.clone(), q.uuid.clone())),
                _ => None,
            })
            .collect()
    };
    for (id, request, uuid) in starts {
        let state = state.clone();
        tokio::spawn(async move { run_build(state, id, request, uuid).await });
    }
}

/// Hand a build to the engine and follow it to its end.
async fn run_build(state: Arc<AppState>, id: String, request: BuildRequest, uuid: String) {
    match state.engine.submit_as(request, uuid).await {
        Ok(handle) => {
            let stop = {
                let mut inner = state.inner();
                let stop = matches!(inner.builds.get(&id), Some(Live::Queued(q)) if q.stop_requested)
                    || inner.shutting_down;
                inner
                    .builds
                    .insert(id.clone(), Live::Running(handle.clone()));
                stop
            };
            if stop {
                handle.stop();
            }
            let _ = handle.outcome().await;
        }
        Err(e) => {
            // Nothing started: the build ends as a FAULT in the history.
            let record = match state.inner().builds.get(&id) {
                Some(Live::Queued(q)) => Some(q.record.clone()),
                _ => None,
            };
            if let Some(mut r) = record {
                end_record(&mut r, Status::Fault, Some(e.to_string()));
                keep(&state, &r);
            }
        }
    }
    {
        let mut inner = state.inner();
        inner.queue.finished(&id);
        inner.builds.remove(&id);
    }
    state.store.forget(&id);
    pump(&state);
}

/// End a record that never reached the engine: QUEUED ends with `status`.
fn end_record(r: &mut Build, status: Status, message: Option<String>) {
    let contexts = message.map(|m| {
        vec![localbuild_engine::record::PhaseContext::new(
            "CLIENT_ERROR",
            m,
        )]
    });
    r.close_phase(status, contexts, now());
    r.complete(status);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdsInput {
    pub(crate) ids: Vec<String>,
}

fn batch_get_builds(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: IdsInput = parse(body)?;
    if input.ids.is_empty() {
        return Err(ApiError::InvalidInput(
            "The input build ID list cannot be empty.".into(),
        ));
    }
    if input.ids.len() > 100 {
        return Err(ApiError::InvalidInput(format!(
            "Invalid ids: {} build IDs given, at most 100 are allowed",
            input.ids.len()
        )));
    }
    let ids = input
        .ids
        .iter()
        .map(|id| checked_id(id, "build"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut builds = vec![];
    let mut not_found = vec![];
    for id in ids {
        match presented(&ctx.state, &id) {
            Some(b) => builds.push(b),
            None => not_found.push(id),
        }
    }
    Ok(without_empty(
        json!({"builds": builds, "buildsNotFound": not_found}),
    ))
}

/// A build (`kind` `build`) or batch build (`build-batch`) id given to a Batch* operation,
/// as `PROJECT:ID` or its ARN `arn:PARTITION:codebuild:REGION:ACCOUNT:KIND/PROJECT:ID`: the
/// id, or CodeBuild's `InvalidInputException` for a malformed one (an unknown well-formed id is
/// "not found", not an error).
pub(crate) fn checked_id(given: &str, kind: &str) -> Result<String, ApiError> {
    let what = if kind == "build" {
        "build"
    } else {
        "build batch"
    };
    let invalid = || {
        ApiError::InvalidInput(format!(
            "Invalid {what} ID provided: {given:?} in ids: expected PROJECT:ID or a {what} ARN (arn:aws:codebuild:REGION:ACCOUNT:{kind}/PROJECT:ID)"
        ))
    };
    let id = if given.starts_with("arn:") {
        let parts: Vec<&str> = given.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", partition, "codebuild", region, account, resource]
                if !partition.is_empty() && !region.is_empty() && !account.is_empty() =>
            {
                resource
                    .strip_prefix(kind)
                    .and_then(|r| r.strip_prefix('/'))
                    .ok_or_else(invalid)?
            }
            _ => return Err(invalid()),
        }
    } else {
        given
    };
    let (project, suffix) = id.split_once(':').ok_or_else(invalid)?;
    let suffix_ok = !suffix.is_empty()
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if check_project_name(project).is_err() || !suffix_ok {
        return Err(invalid());
    }
    Ok(id.to_owned())
}

/// A build id, also given as its ARN.
fn build_id(id: &str) -> String {
    id.split_once(":build/")
        .map_or(id, |(_, rest)| rest)
        .to_owned()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListBuildsInput {
    project_name: Option<String>,
    sort_order: Option<String>,
    next_token: Option<String>,
}

fn list_builds(ctx: &Ctx, body: &[u8], for_project: bool) -> Result<Value, ApiError> {
    let input: ListBuildsInput = parse(body)?;
    let project = if for_project {
        let name = input.project_name.clone().ok_or_else(|| {
            ApiError::InvalidInput("Missing required parameter: projectName".into())
        })?;
        let db = ctx.state.history.db();
        let exists = db.get_project(&name).map_err(ApiError::db)?.is_some();
        if !exists {
            let (any, _) = db
                .list_builds(&localbuild_store::BuildQuery {
                    project: Some(name.clone()),
                    page_size: 1,
                    ..Default::default()
                })
                .map_err(ApiError::db)?;
            if any.is_empty() {
                return Err(project_not_found(ctx, &name));
            }
        }
        Some(name)
    } else {
        None
    };
    let query = localbuild_store::BuildQuery {
        project,
        descending: sort_descending(input.sort_order.as_deref(), true)?,
        next_token: input.next_token,
        ..Default::default()
    };
    let (ids, next) = ctx
        .state
        .history
        .db()
        .list_builds(&query)
        .map_err(ApiError::db)?;
    let mut out = json!({ "ids": ids });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdInput {
    pub(crate) id: String,
}

fn build_not_found(id: &str) -> ApiError {
    ApiError::ResourceNotFound(format!("Build {id} does not exist"))
}

async fn stop_build(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: IdInput = parse(body)?;
    let id = build_id(&input.id);
    let state = &ctx.state;
    enum Found {
        Handle(localbuild_engine::BuildHandle),
        Starting,
        Stopped(Box<Build>),
        None,
    }
    let found = {
        let mut inner = state.inner();
        let waiting = inner.queue.cancel(&id);
        match inner.builds.get_mut(&id) {
            Some(Live::Running(h)) => Found::Handle(h.clone()),
            Some(Live::Queued(q)) if waiting => {
                let mut r = q.record.clone();
                end_record(&mut r, Status::Stopped, None);
                inner.builds.remove(&id);
                Found::Stopped(Box::new(r))
            }
            Some(Live::Queued(q)) => {
                q.stop_requested = true;
                Found::Starting
            }
            None => Found::None,
        }
    };
    match found {
        Found::Stopped(r) => {
            keep(state, &r);
            state.store.forget(&id);
        }
        Found::Handle(h) => {
            h.stop();
            let _ = tokio::time::timeout(STOP_WAIT, h.outcome()).await;
        }
        Found::Starting => {
            let deadline = Instant::now() + STOP_WAIT;
            while Instant::now() < deadline {
                let running = match state.inner().builds.get(&id) {
                    Some(Live::Running(h)) => Some(h.clone()),
                    Some(Live::Queued(_)) => None,
                    None => break,
                };
                if let Some(h) = running {
                    h.stop();
                    let _ = tokio::time::timeout(STOP_WAIT, h.outcome()).await;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Found::None => {}
    }
    let build = presented(state, &id).ok_or_else(|| build_not_found(&id))?;
    Ok(json!({ "build": build }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryInput {
    id: Option<String>,
    idempotency_token: Option<String>,
}

async fn retry_build(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: RetryInput = parse(body)?;
    let id = build_id(
        input
            .id
            .as_deref()
            .ok_or_else(|| ApiError::InvalidInput("Missing required parameter: id".into()))?,
    );
    let Some(mut original) = input_of(&ctx.state, &id) else {
        return Err(build_not_found(&id));
    };
    original.idempotency_token = input.idempotency_token;
    start_build(ctx, original, Some(&id)).await
}

fn batch_delete_builds(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: IdsInput = parse(body)?;
    if input.ids.is_empty() || input.ids.len() > 100 {
        return Err(ApiError::InvalidInput(
            "ids must hold 1 to 100 build ids".into(),
        ));
    }
    let state = &ctx.state;
    let mut not_deleted = vec![];
    let mut to_delete = vec![];
    for id in input.ids.iter().map(|i| build_id(i)) {
        if state.inner().builds.contains_key(&id) {
            not_deleted.push(json!({"id": id, "statusCode": "BUILD_IN_PROGRESS"}));
        } else {
            to_delete.push(id);
        }
    }
    let (deleted, missing) = state
        .history
        .db()
        .delete_builds(&to_delete)
        .map_err(ApiError::db)?;
    for id in &deleted {
        let _ = state.history.db().delete_doc(BUILD_DOC, id);
    }
    for id in missing {
        not_deleted.push(json!({"id": id, "statusCode": "BUILD_NOT_FOUND"}));
    }
    json(&without_empty(
        json!({"buildsDeleted": deleted, "buildsNotDeleted": not_deleted}),
    ))
}

/// Shutdown: queued builds end STOPPED, running ones are stopped and awaited.
pub(crate) async fn stop_all(state: &Arc<AppState>) {
    let (queued, running) = {
        let mut inner = state.inner();
        inner.shutting_down = true;
        let mut queued = vec![];
        for id in inner.queue.waiting() {
            inner.queue.cancel(&id);
            if let Some(Live::Queued(q)) = inner.builds.remove(&id) {
                queued.push(q.record);
            }
        }
        let running: Vec<_> = inner
            .builds
            .values()
            .filter_map(|b| match b {
                Live::Running(h) => Some(h.clone()),
                Live::Queued(_) => None,
            })
            .collect();
        (queued, running)
    };
    for mut r in queued {
        end_record(&mut r, Status::Stopped, None);
        keep(state, &r);
    }
    for h in &running {
        h.stop();
    }
    for h in running {
        let _ = tokio::time::timeout(STOP_WAIT * 2, h.outcome()).await;
    }
    let batches = crate::batch::running(state);
    for b in &batches {
        b.stop();
    }
    for b in batches {
        let _ = tokio::time::timeout(STOP_WAIT * 2, b.outcome()).await;
    }
    // Builds being handed to the engine right now stop as soon as they have a handle.
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline && !state.inner().builds.is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildspecs_are_inline_or_paths() {
        assert_eq!(buildspec_source(None), BuildspecSource::Default);
        assert_eq!(buildspec_source(Some("")), BuildspecSource::Default);
        assert_eq!(
            buildspec_source(Some("ci/buildspec.yml")),
            BuildspecSource::InSource("ci/buildspec.yml".into())
        );
        assert!(matches!(
            buildspec_source(Some("version: 0.2\nphases: {}")),
            BuildspecSource::Inline(_)
        ));
        assert!(matches!(
            buildspec_source(Some("version: 0.2")),
            BuildspecSource::Inline(_)
        ));
    }

    #[test]
    fn queued_time_is_the_time_since_acceptance() {
        let req = BuildRequest::new("demo", localbuild_engine::Source::None);
        let mut b = queued_record(&req, "u", 1, std::path::Path::new("/l"), 100.0);
        b.start_time = 130.0;
        b.phases[0].start_time = 130.0;
        b.phases[1].start_time = 130.0;
        b.phases[1].end_time = Some(131.5);
        restamp(&mut b, 100.0);
        assert_eq!(b.start_time, 100.0);
        assert_eq!(b.phases[0].end_time, Some(100.0));
        assert_eq!(b.phases[1].start_time, 100.0);
        assert_eq!(b.phases[1].duration_in_seconds, Some(31));
    }

    #[test]
    fn build_ids_may_be_arns() {
        assert_eq!(
            build_id("arn:aws:codebuild:us-east-1:000000000000:build/p:u-1"),
            "p:u-1"
        );
        assert_eq!(build_id("p:u-1"), "p:u-1");
    }

    #[test]
    fn malformed_ids_are_refused_and_well_formed_ones_kept() {
        for (given, id) in [
            ("p1:u-1", "p1:u-1"),
            (
                "arn:aws:codebuild:us-east-1:000000000000:build/p1:u-1",
                "p1:u-1",
            ),
            (
                "arn:aws-cn:codebuild:cn-north-1:1:build/my_app:0f-9",
                "my_app:0f-9",
            ),
        ] {
            assert_eq!(
                checked_id(given, "build").ok().as_deref(),
                Some(id),
                "{given}"
            );
        }
        for bad in [
            "",
            "nocolon",
            "p1:",
            ":u-1",
            "../x:u",
            "p1:u/../x",
            "arn:aws:codebuild:us-east-1:000000000000:project/p1",
            "arn:aws:codebuild:us-east-1:000000000000:build-batch/p1:u",
            "arn:aws:s3:::b/p1:u",
        ] {
            let err = checked_id(bad, "build").unwrap_err();
            assert!(
                matches!(&err, ApiError::InvalidInput(m) if m.contains("Invalid build ID provided")),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(
            checked_id(
                "arn:aws:codebuild:us-east-1:0:build-batch/p1:u",
                "build-batch"
            )
            .ok()
            .as_deref(),
            Some("p1:u")
        );
        assert!(checked_id("arn:aws:codebuild:us-east-1:0:build/p1:u", "build-batch").is_err());
        assert_eq!(checked_project_name("app").ok().as_deref(), Some("app"));
        assert_eq!(
            checked_project_name("arn:aws:codebuild:us-east-1:0:project/app")
                .ok()
                .as_deref(),
            Some("app")
        );
        for bad in [
            "",
            "a",
            "a b",
            "arn:aws:codebuild:us-east-1:0:build/app:u",
            "arn:x",
        ] {
            assert!(checked_project_name(bad).is_err(), "{bad}");
        }
    }
}
