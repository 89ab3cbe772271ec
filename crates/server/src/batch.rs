//! CodeBuild's batch builds: `StartBuildBatch`, `BatchGetBuildBatches`, `ListBuildBatches`,
//! `ListBuildBatchesForProject`, `StopBuildBatch`, `RetryBuildBatch`, `DeleteBuildBatch`.
//!
//! `StartBuildBatch` takes the same path as `StartBuild` ([`codebuild::prepare`]: project,
//! source, buildspec, image and variable overrides), then reads the buildspec's `batch`
//! section at once (inline, from a folder source, or `git show` of a repository source),
//! expands it and hands it to [`Engine::submit_batch`](localbuild_engine::Engine). The
//! project's `buildBatchConfig` (or `buildBatchConfigOverride`) gives `combineArtifacts` and
//! `restrictions.maximumBuildsAllowed`. Each task's build waits in the build service's queue
//! like a StartBuild build: `--max-concurrent-builds` and the project's
//! `concurrentBuildLimit` count every build, batch or not.
//!
//! While a batch runs its [`BatchHandle`] (kept by the build service) is the truth; afterwards the history's documents of
//! kind `build-batch` (the engine saves the record at every change). Each batch leaves a
//! document (`codebuild.batch-input`) with its input and the CodeBuild fields laid over the
//! record (the project's source and environment with the overrides, `serviceRole`,
//! `sourceVersion`). The task builds are ordinary builds of the history (with
//! `buildBatchArn`), so `BatchGetBuilds` and `ListBuilds` show them.
//!
//! `RetryBuildBatch` runs the batch again under its own id and `buildBatchNumber`, as
//! CodeBuild does ([`Engine::retry_batch`](localbuild_engine::Engine)), from the original
//! input: only the tasks that did not succeed (`RETRY_FAILED_BUILDS`, the default; a task that
//! succeeded keeps its build and its dependents may start at once) or every task
//! (`RETRY_ALL_BUILDS`); each task run again keeps its earlier build in
//! `priorBuildSummaryList`.

use crate::codebuild::{
    self, IdInput, IdsInput, StartBuildInput, object, project_not_found, sort_descending,
    without_empty,
};
use crate::error::ApiError;
use crate::protocol::parse;
use crate::{AppState, Ctx};
use localbuild_engine::buildspec;
use localbuild_engine::record::{BuildBatch, Status};
use localbuild_engine::{BatchHandle, BuildRequest, BuildspecSource, RetryType};
use localbuild_service::StartBatch;
use localbuild_service::projects::{EnvVar, PipelineSource};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::path::{Component, Path};
use std::time::Duration;

/// The document kind holding each batch's `StartBuildBatch` input and overlay.
const BATCH_DOC: &str = "codebuild.batch-input";

/// A batch id, also given as its ARN.
pub(crate) fn batch_id(id: &str) -> String {
    id.split_once(":build-batch/")
        .map_or(id, |(_, rest)| rest)
        .to_owned()
}

fn batch_not_found(id: &str) -> ApiError {
    ApiError::ResourceNotFound(format!("Build batch {id} does not exist"))
}

/// `StartBuildBatch`'s input as `StartBuild`'s (the names that differ mapped).
fn build_input(raw: &Map<String, Value>) -> Result<StartBuildInput, ApiError> {
    let mut m = raw.clone();
    m.remove("buildBatchConfigOverride");
    if let Some(t) = m.remove("buildTimeoutInMinutesOverride") {
        m.insert("timeoutInMinutesOverride".into(), t);
    }
    let input: StartBuildInput = serde_json::from_value(Value::Object(m))
        .map_err(|e| ApiError::Serialization(format!("Invalid request body: {e}")))?;
    if input.project_name.is_empty() {
        return Err(ApiError::InvalidInput(
            "Missing required parameter: projectName".into(),
        ));
    }
    Ok(input)
}

/// A relative path inside the source, or an error naming it.
fn inside(path: &str) -> Result<&Path, ApiError> {
    let p = Path::new(path);
    if p.components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(p)
    } else {
        Err(ApiError::InvalidInput(format!(
            "Invalid buildspec path {path}: it must be a relative path inside the source"
        )))
    }
}

/// The bytes of the buildspec the batch runs.
fn buildspec_bytes(request: &BuildRequest) -> Result<Vec<u8>, ApiError> {
    use localbuild_engine::Source;
    let path_in_source = match &request.buildspec {
        BuildspecSource::Inline(text) => return Ok(text.clone().into_bytes()),
        BuildspecSource::File(p) => {
            return std::fs::read(p).map_err(|e| {
                ApiError::InvalidInput(format!("cannot read the buildspec {}: {e}", p.display()))
            });
        }
        BuildspecSource::Default => "buildspec.yml".to_owned(),
        BuildspecSource::InSource(p) => p.clone(),
    };
    let rel = inside(&path_in_source)?;
    match &request.source {
        Source::Dir(d) | Source::Pipeline { dir: d, .. } => localbuild_confine::Root::new(d)
            .confined("buildspec path", &rel.to_string_lossy())
            .map_err(|e| ApiError::InvalidInput(format!("YAML_FILE_ERROR: {e}")))
            .and_then(|p| std::fs::read(p).map_err(|e| {
            ApiError::InvalidInput(format!(
                "YAML_FILE_ERROR: cannot read the buildspec {path_in_source} in the source {}: {e}",
                d.display()
            ))
        })),
        Source::Git { repo, version, .. } => {
            match localbuild_sources::read_file(repo, version.as_deref(), &path_in_source) {
                Ok((_, Some(bytes))) => Ok(bytes),
                Ok((commit, None)) => Err(ApiError::InvalidInput(format!(
                    "YAML_FILE_ERROR: the source has no buildspec {path_in_source} at {commit}"
                ))),
                Err(e) => Err(ApiError::InvalidInput(e.to_string())),
            }
        }
        // The batch's buildspec is read when it starts: a source that is not here yet fails it.
        Source::Unresolved { reason, .. } => Err(ApiError::InvalidInput(reason.clone())),
        _ => Err(ApiError::InvalidInput(
            "YAML_FILE_ERROR: a batch build without source needs an inline buildspec (buildspecOverride or the project's source.buildspec)".into(),
        )),
    }
}

/// The batch's tasks and its fast-fail setting, from its buildspec.
fn expand(request: &BuildRequest) -> Result<(Vec<buildspec::batch::Task>, bool), ApiError> {
    let bytes = buildspec_bytes(request)?;
    let parsed = buildspec::parse(&bytes).map_err(|invalid| {
        ApiError::InvalidInput(format!("YAML_FILE_ERROR: {}", invalid.message()))
    })?;
    let Some(batch) = &parsed.buildspec.batch else {
        return Err(ApiError::InvalidInput(
            "Batch build configuration is missing: the buildspec has no 'batch' section".into(),
        ));
    };
    let expansion = buildspec::batch::expand(batch).map_err(|d| {
        ApiError::InvalidInput(format!("YAML_FILE_ERROR: line {}: {}", d.line, d.message))
    })?;
    Ok((expansion.tasks, expansion.fast_fail))
}

/// `combineArtifacts` and `restrictions.maximumBuildsAllowed`: the override's, else the
/// project's.
/// What the batch's `buildBatchConfig` (or the override) sets: combineArtifacts,
/// restrictions.maximumBuildsAllowed and timeoutInMins.
fn batch_settings(
    project: &Map<String, Value>,
    config_override: Option<&Value>,
) -> Result<(bool, Option<u32>, Option<Duration>), ApiError> {
    let config = config_override.or_else(|| project.get("buildBatchConfig"));
    let combine = config
        .and_then(|c| c.get("combineArtifacts"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max = match config
        .and_then(|c| c.get("restrictions"))
        .and_then(|r| r.get("maximumBuildsAllowed"))
    {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    ApiError::InvalidInput(format!(
                        "Invalid maximumBuildsAllowed: {v}. It must be a positive integer"
                    ))
                })?,
        ),
    };
    let timeout = match config.and_then(|c| c.get("timeoutInMins")) {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .filter(|n| (1..=2160).contains(n))
                .map(|n| Duration::from_secs(n * 60))
                .ok_or_else(|| {
                    ApiError::InvalidInput(format!(
                        "Invalid timeoutInMins: {v}. It must be between 1 and 2160"
                    ))
                })?,
        ),
    };
    Ok((combine, max, timeout))
}

/// A batch run again under its own id (RetryBuildBatch).
struct Retry {
    prior: BuildBatch,
    kind: RetryType,
}

pub(crate) async fn start_build_batch(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let raw = object(body)?;
    start(ctx, raw, None).await
}

/// A batch build for a pipeline's CodeBuild action with `BatchEnabled` (its input artifact
/// as the source; `CombineArtifacts` overrides the project's `combineArtifacts`); its handle.
pub(crate) async fn start_for_pipeline(
    ctx: &Ctx,
    project: &str,
    source: PipelineSource,
    env: Vec<EnvVar>,
    combine: bool,
) -> Result<BatchHandle, ApiError> {
    let input = codebuild::pipeline_input(project, source, env);
    let (_, handle) = start_input(ctx, input, Request::Pipeline { combine }, None).await?;
    handle.ok_or_else(|| ApiError::Service("the batch build did not start".into()))
}

/// Where a batch's request comes from.
enum Request {
    /// StartBuildBatch (or the one RetryBuildBatch runs again): the body as sent, kept as the
    /// batch's input; its `buildBatchConfigOverride`, else the project's `buildBatchConfig`.
    Api(Map<String, Value>),
    /// A pipeline's action: the project's `buildBatchConfig` with `combineArtifacts`.
    Pipeline { combine: bool },
}

async fn start(
    ctx: &Ctx,
    raw: Map<String, Value>,
    retry: Option<Retry>,
) -> Result<Value, ApiError> {
    let input = build_input(&raw)?;
    Ok(start_input(ctx, input, Request::Api(raw), retry).await?.0)
}

async fn start_input(
    ctx: &Ctx,
    input: StartBuildInput,
    from: Request,
    retry: Option<Retry>,
) -> Result<(Value, Option<BatchHandle>), ApiError> {
    let state = &ctx.state;
    codebuild::check_name(&input.project_name)
        .map_err(|_| project_not_found(ctx, &input.project_name))?;
    let token = input.idempotency_token.clone();
    if let Some(id) = token
        .as_deref()
        .and_then(|t| state.builds.batch_by_token(t))
        && let Some(batch) = presented(state, &id)
    {
        return Ok((json!({ "buildBatch": batch }), state.builds.batch(&id)));
    }
    let prepared = codebuild::prepare(ctx, &input)?;
    let project = &prepared.document;
    let (combine_artifacts, maximum_builds_allowed, timeout) = match &from {
        Request::Api(raw) => batch_settings(project, raw.get("buildBatchConfigOverride"))?,
        Request::Pipeline { combine } => {
            let (_, max, timeout) = batch_settings(project, None)?;
            (*combine, max, timeout)
        }
    };
    let (tasks, fast_fail) = expand(&prepared.request)?;
    // What the record shows beyond the engine's: the project's settings with the overrides.
    let o = &prepared.overlay;
    let mut overlay = json!({
        "source": o["source"],
        "environment": o["environment"],
        "serviceRole": o["serviceRole"],
        "queuedTimeoutInMinutes": o["queuedTimeoutInMinutes"],
        "secondarySources": [],
        "secondarySourceVersions": [],
        "secondaryArtifacts": [],
        "cache": project.get("cache").cloned().unwrap_or(json!({"type": "NO_CACHE"})),
    });
    if let Some(v) = o.get("sourceVersion") {
        overlay["sourceVersion"] = v.clone();
    }
    if let Some(role) = project
        .get("buildBatchConfig")
        .and_then(|c| c.get("serviceRole"))
    {
        overlay["buildBatchConfigServiceRole"] = role.clone();
    }
    // The batch's document keeps its input as StartBuildBatch's request.
    let doc_input = match from {
        Request::Api(raw) => raw,
        Request::Pipeline { combine } => {
            let mut config = project
                .get("buildBatchConfig")
                .cloned()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            config["combineArtifacts"] = json!(combine);
            let mut raw = match serde_json::to_value(&input) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            raw.insert("buildBatchConfigOverride".into(), config);
            raw
        }
    };
    let start = StartBatch {
        request: prepared.request,
        tasks,
        fast_fail,
        combine_artifacts,
        maximum_builds_allowed,
        timeout,
        project_limit: prepared.limit,
        idempotency_token: token,
        retry: retry.map(|r| (r.prior, r.kind)),
    };
    let handle = state
        .builds
        .start_batch(start, |handle: &BatchHandle| {
            let doc = json!({ "input": doc_input, "overlay": overlay });
            state
                .history
                .db()
                .put_doc(BATCH_DOC, &handle.id, &doc.to_string())
                .map_err(ApiError::db)
        })
        .await?;
    let batch = present(&handle.snapshot(), Some(&overlay));
    Ok((json!({ "buildBatch": batch }), Some(handle)))
}

fn doc_of(state: &AppState, id: &str) -> Option<Value> {
    let doc = state.history.db().get_doc(BATCH_DOC, id).ok()??;
    serde_json::from_str(&doc).ok()
}

/// A batch record as the API returns it.
fn present(batch: &BuildBatch, overlay: Option<&Value>) -> Value {
    let mut v = serde_json::to_value(batch).unwrap_or(json!({}));
    if let Some(Value::Object(o)) = overlay {
        for (k, val) in o {
            if k == "buildBatchConfigServiceRole" {
                v["buildBatchConfig"]["serviceRole"] = val.clone();
            } else if !val.is_null() {
                v[k] = val.clone();
            }
        }
    }
    v
}

fn presented(state: &AppState, id: &str) -> Option<Value> {
    let batch = state.builds.batch_record(id)?;
    let doc = doc_of(state, id);
    Some(present(&batch, doc.as_ref().and_then(|d| d.get("overlay"))))
}

pub(crate) fn batch_get_build_batches(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: IdsInput = parse(body)?;
    // The model allows an empty list (0 to 100 ids).
    if input.ids.len() > 100 {
        return Err(ApiError::InvalidInput(format!(
            "Invalid ids: {} build batch IDs given, at most 100 are allowed",
            input.ids.len()
        )));
    }
    let ids = input
        .ids
        .iter()
        .map(|id| codebuild::checked_id(id, "build-batch"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut found = vec![];
    let mut not_found = vec![];
    for id in ids {
        match presented(&ctx.state, &id) {
            Some(b) => found.push(b),
            None => not_found.push(id),
        }
    }
    Ok(without_empty(
        json!({"buildBatches": found, "buildBatchesNotFound": not_found}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    status: Option<Status>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListInput {
    project_name: Option<String>,
    #[serde(default)]
    filter: Filter,
    max_results: Option<usize>,
    sort_order: Option<String>,
    next_token: Option<String>,
}

pub(crate) fn list_build_batches(
    ctx: &Ctx,
    body: &[u8],
    for_project: bool,
) -> Result<Value, ApiError> {
    let input: ListInput = parse(body)?;
    let prefix = if for_project {
        let name = input.project_name.clone().ok_or_else(|| {
            ApiError::InvalidInput("Missing required parameter: projectName".into())
        })?;
        format!("{name}:")
    } else {
        String::new()
    };
    let descending = sort_descending(input.sort_order.as_deref(), true)?;
    let page = input.max_results.unwrap_or(100);
    if !(1..=100).contains(&page) {
        return Err(ApiError::InvalidInput(format!(
            "Invalid maxResults: {page}. It must be between 1 and 100"
        )));
    }
    let project = for_project.then(|| prefix.trim_end_matches(':'));
    let mut batches = ctx.state.history.batches(project).map_err(ApiError::db)?;
    if for_project && batches.is_empty() {
        let name = prefix.trim_end_matches(':');
        if !ctx.state.projects.exists(name)? {
            return Err(project_not_found(ctx, name));
        }
    }
    if let Some(s) = input.filter.status {
        batches.retain(|b| b.build_batch_status == s);
    }
    if !descending {
        batches.reverse();
    }
    let start = match &input.next_token {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::InvalidInput(format!("Invalid nextToken: {t}")))?,
    };
    let ids: Vec<&String> = batches
        .iter()
        .skip(start)
        .take(page)
        .map(|b| &b.id)
        .collect();
    let mut out = json!({ "ids": ids });
    if start + page < batches.len() {
        out["nextToken"] = json!((start + page).to_string());
    }
    Ok(out)
}

pub(crate) async fn stop_build_batch(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: IdInput = parse(body)?;
    let id = stop_batch(ctx, &input.id).await?;
    let batch = presented(&ctx.state, &id).ok_or_else(|| batch_not_found(&id))?;
    Ok(json!({ "buildBatch": batch }))
}

/// StopBuildBatch: stop batch `id` (an id or ARN) and wait (bounded) for it to end; its id.
pub(crate) async fn stop_batch(ctx: &Ctx, id: &str) -> Result<String, ApiError> {
    let id = batch_id(id);
    let state = &ctx.state;
    if let Some(h) = state.builds.batch(&id) {
        h.stop();
        let _ = tokio::time::timeout(localbuild_service::STOP_WAIT, h.outcome()).await;
    }
    if state.builds.batch_record(&id).is_none() {
        return Err(batch_not_found(&id));
    }
    Ok(id)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryInput {
    id: Option<String>,
    idempotency_token: Option<String>,
    retry_type: Option<String>,
}

pub(crate) async fn retry_build_batch(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: RetryInput = parse(body)?;
    let id = input
        .id
        .as_deref()
        .ok_or_else(|| ApiError::InvalidInput("Missing required parameter: id".into()))?;
    let kind = match input.retry_type.as_deref() {
        None | Some("RETRY_FAILED_BUILDS") => RetryType::FailedBuilds,
        Some("RETRY_ALL_BUILDS") => RetryType::AllBuilds,
        Some(t) => {
            return Err(ApiError::InvalidInput(format!(
                "Invalid retryType: {t}. Valid values: RETRY_ALL_BUILDS, RETRY_FAILED_BUILDS"
            )));
        }
    };
    retry_batch(ctx, id, input.idempotency_token, kind).await
}

/// RetryBuildBatch: run a completed batch again under its own id (its failed builds, or all);
/// the answer's `buildBatch`.
pub(crate) async fn retry_batch(
    ctx: &Ctx,
    id: &str,
    idempotency_token: Option<String>,
    kind: RetryType,
) -> Result<Value, ApiError> {
    let id = batch_id(id);
    let state = &ctx.state;
    let batch = state
        .builds
        .batch_record(&id)
        .ok_or_else(|| batch_not_found(&id))?;
    if !batch.complete {
        return Err(ApiError::InvalidInput(format!(
            "Build batch {id} is still in progress: only a completed batch can be retried"
        )));
    }
    let all_succeeded = batch.build_groups.iter().all(|g| {
        g.current_build_summary
            .as_ref()
            .is_some_and(|s| s.build_status == Status::Succeeded)
    });
    if kind == RetryType::FailedBuilds && all_succeeded {
        return Err(ApiError::InvalidInput(format!(
            "Build batch {id} has no failed builds to retry"
        )));
    }
    let mut raw = doc_of(state, &id)
        .and_then(|d| d.get("input").and_then(Value::as_object).cloned())
        .ok_or_else(|| batch_not_found(&id))?;
    raw.remove("idempotencyToken");
    if let Some(t) = idempotency_token {
        raw.insert("idempotencyToken".into(), json!(t));
    }
    start(ctx, raw, Some(Retry { prior: batch, kind })).await
}

pub(crate) fn delete_build_batch(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: IdInput = parse(body)?;
    let id = batch_id(&input.id);
    let state = &ctx.state;
    if state.builds.batch(&id).is_some() {
        return Err(ApiError::InvalidInput(format!(
            "Build batch {id} is in progress: stop it before deleting it"
        )));
    }
    // The model gives DeleteBuildBatch no ResourceNotFoundException.
    let batch = state
        .builds
        .batch_record(&id)
        .ok_or_else(|| ApiError::InvalidInput(batch_not_found(&id).to_string()))?;
    let builds: Vec<String> = batch
        .build_groups
        .iter()
        .filter_map(|g| g.current_build_summary.as_ref()?.arn.as_deref())
        .map(|arn| {
            arn.split_once(":build/")
                .map_or(arn, |(_, rest)| rest)
                .to_owned()
        })
        .collect();
    let db = state.history.db();
    let (deleted, missing) = db.delete_builds(&builds).map_err(ApiError::db)?;
    for b in &deleted {
        codebuild::forget_document(db, codebuild::BUILD_DOC, b);
    }
    state.history.delete_batch(&id).map_err(ApiError::db)?;
    codebuild::forget_document(db, BATCH_DOC, &id);
    let not_deleted: Vec<Value> = missing
        .iter()
        .map(|b| json!({"id": b, "statusCode": "BUILD_NOT_FOUND"}))
        .collect();
    Ok(without_empty(json!({
        "statusCode": "BATCH_DELETED",
        "buildsDeleted": deleted,
        "buildsNotDeleted": not_deleted,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_may_be_arns() {
        assert_eq!(
            batch_id("arn:aws:codebuild:us-east-1:000000000000:build-batch/p:u-1"),
            "p:u-1"
        );
        assert_eq!(batch_id("p:u-1"), "p:u-1");
    }

    #[test]
    fn buildspec_paths_stay_inside_the_source() {
        assert!(inside("ci/buildspec.yml").is_ok());
        assert!(inside("../x.yml").is_err());
        assert!(inside("/etc/x.yml").is_err());
    }

    #[test]
    fn the_batch_timeout_maps_to_the_build_timeout() {
        let raw = json!({"projectName": "p", "buildTimeoutInMinutesOverride": 9,
                         "buildBatchConfigOverride": {"combineArtifacts": true}});
        let input = build_input(raw.as_object().unwrap()).unwrap();
        assert_eq!(input.project_name, "p");
        let (combine, max, timeout) =
            batch_settings(&Map::new(), raw.get("buildBatchConfigOverride")).unwrap();
        assert!(combine);
        assert_eq!((max, timeout), (None, None));
    }

    #[test]
    fn the_batch_config_gives_the_batch_timeout() {
        let project = json!({"buildBatchConfig": {"timeoutInMins": 30}});
        let (_, _, timeout) = batch_settings(project.as_object().unwrap(), None).unwrap();
        assert_eq!(timeout, Some(Duration::from_secs(1800)));
        let bad = json!({"buildBatchConfig": {"timeoutInMins": 0}});
        let err = batch_settings(bad.as_object().unwrap(), None).unwrap_err();
        assert!(err.to_string().contains("timeoutInMins"), "{err}");
    }
}
