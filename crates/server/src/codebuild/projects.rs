//! CodeBuild's project operations: CreateProject, UpdateProject, DeleteProject,
//! BatchGetProjects, ListProjects, and the checks of a project's fields. A project is kept as
//! the JSON the client sent with the computed fields laid over it.

use super::start::resolve_source;
use super::*;

/// The checked fields of CreateProject / UpdateProject (the rest is kept as sent).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ProjectInput {
    name: String,
    source: Option<ProjectSource>,
    artifacts: Option<Value>,
    environment: Option<ProjectEnvironment>,
    service_role: Option<String>,
    secondary_sources: Option<Vec<ProjectSource>>,
    secondary_artifacts: Option<Vec<Value>>,
    cache: Option<Value>,
    timeout_in_minutes: Option<i64>,
    queued_timeout_in_minutes: Option<i64>,
    concurrent_build_limit: Option<i64>,
    tags: Option<Vec<crate::tags::Tag>>,
}

/// A project's `artifacts` (or one of its `secondaryArtifacts`, or a StartBuild override;
/// `field` names which in the message): CodeBuild's types, and for S3 a bucket name by S3's
/// rule and a relative `path` and `name` (they become a key, so a folder under the S3 root).
pub(super) fn check_artifacts(field: &str, a: &Value) -> Result<(), ApiError> {
    let get = |k: &str| a.get(k).and_then(Value::as_str);
    let invalid = |m: String| Err(ApiError::InvalidInput(format!("Invalid {field}: {m}")));
    if !a.is_object() {
        return invalid("expected a ProjectArtifacts structure".to_owned());
    }
    for key in ["overrideArtifactName", "encryptionDisabled"] {
        if a.get(key).is_some_and(|v| !v.is_boolean()) {
            return invalid(format!("{key} must be a boolean"));
        }
    }
    match get("type") {
        Some("NO_ARTIFACTS" | "CODEPIPELINE")
            if a.get("encryptionDisabled") == Some(&Value::Bool(true)) =>
        {
            // ProjectArtifacts: "valid only if your artifacts type is Amazon S3".
            return invalid("encryptionDisabled is valid only for type S3".to_owned());
        }
        Some("NO_ARTIFACTS" | "CODEPIPELINE") => return Ok(()),
        Some("S3") => {}
        other => {
            return invalid(format!(
                "type {other:?} is not one of NO_ARTIFACTS, S3, CODEPIPELINE"
            ));
        }
    }
    let Some(bucket) = get("location").filter(|l| !l.is_empty()) else {
        return invalid("location (the bucket) is required for type S3".to_owned());
    };
    if let Err(e) = localbuild_aws::s3::check_bucket_name(bucket) {
        return invalid(format!("location: {e}"));
    }
    for key in ["path", "name"] {
        if let Some(v) = get(key).filter(|v| !v.is_empty())
            && let Err(e) = localbuild_confine::relative(key, v.trim_matches('/'))
        {
            return invalid(format!("{key}: {e}"));
        }
    }
    if let Some(ns) = get("namespaceType").filter(|n| !matches!(*n, "NONE" | "BUILD_ID")) {
        return invalid(format!("namespaceType {ns:?} is not one of NONE, BUILD_ID"));
    }
    if let Some(p) = get("packaging").filter(|p| !matches!(*p, "NONE" | "ZIP")) {
        return invalid(format!("packaging {p:?} is not one of NONE, ZIP"));
    }
    Ok(())
}

/// Secondary artifacts (the project's or `secondaryArtifactsOverride`): each one checked, with
/// an `artifactIdentifier` by the buildspec's rule, no identifier twice.
pub(super) fn check_secondary_artifacts(field: &str, list: &[Value]) -> Result<(), ApiError> {
    let mut seen = std::collections::BTreeSet::new();
    for a in list {
        let id = a["artifactIdentifier"].as_str().unwrap_or_default();
        if let Err(why) = localbuild_buildspec::names::artifact_identifier(id) {
            return Err(ApiError::InvalidInput(format!(
                "Invalid {field} artifactIdentifier: {id:?}: {why}"
            )));
        }
        if a["type"] == "CODEPIPELINE" {
            return Err(ApiError::InvalidInput(format!(
                "Invalid {field}: type CODEPIPELINE is not supported for secondary artifacts ({id})"
            )));
        }
        if !seen.insert(id) {
            return Err(ApiError::InvalidInput(format!(
                "Invalid {field}: artifactIdentifier {id:?} is used more than once"
            )));
        }
        check_artifacts(field, a)?;
    }
    Ok(())
}

/// A project's `cache` (or `cacheOverride`): CodeBuild's types; for S3 a `location` of
/// `bucket[/prefix]`, the bucket by S3's rule and the prefix a relative key.
pub(super) fn check_cache(field: &str, c: &Value) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::InvalidInput(format!("Invalid {field}: {m}")));
    if !c.is_object() {
        return invalid("expected a ProjectCache structure".to_owned());
    }
    match c.get("type").and_then(Value::as_str) {
        Some("NO_CACHE" | "LOCAL") => Ok(()),
        Some("S3") => {
            let Some(location) = c
                .get("location")
                .and_then(Value::as_str)
                .map(|l| l.trim_end_matches('/'))
                .filter(|l| !l.is_empty())
            else {
                return invalid("location (bucket[/prefix]) is required for type S3".to_owned());
            };
            let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
            if let Err(e) = localbuild_aws::s3::check_bucket_name(bucket) {
                return invalid(format!("location: {e}"));
            }
            if !prefix.is_empty()
                && let Err(e) = localbuild_confine::relative("location", prefix)
            {
                return invalid(format!("location: {e}"));
            }
            Ok(())
        }
        other => invalid(format!("type {other:?} is not one of NO_CACHE, S3, LOCAL")),
    }
}

pub(super) fn check_project(p: &ProjectInput, create: bool) -> Result<(), ApiError> {
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
        check_artifacts("artifacts", a)?;
    }
    check_secondary_artifacts(
        "secondaryArtifacts",
        p.secondary_artifacts.as_deref().unwrap_or_default(),
    )?;
    if let Some(c) = &p.cache {
        check_cache("cache", c)?;
    }
    Ok(())
}

/// A project's source location must be well formed and must not name a path on this machine
/// (CreateProject, UpdateProject); it need not exist yet: a build of a location that resolves
/// to nothing fails in DOWNLOAD_SOURCE (see [`resolve_source`]).
pub(super) fn check_location(ctx: &Ctx, source: Option<&ProjectSource>) -> Result<(), ApiError> {
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

/// The computed fields of a stored project over what the client sent.
pub(super) fn overlay_project(
    ctx: &Ctx,
    mut p: Map<String, Value>,
    created: f64,
    modified: f64,
) -> Value {
    let name = p
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    p.insert("arn".into(), json!(project_arn(ctx, &name)));
    p.insert("created".into(), json!(created));
    p.insert("lastModified".into(), json!(modified));
    p.entry("timeoutInMinutes").or_insert(json!(60));
    p.entry("queuedTimeoutInMinutes").or_insert(json!(480));
    p.entry("secondarySources").or_insert(json!([]));
    p.entry("secondaryArtifacts").or_insert(json!([]));
    p.entry("secondarySourceVersions").or_insert(json!([]));
    p.entry("cache").or_insert(json!({"type": "NO_CACHE"}));
    p.entry("encryptionKey").or_insert(json!(format!(
        "arn:aws:kms:{}:{}:alias/aws/s3",
        ctx.region,
        ctx.account()
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

pub(super) fn create_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ProjectInput = parse(body)?;
    check_project(&input, true)?;
    check_location(ctx, input.source.as_ref())?;
    let raw = object(body)?;
    let at = localbuild_service::record::now();
    let project = overlay_project(ctx, raw, at, at);
    let db = ctx.state.history.db();
    match db.create_project(&input.name, &project.to_string(), at) {
        Ok(()) => Ok(json!({ "project": project })),
        Err(localbuild_store::DbError::AlreadyExists { .. }) => {
            Err(ApiError::ResourceAlreadyExists(format!(
                "Project already exists: {}",
                project_arn(ctx, &input.name)
            )))
        }
        Err(e) => Err(ApiError::db(e)),
    }
}

pub(super) fn update_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
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
    let at = localbuild_service::record::now();
    let project = overlay_project(ctx, merged, created, at);
    db.update_project(&input.name, &project.to_string(), at)
        .map_err(ApiError::db)?;
    Ok(json!({ "project": project }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NameInput {
    name: String,
}

pub(super) fn delete_project(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
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
pub(super) struct NamesInput {
    names: Vec<String>,
}

pub(super) fn batch_get_projects(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
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
pub(super) fn checked_project_name(given: &str) -> Result<String, ApiError> {
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
pub(super) struct ListProjectsInput {
    sort_by: Option<String>,
    sort_order: Option<String>,
    next_token: Option<String>,
}

pub(super) fn list_projects(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
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
