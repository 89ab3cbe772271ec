//! CodeBuild's JSON API: the wire layer over the history database and the build service
//! (`localbuild_service`).
//!
//! Projects ([`projects`]) are the service's (`localbuild_service::projects`, which keeps them
//! as CodeBuild's `Project` JSON); this layer decodes the requests into its types and encodes
//! the answers. [`start`] decodes StartBuild's overrides, has the service make the engine's
//! request from the project, lays the CodeBuild fields over the record and hands the request
//! to the build service, which accepts it (number claimed, recorded QUEUED), queues it and
//! answers for it while it is live; afterwards the database does. Every build leaves a document (`codebuild.build-input`) with the
//! `StartBuild` input and the CodeBuild fields the engine's record does not carry (the
//! project's source and environment, `serviceRole`, `sourceVersion`), laid over the record in
//! every response by [`present`], which also drops localbuild's `logs.localPath` and points
//! `logs.deepLink` at this server.

use crate::error::ApiError;
use crate::protocol::{json, parse, unknown};
use crate::{AppState, Ctx};
use localbuild_engine::BuildRequest;
use localbuild_engine::record::{Build, PhaseType};
use localbuild_engine::request::check_project_name;
use localbuild_service::{BuildTicket, StartBuild};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The document kind holding each build's `StartBuild` input and overlay.
pub(crate) const BUILD_DOC: &str = "codebuild.build-input";

mod projects;
mod start;

use projects::{batch_get_projects, create_project, delete_project, list_projects, update_project};
use start::start_build;
pub(crate) use start::{StartBuildInput, pipeline_input, prepare, start_for_pipeline};

/// Run one CodeBuild operation.
pub async fn call(ctx: &Ctx, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "CreateProject" => create_project(ctx, body),
        "UpdateProject" => update_project(ctx, body),
        "DeleteProject" => delete_project(ctx, body),
        "BatchGetProjects" => batch_get_projects(ctx, body),
        "ListProjects" => list_projects(ctx, body),
        "StartBuild" => start_build(ctx, parse(body)?, None),
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

// ---------------------------------------------------------------------------------------
// Projects

pub(crate) fn check_name(name: &str) -> Result<(), ApiError> {
    Ok(localbuild_service::projects::check_name(name)?)
}

pub(crate) fn object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match parse::<Value>(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::Serialization(
            "Invalid request body: expected a JSON object".into(),
        )),
    }
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

pub(crate) fn project_not_found(ctx: &Ctx, name: &str) -> ApiError {
    ctx.state.projects.not_found(&ctx.region, name).into()
}

// ---------------------------------------------------------------------------------------
// Builds

/// A record as the API returns it.
pub(crate) fn present(state: &AppState, build: &Build, overlay: Option<&Value>) -> Value {
    let mut b = build.clone();
    // Right after submission the engine has not begun SUBMITTED yet: answer as CodeBuild.
    if b.phases.is_empty() {
        b.phases = localbuild_service::record::queued_phases(b.start_time);
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
        // The record's own region and account (a record keeps what it says).
        let mut parts = build.arn.split(':');
        let region = parts.nth(3).unwrap_or("us-east-1");
        let account = parts.next().unwrap_or(localbuild_engine::ACCOUNT_ID);
        logs.insert(
            "cloudWatchLogsArn".into(),
            json!(format!(
                "arn:aws:logs:{region}:{account}:log-group:{}:log-stream:{}",
                build.logs.group_name, build.logs.stream_name
            )),
        );
    }
    v
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

fn presented(state: &AppState, id: &str) -> Option<Value> {
    let build = state.builds.record(id)?;
    Some(present(state, &build, overlay_of(state, id).as_ref()))
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
        let exists = ctx.state.projects.exists(&name)?;
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
    let id = stop(ctx, &input.id).await?;
    let build = presented(&ctx.state, &id).ok_or_else(|| build_not_found(&id))?;
    Ok(json!({ "build": build }))
}

/// StopBuild: stop build `id` (an id or ARN) and wait for it to end; its id.
pub(crate) async fn stop(ctx: &Ctx, id: &str) -> Result<String, ApiError> {
    let id = build_id(id);
    ctx.state.builds.stop(&id).await;
    if ctx.state.builds.record(&id).is_none() {
        return Err(build_not_found(&id));
    }
    Ok(id)
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
    Ok(start::answer(
        ctx,
        retry(ctx, &id, input.idempotency_token)?,
    ))
}

/// RetryBuild: build `id` again with the same input, as a new build.
pub(crate) fn retry(
    ctx: &Ctx,
    id: &str,
    idempotency_token: Option<String>,
) -> Result<start::Started, ApiError> {
    let Some(mut original) = input_of(&ctx.state, id) else {
        return Err(build_not_found(id));
    };
    original.idempotency_token = idempotency_token;
    start::accept(ctx, original, Some(id))
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
        if state.builds.is_live(&id) {
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
        forget_document(state.history.db(), BUILD_DOC, id);
    }
    for id in missing {
        not_deleted.push(json!({"id": id, "statusCode": "BUILD_NOT_FOUND"}));
    }
    json(&without_empty(
        json!({"buildsDeleted": deleted, "buildsNotDeleted": not_deleted}),
    ))
}

/// Delete the API document kept beside a build or batch whose record is already gone: a
/// failure leaves an orphan the history no longer lists, so it is reported on serve's log and
/// the deletion the caller asked for stands.
pub(crate) fn forget_document(db: &localbuild_store::Db, kind: &str, key: &str) {
    if let Err(e) = db.delete_doc(kind, key) {
        tracing::error!("{kind} {key}: its document could not be deleted from the history: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::projects::checked_project_name;
    use super::*;

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
