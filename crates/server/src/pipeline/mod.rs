//! CodePipeline on the same server (`X-Amz-Target: CodePipeline_20150709.*`), and the
//! connections its source actions name ([`connections`]).
//!
//! * [`machine`] — the pure state machine of one execution (stages, runOrder, failure, stop,
//!   supersede), `localbuild_pipeline::machine` re-exported; the declaration and its checks
//!   (`normalise`, the providers localbuild can run) are `localbuild_pipeline`'s too.
//! * this module — the operations: requests decoded, declarations handed to `normalise`,
//!   answers encoded (`wire` for the executor's records). Pipelines and executions are
//!   documents of the docs table (`exec/docs.rs` in `localbuild-pipeline`): `codepipeline.pipeline`
//!   (key: name; plus `codepipeline.pipeline-version`, key `name/version`),
//!   `codepipeline.execution` (key `name/executionId`) and `codepipeline.transition` (key
//!   `name/stage/Inbound|Outbound`, only disabled ones). Operations that change executions
//!   (approve, stop, retry, transitions) are plain functions over a [`Ctx`] (e.g.
//!   [`put_approval`], [`retry_stage`], [`set_transition`], [`stop_execution`],
//!   [`pipeline_state`]); the console's buttons (through [`call`]) and the CLI (through the
//!   running server) reach the same code as the API.
//! * [`exec`] — the executor, `localbuild_pipeline::exec` (one task per execution, one
//!   provider per action type, the artifact store, the source watcher); `hooks` is this
//!   server's side of its traits (builds through StartBuild's path, ECS deploys, ECR pulls).

pub mod connections;
mod hooks;
mod wire;
pub use localbuild_pipeline::exec;

pub use localbuild_pipeline::declaration::*;
pub use localbuild_pipeline::machine;
pub use localbuild_pipeline::{DefinitionError, normalise, read_definition};

use crate::error::ApiError;
use crate::protocol::{parse, unknown};
use crate::{AppState, Ctx};
use localbuild_store::Db;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use wire::{ActionWire, ExecutionWire};

pub(crate) use exec::{
    EXECUTION_DOC, PIPELINE_DOC, Stored, TRANSITION_DOC, VERSION_DOC, gates, now, transitions,
};

/// The executor over this server's state (held weakly: the state owns the executor).
pub(crate) fn executor(
    state: &std::sync::Weak<AppState>,
    history: &localbuild_store::HistoryStore,
    roots: &localbuild_sources::Roots,
) -> std::sync::Arc<exec::Executor> {
    let hooks = std::sync::Arc::new(hooks::Hooks(state.clone()));
    std::sync::Arc::new(exec::Executor::new(
        history.db().clone(),
        roots.clone(),
        history.root().join("tmp"),
        hooks.clone(),
        hooks,
    ))
}

impl Ctx {
    /// The executor's context for this call (its region).
    pub(crate) fn pipe(&self) -> exec::Ctx {
        exec::Ctx {
            exec: self.state.pipelines.clone(),
            region: self.region.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Operations

/// Run one CodePipeline operation.
pub async fn call(ctx: &Ctx, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "CreatePipeline" => create_pipeline(ctx, body),
        "GetPipeline" => get_pipeline(ctx, body),
        "UpdatePipeline" => update_pipeline(ctx, body),
        "DeletePipeline" => delete_pipeline(ctx, body),
        "ListPipelines" => list_pipelines(ctx, body),
        "StartPipelineExecution" => start_pipeline_execution(ctx, body),
        "StopPipelineExecution" => stop_pipeline_execution(ctx, body),
        "GetPipelineState" => get_pipeline_state(ctx, body),
        "GetPipelineExecution" => get_pipeline_execution(ctx, body),
        "ListPipelineExecutions" => list_pipeline_executions(ctx, body),
        "ListActionExecutions" => list_action_executions(ctx, body),
        "PutApprovalResult" => put_approval_result(ctx, body),
        "RetryStageExecution" => retry_stage_execution(ctx, body),
        "DisableStageTransition" => transition(ctx, body, false),
        "EnableStageTransition" => transition(ctx, body, true),
        "TagResource" => tag_resource(ctx, body),
        "UntagResource" => untag_resource(ctx, body),
        "ListTagsForResource" => list_tags_for_resource(ctx, body),
        _ => Err(unknown(crate::protocol::CODEPIPELINE, op)),
    }
}

pub(crate) fn pipeline_arn(account: &str, region: &str, name: &str) -> String {
    format!("arn:aws:codepipeline:{region}:{account}:{name}")
}

pub(crate) fn load(db: &Db, name: &str) -> Result<Option<Stored>, ApiError> {
    exec::load(db, name).map_err(ApiError::db)
}

pub(crate) fn not_found(account: &str, name: &str) -> ApiError {
    ApiError::PipelineNotFound(format!(
        "Account '{account}' does not have a pipeline with name '{name}'"
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PipelineInput {
    pipeline: Value,
    #[serde(default)]
    tags: Option<Value>,
}

fn save(state: &AppState, name: &str, stored: &Stored) -> Result<(), ApiError> {
    let db = state.history.db();
    let version = stored.pipeline["version"].as_i64().unwrap_or(1);
    db.put_doc(
        VERSION_DOC,
        &format!("{name}/{version:010}"),
        &stored.pipeline.to_string(),
    )
    .map_err(ApiError::db)?;
    db.put_doc(PIPELINE_DOC, name, &json!(stored).to_string())
        .map_err(ApiError::db)?;
    state.pipelines.declared.notify_one();
    Ok(())
}

fn create_pipeline(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: PipelineInput = parse(body)?;
    let (pipeline, decl) = normalise(&input.pipeline, 1)?;
    let state = &ctx.state;
    if load(state.history.db(), &decl.name)?.is_some() {
        return Err(ApiError::PipelineNameInUse(format!(
            "A pipeline with the name '{}' already exists in account '{}'",
            decl.name,
            ctx.account()
        )));
    }
    let at = now();
    let stored = Stored {
        pipeline: pipeline.clone(),
        created: at,
        updated: at,
        region: ctx.region.clone(),
    };
    let tags = match input.tags {
        None | Some(Value::Null) => vec![],
        Some(t) => serde_json::from_value::<Vec<crate::tags::Tag>>(t).map_err(|e| {
            ApiError::Serialization(format!("Invalid tags: expected [{{key, value}}]: {e}"))
        })?,
    };
    crate::tags::check("tags", &tags).map_err(tag_error)?;
    save(state, &decl.name, &stored)?;
    crate::tags::save(state.history.db(), &decl.name, &tags)?;
    exec::start(&ctx.pipe(), &decl.name, "CreatePipeline", "", vec![])?;
    let mut out = json!({ "pipeline": pipeline });
    if !tags.is_empty() {
        out["tags"] = json!(tags);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetInput {
    name: String,
    #[serde(default)]
    version: Option<i64>,
}

fn get_pipeline(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: GetInput = parse(body)?;
    let stored = load(ctx.state.history.db(), &input.name)?
        .ok_or_else(|| not_found(ctx.account(), &input.name))?;
    let pipeline = match input.version {
        None => stored.pipeline.clone(),
        Some(v) => {
            let doc = ctx
                .state
                .history
                .db()
                .get_doc(VERSION_DOC, &format!("{}/{v:010}", input.name))
                .map_err(ApiError::db)?;
            doc.and_then(|d| serde_json::from_str(&d).ok())
                .ok_or_else(|| {
                    ApiError::PipelineVersionNotFound(format!(
                        "Pipeline '{}' has no version {v}",
                        input.name
                    ))
                })?
        }
    };
    Ok(json!({
        "pipeline": pipeline,
        "metadata": {
            "pipelineArn": pipeline_arn(ctx.account(), &stored.region, &input.name),
            "created": stored.created,
            "updated": stored.updated,
        }
    }))
}

fn update_pipeline(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: PipelineInput = parse(body)?;
    let name = input.pipeline["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let state = &ctx.state;
    let old = load(state.history.db(), &name)?.ok_or_else(|| not_found(ctx.account(), &name))?;
    let version = old.pipeline["version"].as_i64().unwrap_or(1) + 1;
    let (pipeline, _) = normalise(&input.pipeline, version)?;
    let stored = Stored {
        pipeline: pipeline.clone(),
        created: old.created,
        updated: now(),
        region: old.region,
    };
    save(state, &name, &stored)?;
    Ok(json!({ "pipeline": pipeline }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NameInput {
    name: String,
}

fn delete_pipeline(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: NameInput = parse(body)?;
    let state = &ctx.state;
    // Running executions stop; a missing pipeline is not an error (as CodePipeline).
    let running: Vec<_> = state
        .pipelines
        .lock()
        .values()
        .filter(|(p, _)| *p == input.name)
        .map(|(_, tx)| tx.clone())
        .collect();
    for tx in running {
        let _ = tx.send(exec::Msg::Stop {
            abandon: true,
            reason: Some("The pipeline was deleted".into()),
        });
    }
    let db = state.history.db();
    db.delete_doc(PIPELINE_DOC, &input.name)
        .map_err(ApiError::db)?;
    crate::tags::save(db, &input.name, &[])?;
    for (key, _) in db
        .list_docs(VERSION_DOC, &format!("{}/", input.name))
        .map_err(ApiError::db)?
    {
        db.delete_doc(VERSION_DOC, &key).map_err(ApiError::db)?;
    }
    for kind in [EXECUTION_DOC, TRANSITION_DOC] {
        for (key, _) in db
            .list_docs(kind, &format!("{}/", input.name))
            .map_err(ApiError::db)?
        {
            db.delete_doc(kind, &key).map_err(ApiError::db)?;
        }
    }
    Ok(json!({}))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PageInput {
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn page<T: Clone>(
    all: &[T],
    input: &PageInput,
    default: i64,
    max: i64,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = match input.next_token.as_deref() {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::Validation(format!("Invalid nextToken: {t}")))?,
    };
    let size = input.max_results.unwrap_or(default);
    if !(1..=max).contains(&size) {
        return Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{size}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {max}"
        )));
    }
    let size = usize::try_from(size).unwrap_or(1);
    let items = all.iter().skip(start).take(size).cloned().collect();
    let next = (start + size < all.len()).then(|| (start + size).to_string());
    Ok((items, next))
}

fn tag_error(p: crate::tags::TagProblem) -> ApiError {
    match p {
        crate::tags::TagProblem::Invalid(m) => ApiError::InvalidTags(m),
        crate::tags::TagProblem::TooMany(m) => ApiError::TooManyTags(m),
    }
}

/// The pipeline a `resourceArn` names (`arn:PARTITION:codepipeline:REGION:ACCOUNT:NAME`), which
/// must exist.
fn tagged_pipeline(ctx: &Ctx, arn: &str) -> Result<String, ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let name = match parts.as_slice() {
        ["arn", partition, "codepipeline", region, account, name]
            if !partition.is_empty()
                && !region.is_empty()
                && !account.is_empty()
                && !name.is_empty()
                && !name.contains(['/', ':']) =>
        {
            *name
        }
        _ => {
            return Err(ApiError::InvalidArn(format!(
                "Invalid resourceArn: {arn:?} is not a pipeline ARN (arn:aws:codepipeline:REGION:ACCOUNT:NAME)"
            )));
        }
    };
    if load(ctx.state.history.db(), name)?.is_none() {
        return Err(ApiError::ResourceNotFound(format!(
            "The resource with ARN {arn} was not found: account '{}' has no pipeline named '{name}'",
            ctx.account()
        )));
    }
    Ok(name.to_owned())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagInput {
    resource_arn: String,
    tags: Vec<crate::tags::Tag>,
}

fn tag_resource(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: TagInput = parse(body)?;
    let name = tagged_pipeline(ctx, &input.resource_arn)?;
    let db = ctx.state.history.db();
    let tags = crate::tags::merge(crate::tags::load(db, &name)?, input.tags);
    crate::tags::check("tags", &tags).map_err(tag_error)?;
    crate::tags::save(db, &name, &tags)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

fn untag_resource(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: UntagInput = parse(body)?;
    let name = tagged_pipeline(ctx, &input.resource_arn)?;
    let db = ctx.state.history.db();
    let tags = crate::tags::remove(crate::tags::load(db, &name)?, &input.tag_keys);
    crate::tags::save(db, &name, &tags)?;
    Ok(json!({}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTagsInput {
    resource_arn: String,
}

fn list_tags_for_resource(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ListTagsInput = parse(body)?;
    let name = tagged_pipeline(ctx, &input.resource_arn)?;
    let tags = crate::tags::load(ctx.state.history.db(), &name)?;
    Ok(json!({ "tags": tags }))
}

fn list_pipelines(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: PageInput = parse(body)?;
    let all = pipelines_in(ctx.state.history.db())?;
    let (items, next) = page(&all, &input, 1000, 1000)?;
    let mut out = json!({ "pipelines": items });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

/// Every pipeline as a `PipelineSummary`, by name (from the history alone).
pub fn pipelines_in(db: &Db) -> Result<Vec<Value>, ApiError> {
    let docs = db.list_docs(PIPELINE_DOC, "").map_err(ApiError::db)?;
    Ok(docs
        .into_iter()
        .filter_map(|(_, d)| serde_json::from_str::<Stored>(&d).ok())
        .map(|s| {
            json!({
                "name": s.pipeline["name"],
                "version": s.pipeline["version"],
                "pipelineType": s.pipeline["pipelineType"],
                "executionMode": s.pipeline["executionMode"],
                "created": s.created,
                "updated": s.updated,
            })
        })
        .collect())
}

/// A pipeline's `PipelineExecutionSummary`s, newest first (from the history alone).
/// `account` is the one named when the pipeline is not found.
pub fn executions_in(db: &Db, account: &str, pipeline: &str) -> Result<Vec<Value>, ApiError> {
    load(db, pipeline)?.ok_or_else(|| not_found(account, pipeline))?;
    Ok(exec::executions(db, pipeline)?
        .iter()
        .map(exec::Execution::summary)
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartInput {
    name: String,
    #[serde(default)]
    variables: Option<Vec<VarInput>>,
    #[serde(default)]
    #[allow(dead_code)]
    client_request_token: Option<String>,
}

#[derive(Deserialize)]
struct VarInput {
    name: String,
    value: String,
}

fn start_pipeline_execution(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: StartInput = parse(body)?;
    let vars = input
        .variables
        .unwrap_or_default()
        .into_iter()
        .map(|v| (v.name, v.value))
        .collect();
    let id = start_execution(ctx, &input.name, vars)?;
    Ok(json!({ "pipelineExecutionId": id }))
}

/// StartPipelineExecution: a new execution with these pipeline variable values (each must be
/// declared; undeclared ones without a default must be given); its id.
pub fn start_execution(
    ctx: &Ctx,
    pipeline: &str,
    vars: Vec<(String, String)>,
) -> Result<String, ApiError> {
    let stored = load(ctx.state.history.db(), pipeline)?
        .ok_or_else(|| not_found(ctx.account(), pipeline))?;
    let decl = stored.declaration().ok_or_else(|| {
        ApiError::Service(format!("the stored pipeline {pipeline} is unreadable"))
    })?;
    let declared = decl.variables.clone().unwrap_or_default();
    for (name, _) in &vars {
        if !declared.iter().any(|v| &v.name == name) {
            return Err(ApiError::Validation(format!(
                "Variable '{name}' is not declared in pipeline '{pipeline}'"
            )));
        }
    }
    for v in &declared {
        if v.default_value.is_none() && !vars.iter().any(|(n, _)| *n == v.name) {
            return Err(ApiError::Validation(format!(
                "Variable '{}' of pipeline '{pipeline}' has no default value: give it a value",
                v.name
            )));
        }
    }
    Ok(exec::start(
        &ctx.pipe(),
        pipeline,
        "StartPipelineExecution",
        "",
        vars,
    )?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StopInput {
    pipeline_name: String,
    pipeline_execution_id: String,
    #[serde(default)]
    abandon: Option<bool>,
    #[serde(default)]
    reason: Option<String>,
}

fn stop_pipeline_execution(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: StopInput = parse(body)?;
    stop_execution(
        ctx,
        &input.pipeline_name,
        &input.pipeline_execution_id,
        input.abandon.unwrap_or(false),
        input.reason,
    )?;
    Ok(json!({ "pipelineExecutionId": input.pipeline_execution_id }))
}

/// StopPipelineExecution: stop and wait for running actions, or abandon them.
pub fn stop_execution(
    ctx: &Ctx,
    pipeline: &str,
    id: &str,
    abandon: bool,
    reason: Option<String>,
) -> Result<(), ApiError> {
    load(ctx.state.history.db(), pipeline)?.ok_or_else(|| not_found(ctx.account(), pipeline))?;
    let e = exec::load_execution(ctx.state.history.db(), pipeline, id)?
        .ok_or_else(|| execution_not_found(pipeline, id))?;
    let live = ctx.state.pipelines.lock().get(id).map(|(_, tx)| tx.clone());
    match live {
        Some(_) if e.status == machine::ExecStatus::Stopping && !abandon => {
            Err(ApiError::DuplicatedStopRequest(format!(
                "Execution {id} is already stopping; stop it again with abandon to abandon its running actions"
            )))
        }
        Some(tx) if !e.status.is_final() => {
            let _ = tx.send(exec::Msg::Stop { abandon, reason });
            Ok(())
        }
        _ => Err(ApiError::PipelineExecutionNotStoppable(format!(
            "Unable to stop pipeline execution {id}: its status is {:?}, not InProgress",
            e.status
        ))),
    }
}

fn execution_not_found(pipeline: &str, id: &str) -> ApiError {
    ApiError::PipelineExecutionNotFound(format!(
        "Pipeline execution with id '{id}' for pipeline '{pipeline}' not found"
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecInput {
    pipeline_name: String,
    pipeline_execution_id: String,
}

fn get_pipeline_execution(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ExecInput = parse(body)?;
    load(ctx.state.history.db(), &input.pipeline_name)?
        .ok_or_else(|| not_found(ctx.account(), &input.pipeline_name))?;
    let e = exec::load_execution(
        ctx.state.history.db(),
        &input.pipeline_name,
        &input.pipeline_execution_id,
    )?
    .ok_or_else(|| execution_not_found(&input.pipeline_name, &input.pipeline_execution_id))?;
    Ok(json!({ "pipelineExecution": e.execution() }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListExecInput {
    pipeline_name: String,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
}

fn list_pipeline_executions(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ListExecInput = parse(body)?;
    load(ctx.state.history.db(), &input.pipeline_name)?
        .ok_or_else(|| not_found(ctx.account(), &input.pipeline_name))?;
    let all: Vec<Value> = exec::executions(ctx.state.history.db(), &input.pipeline_name)?
        .iter()
        .map(exec::Execution::summary)
        .collect();
    let (items, next) = page(
        &all,
        &PageInput {
            max_results: input.max_results,
            next_token: input.next_token,
        },
        100,
        100,
    )?;
    let mut out = json!({ "pipelineExecutionSummaries": items });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}

fn get_pipeline_state(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: NameInput = parse(body)?;
    pipeline_state(ctx, &input.name)
}

/// GetPipelineState: every stage with its inbound transition, the newest execution that
/// reached it and its actions' latest executions.
pub fn pipeline_state(ctx: &Ctx, name: &str) -> Result<Value, ApiError> {
    pipeline_state_in(ctx.state.history.db(), ctx.account(), name)
}

/// [`pipeline_state`] from the history alone (no server needed: `localbuild pipeline status`).
/// `account` is the one named when the pipeline is not found.
pub fn pipeline_state_in(db: &Db, account: &str, name: &str) -> Result<Value, ApiError> {
    let input = NameInput {
        name: name.to_owned(),
    };
    let stored = load(db, &input.name)?.ok_or_else(|| not_found(account, &input.name))?;
    let execs = exec::executions(db, &input.name)?;
    let disabled = transitions(db, &input.name);
    let mut stages = vec![];
    if let Some(Value::Array(decl_stages)) = stored.pipeline.get("stages") {
        for s in decl_stages {
            let name = s["name"].as_str().unwrap_or_default();
            // Each stage shows the newest execution that reached it.
            let reached = execs.iter().find_map(|e| {
                e.stages
                    .iter()
                    .find(|st| st.name == name && st.status.is_some())
                    .map(|st| (e, st))
            });
            let mut state = Map::new();
            state.insert("stageName".into(), json!(name));
            let inbound = disabled
                .iter()
                .find(|(s, kind, _)| s == name && kind == "Inbound")
                .map(|(_, _, v)| v.clone())
                .unwrap_or_else(|| json!({"enabled": true}));
            state.insert("inboundTransitionState".into(), inbound);
            let mut actions = vec![];
            for a in s["actions"].as_array().into_iter().flatten() {
                let aname = a["name"].as_str().unwrap_or_default();
                let mut st = json!({ "actionName": aname });
                if let Some((_, stage)) = reached
                    && let Some(rec) = stage.actions.iter().find(|r| r.name == aname)
                {
                    if let Some(latest) = rec.latest() {
                        st["latestExecution"] = latest;
                    }
                    if let Some(rev) = &rec.revision {
                        st["currentRevision"] = json!({
                            "revisionId": rev,
                            "revisionChangeId": rev,
                            "created": rec.last_change,
                        });
                    }
                    if let Some(url) = &rec.entity_url {
                        st["entityUrl"] = json!(url);
                    }
                }
                actions.push(st);
            }
            state.insert("actionStates".into(), json!(actions));
            if let Some((e, stage)) = reached {
                state.insert(
                    "latestExecution".into(),
                    json!({
                        "pipelineExecutionId": e.id,
                        "status": stage.status,
                    }),
                );
            }
            stages.push(Value::Object(state));
        }
    }
    Ok(json!({
        "pipelineName": input.name,
        "pipelineVersion": stored.pipeline["version"],
        "stageStates": stages,
        "created": stored.created,
        "updated": stored.updated,
    }))
}

// ---------------------------------------------------------------------------------------
// Transitions, approvals, retries, action executions

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TransitionInput {
    pipeline_name: String,
    stage_name: String,
    transition_type: String,
    #[serde(default)]
    reason: Option<String>,
}

fn transition(ctx: &Ctx, body: &[u8], enable: bool) -> Result<Value, ApiError> {
    let input: TransitionInput = parse(body)?;
    let reason = if enable {
        None
    } else {
        Some(input.reason.ok_or_else(|| {
            ApiError::Validation(
                "1 validation error detected: Value null at 'reason' failed to satisfy constraint: Member must not be null".into(),
            )
        })?)
    };
    set_transition(
        ctx,
        &input.pipeline_name,
        &input.stage_name,
        &input.transition_type,
        reason.as_deref(),
    )?;
    Ok(Value::Null)
}

/// DisableStageTransition (`disabled_reason` given) / EnableStageTransition (`None`).
/// Executions held before the stage go on once it is enabled.
pub fn set_transition(
    ctx: &Ctx,
    pipeline: &str,
    stage: &str,
    kind: &str,
    disabled_reason: Option<&str>,
) -> Result<(), ApiError> {
    let stored = load(ctx.state.history.db(), pipeline)?
        .ok_or_else(|| not_found(ctx.account(), pipeline))?;
    let decl = stored.declaration().ok_or_else(|| {
        ApiError::Service(format!("the stored pipeline {pipeline} is unreadable"))
    })?;
    if !["Inbound", "Outbound"].contains(&kind) {
        return Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{kind}' at 'transitionType' failed to satisfy constraint: Member must satisfy enum value set: [Inbound, Outbound]"
        )));
    }
    if let Some(r) = disabled_reason
        && (r.is_empty()
            || r.len() > 300
            || !r
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!@ ().*?-".contains(c)))
    {
        return Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{r}' at 'reason' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9!@ \\(\\)\\.\\*\\?\\-]+ (1 to 300 characters)"
        )));
    }
    if !decl.stages.iter().any(|s| s.name == stage) {
        return Err(stage_not_found(pipeline, stage));
    }
    let key = format!("{pipeline}/{stage}/{kind}");
    let db = ctx.state.history.db();
    match disabled_reason {
        Some(r) => db
            .put_doc(
                TRANSITION_DOC,
                &key,
                &json!({"enabled": false, "disabledReason": r, "lastChangedBy": "localbuild", "lastChangedAt": now()})
                    .to_string(),
            )
            .map_err(ApiError::db)?,
        None => {
            db.delete_doc(TRANSITION_DOC, &key).map_err(ApiError::db)?;
        }
    }
    let g = gates(ctx.state.history.db(), pipeline, &decl);
    for (_, tx) in ctx.state.pipelines.of(pipeline) {
        let _ = tx.send(exec::Msg::Gates(g.clone()));
    }
    Ok(())
}

fn stage_not_found(pipeline: &str, stage: &str) -> ApiError {
    ApiError::StageNotFound(format!(
        "Stage '{stage}' was not found in pipeline '{pipeline}'"
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApprovalInput {
    pipeline_name: String,
    stage_name: String,
    action_name: String,
    result: ApprovalResultInput,
    token: String,
}

#[derive(Deserialize)]
struct ApprovalResultInput {
    summary: String,
    status: String,
}

fn put_approval_result(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ApprovalInput = parse(body)?;
    let approved = match input.result.status.as_str() {
        "Approved" => true,
        "Rejected" => false,
        other => {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'result.status' failed to satisfy constraint: Member must satisfy enum value set: [Approved, Rejected]"
            )));
        }
    };
    let at = put_approval(
        ctx,
        &input.pipeline_name,
        &input.stage_name,
        &input.action_name,
        &input.token,
        approved,
        &input.result.summary,
    )?;
    Ok(json!({ "approvedAt": at }))
}

/// PutApprovalResult: answer the approval action waiting with `token`; when it was answered.
pub fn put_approval(
    ctx: &Ctx,
    pipeline: &str,
    stage: &str,
    action: &str,
    token: &str,
    approved: bool,
    summary: &str,
) -> Result<f64, ApiError> {
    let stored = load(ctx.state.history.db(), pipeline)?
        .ok_or_else(|| not_found(ctx.account(), pipeline))?;
    let decl = stored.declaration().ok_or_else(|| {
        ApiError::Service(format!("the stored pipeline {pipeline} is unreadable"))
    })?;
    let si = decl
        .stages
        .iter()
        .position(|s| s.name == stage)
        .ok_or_else(|| stage_not_found(pipeline, stage))?;
    let ai = decl.stages[si]
        .actions
        .iter()
        .position(|a| a.name == action)
        .ok_or_else(|| {
            ApiError::ActionNotFound(format!(
                "Action '{action}' was not found in stage '{stage}' of pipeline '{pipeline}'"
            ))
        })?;
    if decl.stages[si].actions[ai].action_type_id.category != "Approval" {
        return Err(ApiError::InvalidApprovalToken(format!(
            "Action '{action}' in stage '{stage}' is not a manual approval action"
        )));
    }
    if summary.len() > 512 {
        return Err(ApiError::Validation(
            "1 validation error detected: Value at 'result.summary' failed to satisfy constraint: Member must have length less than or equal to 512".into(),
        ));
    }
    for e in exec::executions(ctx.state.history.db(), pipeline)? {
        let Some(rec) = e
            .stages
            .iter()
            .find(|s| s.name == stage)
            .and_then(|s| s.actions.iter().find(|a| a.name == action))
        else {
            continue;
        };
        if rec.token.as_deref() != Some(token) {
            continue;
        }
        let live = ctx
            .state
            .pipelines
            .lock()
            .get(&e.id)
            .map(|(_, tx)| tx.clone());
        return match (rec.status, live) {
            (Some(machine::ActionStatus::InProgress), Some(tx)) => {
                let _ = tx.send(exec::Msg::Approve {
                    a: (si, ai),
                    token: token.to_owned(),
                    approved,
                    summary: summary.to_owned(),
                });
                Ok(now())
            }
            _ => Err(ApiError::ApprovalAlreadyCompleted(format!(
                "The approval action '{action}' in stage '{stage}' of execution {} is no longer waiting for a response",
                e.id
            ))),
        };
    }
    Err(ApiError::InvalidApprovalToken(format!(
        "The token '{token}' is not the token of a waiting approval action '{action}' in stage '{stage}' of pipeline '{pipeline}'"
    )))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryInput {
    pipeline_name: String,
    stage_name: String,
    pipeline_execution_id: String,
    retry_mode: String,
}

fn retry_stage_execution(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: RetryInput = parse(body)?;
    let all = match input.retry_mode.as_str() {
        "FAILED_ACTIONS" => false,
        "ALL_ACTIONS" => true,
        other => {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{other}' at 'retryMode' failed to satisfy constraint: Member must satisfy enum value set: [FAILED_ACTIONS, ALL_ACTIONS]"
            )));
        }
    };
    retry_stage(
        ctx,
        &input.pipeline_name,
        &input.stage_name,
        &input.pipeline_execution_id,
        all,
    )?;
    Ok(json!({ "pipelineExecutionId": input.pipeline_execution_id }))
}

/// RetryStageExecution: the stage's failed actions (or `all` of them) run again in the same
/// execution, which is InProgress again.
pub fn retry_stage(
    ctx: &Ctx,
    pipeline: &str,
    stage: &str,
    id: &str,
    all: bool,
) -> Result<(), ApiError> {
    let stored = load(ctx.state.history.db(), pipeline)?
        .ok_or_else(|| not_found(ctx.account(), pipeline))?;
    let e = exec::load_execution(ctx.state.history.db(), pipeline, id)?
        .ok_or_else(|| execution_not_found(pipeline, id))?;
    let si = e
        .stages
        .iter()
        .position(|s| s.name == stage)
        .ok_or_else(|| stage_not_found(pipeline, stage))?;
    if ctx.state.pipelines.lock().contains_key(id) || !e.status.is_final() {
        return Err(ApiError::Conflict(format!(
            "Execution {id} is still in progress; only a Failed or Stopped execution can be retried"
        )));
    }
    if stored.pipeline["version"].as_i64() != Some(e.version) {
        return Err(ApiError::StageNotRetryable(format!(
            "Stage '{stage}' of execution {id} cannot be retried: the pipeline was updated since (version {} now, {} then)",
            stored.pipeline["version"], e.version
        )));
    }
    let newer = exec::executions(ctx.state.history.db(), pipeline)?
        .into_iter()
        .take_while(|x| x.id != id)
        .any(|x| x.stages.get(si).is_some_and(|s| s.status.is_some()));
    if newer {
        return Err(ApiError::NotLatestPipelineExecution(format!(
            "Execution {id} is not the latest execution of stage '{stage}': a newer execution ran it since"
        )));
    }
    Ok(exec::retry(&ctx.pipe(), e, si, all)?)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListActionsInput {
    pipeline_name: String,
    #[serde(default)]
    filter: Option<ActionFilter>,
    #[serde(default)]
    max_results: Option<i64>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ActionFilter {
    #[serde(default)]
    pipeline_execution_id: Option<String>,
}

fn list_action_executions(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ListActionsInput = parse(body)?;
    load(ctx.state.history.db(), &input.pipeline_name)?
        .ok_or_else(|| not_found(ctx.account(), &input.pipeline_name))?;
    let wanted = input.filter.and_then(|f| f.pipeline_execution_id);
    let execs = exec::executions(ctx.state.history.db(), &input.pipeline_name)?;
    if let Some(id) = &wanted
        && !execs.iter().any(|e| &e.id == id)
    {
        return Err(execution_not_found(&input.pipeline_name, id));
    }
    let mut all: Vec<Value> = execs
        .iter()
        .filter(|e| wanted.as_ref().is_none_or(|w| *w == e.id))
        .flat_map(exec::Execution::action_details)
        .collect();
    all.sort_by(|a, b| {
        b["startTime"]
            .as_f64()
            .unwrap_or(0.0)
            .total_cmp(&a["startTime"].as_f64().unwrap_or(0.0))
    });
    let (items, next) = page(
        &all,
        &PageInput {
            max_results: input.max_results,
            next_token: input.next_token,
        },
        100,
        100,
    )?;
    let mut out = json!({ "actionExecutionDetails": items });
    if let Some(n) = next {
        out["nextToken"] = json!(n);
    }
    Ok(out)
}
