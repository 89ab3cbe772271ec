//! Pipeline executions: one task per execution advances the pure [`Machine`] and carries out
//! its actions; a watcher starts an execution when a watched branch moves.
//!
//! Actions:
//! * Source `CodeStarSourceConnection` (`FullRepositoryId` OWNER/REPO, resolved under the git
//!   root exactly like a CodeBuild `GITHUB` source) and `CodeCommit` (`RepositoryName`): the
//!   head of `BranchName` is checked out and zipped (without `.git`) as the output artifact
//!   into the artifact store, `$LOCALBUILD_HOME/s3/<artifactStore.location>/<pipeline>/<artifact>/`.
//! * Build `CodeBuild`: a build of `ProjectName` through the same path as StartBuild, the
//!   primary input artifact unpacked as its source (type `CODEPIPELINE`, initiator
//!   `codepipeline/<pipeline>`); its primary artifact zipped as the output artifact.
//! * Deploy `ECS`: the image of `FileName` (default `imagedefinitions.json`) runs as a local
//!   container labelled `localbuild.ecs-service=<cluster>/<service>`, replacing the previous
//!   one; its exposed ports are published on 127.0.0.1 at ephemeral ports (the action's
//!   `externalExecutionUrl` is `http://127.0.0.1:<port>` of the first).
//! * Approval `Manual`: no task; the action waits with a token (shown in GetPipelineState)
//!   for PutApprovalResult, or fails when its `timeoutInMinutes` (default 7 days) passes.
//!
//! Every start of an action is also kept as an `ActionRun` (ListActionExecutions). Executions
//! the process was running when it died are marked Failed when the server starts ([`recover`]).
//!
//! Variables: an action's output variables are `#{<namespace>.<NAME>}` when it has a
//! namespace; `#{variables.<name>}` are the pipeline's. They are substituted in every
//! configuration value when the action starts.

use super::machine::{ActionRef, ActionStatus, ExecStatus, Machine};
use super::{Action, Declaration, EXECUTION_DOC, EnvVarDecl, PIPELINE_DOC, Stored, now};
use crate::codebuild::{self, PipelineSource};
use crate::error::ApiError;
use crate::{AppState, Ctx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What an execution's task hears.
pub(crate) enum Msg {
    Done(ActionRef, Box<ActionResult>),
    /// A build action's build id, once it is started.
    Build(ActionRef, String),
    Stop {
        abandon: bool,
        reason: Option<String>,
    },
    Supersede,
    /// PutApprovalResult for a waiting approval action.
    Approve {
        a: ActionRef,
        token: String,
        approved: bool,
        summary: String,
    },
    /// The pipeline's stage transitions changed (`gates[s]`: entering stage `s` is enabled).
    Gates(Vec<bool>),
}

/// How an action ended.
#[derive(Default)]
pub(crate) struct ActionResult {
    ok: bool,
    summary: Option<String>,
    error: Option<(String, String)>,
    external_id: Option<String>,
    external_url: Option<String>,
    revision: Option<String>,
    outputs: Vec<(String, PathBuf)>,
    variables: Vec<(String, String)>,
    source_revision: Option<Value>,
    artifact_revision: Option<Value>,
}

impl ActionResult {
    fn failed(code: &str, message: String) -> ActionResult {
        ActionResult {
            summary: Some(message.clone()),
            error: Some((code.to_owned(), message)),
            ..Default::default()
        }
    }
}

/// One action of one execution, as recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActionRec {
    pub name: String,
    pub status: Option<ActionStatus>,
    pub action_execution_id: String,
    pub summary: Option<String>,
    pub error: Option<(String, String)>,
    pub external_id: Option<String>,
    pub external_url: Option<String>,
    pub last_change: f64,
    pub revision: Option<String>,
    pub entity_url: Option<String>,
    /// A waiting approval's token.
    #[serde(default)]
    pub token: Option<String>,
}

impl ActionRec {
    /// `ActionExecution` of GetPipelineState.
    pub fn latest(&self) -> Option<Value> {
        let status = match self.status? {
            ActionStatus::NotStarted => return None,
            ActionStatus::InProgress => "InProgress",
            ActionStatus::Succeeded => "Succeeded",
            ActionStatus::Failed => "Failed",
            ActionStatus::Abandoned => "Abandoned",
        };
        let mut v = json!({
            "actionExecutionId": self.action_execution_id,
            "status": status,
            "lastStatusChange": self.last_change,
        });
        if let Some(s) = &self.summary {
            v["summary"] = json!(s);
        }
        if let Some(id) = &self.external_id {
            v["externalExecutionId"] = json!(id);
        }
        if let Some(u) = &self.external_url {
            v["externalExecutionUrl"] = json!(u);
        }
        if let Some((code, message)) = &self.error {
            v["errorDetails"] = json!({"code": code, "message": message});
        }
        if let (Some(t), Some(ActionStatus::InProgress)) = (&self.token, self.status) {
            v["token"] = json!(t);
        }
        Some(v)
    }
}

/// One start of one action (`ActionExecutionDetail` of ListActionExecutions).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ActionRun {
    pub stage: String,
    pub action: String,
    pub action_execution_id: String,
    pub start_time: f64,
    pub last_update_time: f64,
    pub status: Option<ActionStatus>,
    /// `ActionExecutionInput`.
    pub input: Value,
    /// `ActionExecutionOutput`, once it ended.
    pub output: Option<Value>,
}

/// An `ActionExecutionStatus` name.
pub(crate) fn action_status_name(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::NotStarted | ActionStatus::InProgress => "InProgress",
        ActionStatus::Succeeded => "Succeeded",
        ActionStatus::Failed => "Failed",
        ActionStatus::Abandoned => "Abandoned",
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StageRec {
    pub name: String,
    /// `StageExecution.status`, once the stage was reached.
    pub status: Option<String>,
    pub actions: Vec<ActionRec>,
}

/// One execution, as kept in the docs table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Execution {
    pub pipeline: String,
    pub version: i64,
    pub id: String,
    pub status: ExecStatus,
    pub status_summary: Option<String>,
    pub start_time: f64,
    pub last_update_time: f64,
    pub trigger_type: String,
    pub trigger_detail: String,
    pub region: String,
    pub stages: Vec<StageRec>,
    pub artifact_revisions: Vec<Value>,
    pub source_revisions: Vec<Value>,
    /// `Namespace.NAME` and `variables.name` → value.
    pub variables: BTreeMap<String, String>,
    /// Artifact name → zip in the artifact store.
    pub artifacts: BTreeMap<String, PathBuf>,
    pub declaration: Declaration,
    /// Every start of an action, in order.
    #[serde(default)]
    pub action_runs: Vec<ActionRun>,
}

impl Execution {
    fn trigger(&self) -> Value {
        json!({"triggerType": self.trigger_type, "triggerDetail": self.trigger_detail})
    }

    /// `PipelineExecution`.
    pub fn execution(&self) -> Value {
        let mut v = json!({
            "pipelineName": self.pipeline,
            "pipelineVersion": self.version,
            "pipelineExecutionId": self.id,
            "status": self.status,
            "artifactRevisions": self.artifact_revisions,
            "trigger": self.trigger(),
            "executionMode": self.mode(),
            "executionType": "STANDARD",
        });
        let vars: Vec<Value> = self
            .variables
            .iter()
            .filter_map(|(k, val)| k.strip_prefix("variables.").map(|n| (n, val)))
            .map(|(n, val)| json!({"name": n, "resolvedValue": val}))
            .collect();
        if !vars.is_empty() {
            v["variables"] = json!(vars);
        }
        if let Some(s) = &self.status_summary {
            v["statusSummary"] = json!(s);
        }
        v
    }

    /// `PipelineExecutionSummary`.
    pub fn summary(&self) -> Value {
        let mut v = json!({
            "pipelineExecutionId": self.id,
            "status": self.status,
            "startTime": self.start_time,
            "lastUpdateTime": self.last_update_time,
            "sourceRevisions": self.source_revisions,
            "trigger": self.trigger(),
            "executionMode": self.mode(),
            "executionType": "STANDARD",
        });
        if let Some(s) = &self.status_summary {
            v["statusSummary"] = json!(s);
        }
        v
    }

    pub fn mode(&self) -> &str {
        self.declaration
            .execution_mode
            .as_deref()
            .unwrap_or("SUPERSEDED")
    }

    /// `ActionExecutionDetail`s of this execution, newest first.
    pub fn action_details(&self) -> Vec<Value> {
        self.action_runs
            .iter()
            .rev()
            .map(|r| {
                let mut v = json!({
                    "pipelineExecutionId": self.id,
                    "actionExecutionId": r.action_execution_id,
                    "pipelineVersion": self.version,
                    "stageName": r.stage,
                    "actionName": r.action,
                    "startTime": r.start_time,
                    "lastUpdateTime": r.last_update_time,
                    "status": action_status_name(r.status.unwrap_or(ActionStatus::InProgress)),
                    "input": r.input,
                });
                if let Some(o) = &r.output {
                    v["output"] = o.clone();
                }
                v
            })
            .collect()
    }

    /// The statuses the machine had, for a retry.
    fn machine(&self) -> Machine {
        let actions = self
            .stages
            .iter()
            .map(|s| {
                s.actions
                    .iter()
                    .map(|a| a.status.unwrap_or(ActionStatus::NotStarted))
                    .collect()
            })
            .collect();
        let stage = self
            .stages
            .iter()
            .rposition(|s| s.status.is_some())
            .unwrap_or(0);
        Machine::resume(run_orders(&self.declaration), actions, stage, self.status)
    }

    pub(crate) fn save(&self, state: &AppState) {
        let _ = state.history.db().put_doc(
            EXECUTION_DOC,
            &format!("{}/{}", self.pipeline, self.id),
            &json!(self).to_string(),
        );
    }

    fn action(&self, a: ActionRef) -> Option<&Action> {
        self.declaration.stages.get(a.0)?.actions.get(a.1)
    }
}

pub(crate) fn load_execution(
    state: &AppState,
    pipeline: &str,
    id: &str,
) -> Result<Option<Execution>, ApiError> {
    let doc = state
        .history
        .db()
        .get_doc(EXECUTION_DOC, &format!("{pipeline}/{id}"))
        .map_err(ApiError::db)?;
    Ok(doc.and_then(|d| serde_json::from_str(&d).ok()))
}

/// A pipeline's executions, newest first.
pub(crate) fn executions(state: &AppState, pipeline: &str) -> Result<Vec<Execution>, ApiError> {
    let docs = state
        .history
        .db()
        .list_docs(EXECUTION_DOC, &format!("{pipeline}/"))
        .map_err(ApiError::db)?;
    let mut all: Vec<Execution> = docs
        .into_iter()
        .filter_map(|(_, d)| serde_json::from_str(&d).ok())
        .collect();
    all.sort_by(|a, b| b.start_time.total_cmp(&a.start_time));
    Ok(all)
}

fn run_orders(d: &Declaration) -> Vec<Vec<u32>> {
    d.stages
        .iter()
        .map(|s| s.actions.iter().map(Action::run_order).collect())
        .collect()
}

/// Start an execution of `pipeline`; its id. In SUPERSEDED mode (the default), executions of
/// the pipeline still in their source stage or held by a disabled transition are superseded;
/// in QUEUED mode the execution waits until the older ones have ended; in PARALLEL mode it runs
/// beside them.
pub(crate) fn start(
    ctx: &Ctx,
    pipeline: &str,
    trigger_type: &str,
    trigger_detail: &str,
    vars: Vec<(String, String)>,
) -> Result<String, ApiError> {
    let state = &ctx.state;
    let stored = super::load(state, pipeline)?
        .ok_or_else(|| ApiError::PipelineNotFound(format!("no pipeline {pipeline}")))?;
    let declaration = stored.declaration().ok_or_else(|| {
        ApiError::Service(format!("the stored pipeline {pipeline} is unreadable"))
    })?;
    let mut variables = BTreeMap::new();
    for v in declaration.variables.iter().flatten() {
        if let Some(d) = &v.default_value {
            variables.insert(format!("variables.{}", v.name), d.clone());
        }
    }
    for (k, v) in vars {
        variables.insert(format!("variables.{k}"), v);
    }
    let at = now();
    let id = uuid::Uuid::new_v4().to_string();
    let exec = Execution {
        pipeline: pipeline.to_owned(),
        version: stored.pipeline["version"].as_i64().unwrap_or(1),
        id: id.clone(),
        status: ExecStatus::InProgress,
        status_summary: None,
        start_time: at,
        last_update_time: at,
        trigger_type: trigger_type.to_owned(),
        trigger_detail: trigger_detail.to_owned(),
        region: stored.region.clone(),
        stages: declaration
            .stages
            .iter()
            .map(|s| StageRec {
                name: s.name.clone(),
                status: None,
                actions: s
                    .actions
                    .iter()
                    .map(|a| ActionRec {
                        name: a.name.clone(),
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect(),
        artifact_revisions: vec![],
        source_revisions: vec![],
        variables,
        artifacts: BTreeMap::new(),
        declaration,
        action_runs: vec![],
    };
    exec.save(state);
    let mode = exec.mode().to_owned();
    let (tx, rx) = mpsc::unbounded_channel();
    {
        let mut live = state.pipelines.lock();
        if mode == "SUPERSEDED" {
            for (p, other) in live.values() {
                if p == pipeline {
                    let _ = other.send(Msg::Supersede);
                }
            }
        }
        live.insert(id.clone(), (pipeline.to_owned(), tx.clone()));
    }
    let ctx = Ctx {
        state: state.clone(),
        region: stored.region,
    };
    // QUEUED: the pipeline's turn, in order of start (tokio's mutex is fair).
    let turn = (mode == "QUEUED").then(|| state.pipelines.turn(pipeline));
    let mut m = Machine::new(run_orders(&exec.declaration));
    m.set_gates(super::gates(state, pipeline, &exec.declaration));
    tokio::spawn(async move {
        let _turn = match turn {
            Some(t) => Some(t.lock_owned().await),
            None => None,
        };
        let starts = if m.status().is_final() {
            vec![]
        } else {
            m.start()
        };
        run(ctx, exec, m, starts, rx, tx).await;
    });
    Ok(id)
}

/// RetryStageExecution: run the stage `stage` of a Failed or Stopped execution again (its
/// failed actions, or `all`), then the stages after it, in the same execution.
pub(crate) fn retry(
    ctx: &Ctx,
    mut exec: Execution,
    stage: usize,
    all: bool,
) -> Result<(), ApiError> {
    let mut m = exec.machine();
    let starts = m.retry(stage, all).map_err(|why| {
        ApiError::StageNotRetryable(format!(
            "Stage '{}' of execution {} cannot be retried: {why}",
            exec.stages.get(stage).map_or("", |s| s.name.as_str()),
            exec.id
        ))
    })?;
    m.set_gates(super::gates(&ctx.state, &exec.pipeline, &exec.declaration));
    exec.status_summary = None;
    let (tx, rx) = mpsc::unbounded_channel();
    ctx.state
        .pipelines
        .lock()
        .insert(exec.id.clone(), (exec.pipeline.clone(), tx.clone()));
    let ctx = ctx.clone();
    tokio::spawn(run(ctx, exec, m, starts, rx, tx));
    Ok(())
}

/// Executions this process did not finish (it was killed): Failed, with a summary that says
/// so; their running actions Failed the same way. Run once when the server starts, before it
/// starts any execution.
pub(crate) fn recover(state: &AppState) -> usize {
    let Ok(docs) = state.history.db().list_docs(EXECUTION_DOC, "") else {
        return 0;
    };
    let mut n = 0;
    let message = "localbuild serve stopped while this execution was in progress (the process ended without finishing it); it was marked Failed when the server started again";
    for (_, doc) in docs {
        let Ok(mut exec) = serde_json::from_str::<Execution>(&doc) else {
            continue;
        };
        if exec.status.is_final() {
            continue;
        }
        let at = now();
        for stage in &mut exec.stages {
            let mut cut = false;
            for a in &mut stage.actions {
                if a.status == Some(ActionStatus::InProgress) {
                    a.status = Some(ActionStatus::Failed);
                    a.summary = Some(message.to_owned());
                    a.error = Some(("JobFailed".into(), message.to_owned()));
                    a.last_change = at;
                    cut = true;
                }
            }
            if cut || matches!(stage.status.as_deref(), Some("InProgress" | "Stopping")) {
                stage.status = Some("Failed".into());
            }
        }
        for r in &mut exec.action_runs {
            if r.status == Some(ActionStatus::InProgress) {
                r.status = Some(ActionStatus::Failed);
                r.last_update_time = at;
                r.output = Some(json!({"executionResult": {
                    "externalExecutionSummary": message,
                    "errorDetails": {"code": "JobFailed", "message": message}}}));
            }
        }
        exec.status = ExecStatus::Failed;
        exec.status_summary = Some(message.to_owned());
        exec.last_update_time = at;
        exec.save(state);
        n += 1;
    }
    n
}

/// The task of one execution: `m` has just answered `starts`.
async fn run(
    ctx: Ctx,
    mut exec: Execution,
    mut m: Machine,
    starts: Vec<ActionRef>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    tx: mpsc::UnboundedSender<Msg>,
) {
    let mut tasks: HashMap<ActionRef, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut builds: HashMap<ActionRef, String> = HashMap::new();
    launch(&ctx, &mut exec, &m, starts, &mut tasks, &tx);
    loop {
        sync(&mut exec, &m);
        exec.save(&ctx.state);
        if m.status().is_final() {
            break;
        }
        let Some(msg) = rx.recv().await else { break };
        match msg {
            Msg::Done(a, result) => {
                if m.action(a) != ActionStatus::InProgress {
                    continue;
                }
                tasks.remove(&a);
                builds.remove(&a);
                record_result(&ctx, &mut exec, a, &result);
                let next = m.finished(a, result.ok);
                if !result.ok && exec.status_summary.is_none() {
                    exec.status_summary = result.summary.clone();
                }
                launch(&ctx, &mut exec, &m, next, &mut tasks, &tx);
            }
            Msg::Approve {
                a,
                token,
                approved,
                summary,
            } => {
                let waiting = rec_mut(&mut exec, a).and_then(|r| r.token.clone());
                if m.action(a) != ActionStatus::InProgress
                    || waiting.as_deref() != Some(token.as_str())
                {
                    continue;
                }
                if let Some(t) = tasks.remove(&a) {
                    t.abort();
                }
                let result = if approved {
                    ActionResult {
                        ok: true,
                        summary: Some(summary),
                        ..Default::default()
                    }
                } else {
                    let mut r = ActionResult::failed(
                        "JobFailed",
                        format!("The approval was rejected: {summary}"),
                    );
                    r.summary = Some(summary);
                    r
                };
                // The same path as any action that ends.
                let _ = tx.send(Msg::Done(a, Box::new(result)));
            }
            Msg::Gates(gates) => {
                let next = m.set_gates(gates);
                launch(&ctx, &mut exec, &m, next, &mut tasks, &tx);
            }
            Msg::Build(a, id) => {
                if let Some(rec) = rec_mut(&mut exec, a) {
                    rec.external_url = Some(crate::console::build_url(ctx.state.addr, &id));
                    rec.external_id = Some(id.clone());
                }
                builds.insert(a, id);
            }
            Msg::Stop { abandon, reason } => {
                m.stop(abandon);
                exec.status_summary = reason.or(Some("Stopped".into()));
                // Stop and wait lets running actions finish; abandon ends them (their builds
                // are stopped: nothing local outlives an abandoned action).
                if abandon {
                    for id in builds.values() {
                        codebuild::stop_for_pipeline(&ctx.state, id);
                    }
                    for (_, t) in tasks.drain() {
                        t.abort();
                    }
                }
            }
            Msg::Supersede => {
                if m.supersede() {
                    exec.status_summary =
                        Some("Superseded by a newer execution of the pipeline".into());
                    for (_, t) in tasks.drain() {
                        t.abort();
                    }
                }
            }
        }
    }
    ctx.state.pipelines.lock().remove(&exec.id);
}

fn rec_mut(exec: &mut Execution, a: ActionRef) -> Option<&mut ActionRec> {
    exec.stages.get_mut(a.0)?.actions.get_mut(a.1)
}

/// The machine's statuses into the record.
fn sync(exec: &mut Execution, m: &Machine) {
    let at = now();
    exec.status = m.status();
    exec.last_update_time = at;
    for (si, stage) in exec.stages.iter_mut().enumerate() {
        let mut statuses = vec![];
        for (ai, rec) in stage.actions.iter_mut().enumerate() {
            let s = m.action((si, ai));
            if s == ActionStatus::NotStarted {
                // Never started, or reset by a retry.
                rec.status = None;
            } else if rec.status != Some(s) {
                rec.status = Some(s);
                rec.last_change = at;
                if let Some(run) = exec
                    .action_runs
                    .iter_mut()
                    .rev()
                    .find(|r| r.action_execution_id == rec.action_execution_id)
                {
                    run.status = Some(s);
                    run.last_update_time = at;
                }
            }
            statuses.push(s);
        }
        let any = |s: ActionStatus| statuses.contains(&s);
        stage.status = if any(ActionStatus::InProgress) {
            Some(if m.status() == ExecStatus::Stopping {
                "Stopping".into()
            } else {
                "InProgress".into()
            })
        } else if any(ActionStatus::Failed) {
            Some("Failed".into())
        } else if any(ActionStatus::Abandoned) {
            Some(if m.status() == ExecStatus::Superseded {
                "Cancelled".into()
            } else {
                "Stopped".into()
            })
        } else if statuses.iter().all(|s| *s == ActionStatus::Succeeded) && !statuses.is_empty() {
            Some("Succeeded".into())
        } else if any(ActionStatus::Succeeded) {
            Some(if m.status() == ExecStatus::Stopped {
                "Stopped".into()
            } else {
                "InProgress".into()
            })
        } else {
            None
        };
    }
}

/// An artifact zip as `ArtifactDetail` (bucket and key in the artifact store).
fn artifact_detail(ctx: &Ctx, exec: &Execution, name: &str, path: &Path) -> Value {
    let bucket = exec
        .declaration
        .artifact_store
        .as_ref()
        .map(|s| s.location.clone())
        .unwrap_or_default();
    let key = path
        .strip_prefix(ctx.state.roots.s3_root.join(&bucket))
        .map(|k| k.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.display().to_string());
    json!({"name": name, "s3location": {"bucket": bucket, "key": key}})
}

fn record_result(ctx: &Ctx, exec: &mut Execution, a: ActionRef, r: &ActionResult) {
    let id = exec
        .stages
        .get(a.0)
        .and_then(|s| s.actions.get(a.1))
        .map(|rec| rec.action_execution_id.clone())
        .unwrap_or_default();
    let outputs: Vec<Value> = r
        .outputs
        .iter()
        .map(|(n, p)| artifact_detail(ctx, exec, n, p))
        .collect();
    let mut result = json!({});
    if let Some(x) = &r.external_id {
        result["externalExecutionId"] = json!(x);
    }
    if let Some(x) = &r.summary {
        result["externalExecutionSummary"] = json!(x);
    }
    if let Some(x) = &r.external_url {
        result["externalExecutionUrl"] = json!(x);
    }
    if let Some((code, message)) = &r.error {
        result["errorDetails"] = json!({"code": code, "message": message});
    }
    let vars: serde_json::Map<String, Value> = r
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if let Some(run) = exec
        .action_runs
        .iter_mut()
        .rev()
        .find(|x| x.action_execution_id == id)
    {
        let mut output = json!({"outputArtifacts": outputs, "executionResult": result});
        if !vars.is_empty() {
            output["outputVariables"] = Value::Object(vars);
        }
        run.output = Some(output);
    }
    let namespace = exec.action(a).and_then(|x| x.namespace.clone());
    if let Some(ns) = namespace {
        for (k, v) in &r.variables {
            exec.variables.insert(format!("{ns}.{k}"), v.clone());
        }
    }
    for (name, path) in &r.outputs {
        exec.artifacts.insert(name.clone(), path.clone());
    }
    if let Some(s) = &r.source_revision {
        exec.source_revisions.push(s.clone());
    }
    if let Some(s) = &r.artifact_revision {
        exec.artifact_revisions.push(s.clone());
    }
    if let Some(rec) = rec_mut(exec, a) {
        rec.summary = r.summary.clone();
        rec.error = r.error.clone();
        if r.external_id.is_some() {
            rec.external_id = r.external_id.clone();
        }
        if r.external_url.is_some() {
            rec.external_url = r.external_url.clone();
        }
        rec.revision = r.revision.clone();
    }
}

/// `#{Namespace.NAME}` → its value; unknown references stay as written.
pub(crate) fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("#{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find('}') {
            Some(j) if vars.contains_key(&after[..j]) => {
                out.push_str(&vars[&after[..j]]);
                rest = &after[j + 1..];
            }
            _ => {
                out.push_str("#{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn launch(
    ctx: &Ctx,
    exec: &mut Execution,
    m: &Machine,
    starts: Vec<ActionRef>,
    tasks: &mut HashMap<ActionRef, tokio::task::JoinHandle<()>>,
    tx: &mpsc::UnboundedSender<Msg>,
) {
    let _ = m;
    for a in starts {
        let Some(declared) = exec.action(a).cloned() else {
            continue;
        };
        let mut action = declared.clone();
        if let Some(c) = action.configuration.as_mut() {
            for v in c.values_mut() {
                *v = substitute(v, &exec.variables);
            }
        }
        let action_execution_id = uuid::Uuid::new_v4().to_string();
        let approval = action.action_type_id.category == "Approval";
        if let Some(rec) = rec_mut(exec, a) {
            rec.action_execution_id = action_execution_id.clone();
            rec.summary = None;
            rec.error = None;
            rec.token = approval.then(|| uuid::Uuid::new_v4().to_string());
        }
        let inputs: Vec<Value> = action
            .inputs()
            .filter_map(|n| {
                exec.artifacts
                    .get(n)
                    .map(|p| artifact_detail(ctx, exec, n, p))
            })
            .collect();
        let mut input = json!({
            "actionTypeId": action.action_type_id,
            "configuration": declared.configuration.clone().unwrap_or_default(),
            "resolvedConfiguration": action.configuration.clone().unwrap_or_default(),
            "region": ctx.region,
            "inputArtifacts": inputs,
        });
        if let Some(ns) = &action.namespace {
            input["namespace"] = json!(ns);
        }
        let at = now();
        exec.action_runs.push(ActionRun {
            stage: exec.declaration.stages[a.0].name.clone(),
            action: action.name.clone(),
            action_execution_id,
            start_time: at,
            last_update_time: at,
            status: Some(ActionStatus::InProgress),
            input,
            output: None,
        });
        if approval {
            let minutes = action.timeout_in_minutes.unwrap_or(7 * 24 * 60).max(1) as u64;
            tasks.insert(
                a,
                tokio::spawn(approval_timer(
                    tx.clone(),
                    a,
                    Duration::from_secs(minutes * 60),
                )),
            );
            continue;
        }
        let job = Job {
            ctx: ctx.clone(),
            pipeline: exec.pipeline.clone(),
            execution: exec.id.clone(),
            store: exec
                .declaration
                .artifact_store
                .as_ref()
                .map(|s| s.location.clone())
                .unwrap_or_default(),
            inputs: action
                .inputs()
                .filter_map(|n| exec.artifacts.get(n).map(|p| (n.to_owned(), p.clone())))
                .collect(),
            action,
            at: a,
            tx: tx.clone(),
        };
        let tx = tx.clone();
        tasks.insert(
            a,
            tokio::spawn(async move {
                let result = job.run().await;
                let _ = tx.send(Msg::Done(a, Box::new(result)));
            }),
        );
    }
}

/// An approval nobody answered fails when its timeout passes.
async fn approval_timer(tx: mpsc::UnboundedSender<Msg>, a: ActionRef, after: Duration) {
    tokio::time::sleep(after).await;
    let minutes = after.as_secs() / 60;
    let _ = tx.send(Msg::Done(
        a,
        Box::new(ActionResult::failed(
            "JobFailed",
            format!("The approval timed out: no response within {minutes} minutes"),
        )),
    ));
}

/// One action to carry out.
struct Job {
    ctx: Ctx,
    pipeline: String,
    execution: String,
    store: String,
    inputs: Vec<(String, PathBuf)>,
    action: Action,
    at: ActionRef,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Job {
    async fn run(self) -> ActionResult {
        match self.action.action_type_id.provider.as_str() {
            "CodeStarSourceConnection" | "CodeCommit" => {
                if let Some(arn) = self.action.config("ConnectionArn") {
                    match super::connections::find(&self.ctx, arn) {
                        Ok(Some(_)) => {}
                        _ => {
                            return ActionResult::failed(
                                "JobFailed",
                                format!("Connection {arn} is not available"),
                            );
                        }
                    }
                }
                let roots = self.ctx.state.roots.clone();
                let region = self.ctx.region.clone();
                tokio::task::spawn_blocking(move || self.source(&roots, &region))
                    .await
                    .unwrap_or_else(|e| ActionResult::failed("JobFailed", e.to_string()))
            }
            "CodeBuild" => self.build().await,
            "ECS" => self.deploy().await,
            other => ActionResult::failed(
                "JobFailed",
                format!("localbuild cannot run {other} actions"),
            ),
        }
    }

    fn artifact_path(&self, artifact: &str) -> PathBuf {
        let short: String = self.execution.chars().take(8).collect();
        self.ctx
            .state
            .roots
            .s3_root
            .join(&self.store)
            .join(&self.pipeline)
            .join(artifact)
            .join(format!("{short}-{}.zip", self.action.name))
    }

    fn source(self, roots: &localbuild_sources::Roots, region: &str) -> ActionResult {
        let branch = self
            .action
            .config("BranchName")
            .unwrap_or("main")
            .to_owned();
        let (location, mut vars) = match self.action.action_type_id.provider.as_str() {
            "CodeCommit" => {
                let name = self.action.config("RepositoryName").unwrap_or_default();
                (
                    format!("https://git-codecommit.{region}.amazonaws.com/v1/repos/{name}"),
                    vec![("RepositoryName".to_owned(), name.to_owned())],
                )
            }
            _ => {
                let id = self.action.config("FullRepositoryId").unwrap_or_default();
                let mut vars = vec![("FullRepositoryId".to_owned(), id.to_owned())];
                if let Some(arn) = self.action.config("ConnectionArn") {
                    vars.push(("ConnectionArn".to_owned(), arn.to_owned()));
                }
                (format!("https://github.com/{id}"), vars)
            }
        };
        let repo = match repo_of(&self.action, roots, region) {
            Ok(r) => r,
            Err(e) => return ActionResult::failed("JobFailed", e),
        };
        let tmp = match tempfile::tempdir() {
            Ok(t) => t,
            Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
        };
        let dest = tmp.path().join("src");
        let co = match localbuild_sources::checkout(&repo, Some(&branch), None, &dest) {
            Ok(c) => c,
            Err(e) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!("Could not fetch branch {branch} of {location}: {e}"),
                );
            }
        };
        let (message, date) = commit_info(&co.dir);
        let Some(output) = self.action.outputs().next().map(str::to_owned) else {
            return ActionResult::failed(
                "JobFailed",
                "The source action has no output artifact".into(),
            );
        };
        let zip = self.artifact_path(&output);
        if let Err(e) = zip_dir(&co.dir, &zip) {
            return ActionResult::failed(
                "JobFailed",
                format!("Could not write the artifact {}: {e}", zip.display()),
            );
        }
        vars.extend([
            ("CommitId".to_owned(), co.commit.clone()),
            ("CommitMessage".to_owned(), message.clone()),
            ("BranchName".to_owned(), branch.clone()),
            ("AuthorDate".to_owned(), date.clone()),
            ("CommitterDate".to_owned(), date),
        ]);
        ActionResult {
            ok: true,
            summary: Some(message.clone()),
            external_id: Some(co.commit.clone()),
            revision: Some(co.commit.clone()),
            outputs: vec![(output.clone(), zip)],
            variables: vars,
            source_revision: Some(json!({
                "actionName": self.action.name,
                "revisionId": co.commit,
                "revisionSummary": message,
            })),
            artifact_revision: Some(json!({
                "name": output,
                "revisionId": co.commit,
                "revisionSummary": message,
                "created": now(),
            })),
            ..Default::default()
        }
    }

    async fn build(self) -> ActionResult {
        let primary = self
            .action
            .config("PrimarySource")
            .map(str::to_owned)
            .or_else(|| self.action.inputs().next().map(str::to_owned))
            .unwrap_or_default();
        let Some((_, zip)) = self.inputs.iter().find(|(n, _)| *n == primary) else {
            return ActionResult::failed(
                "JobFailed",
                format!("The input artifact {primary} is missing"),
            );
        };
        let tmp = match tempfile::tempdir() {
            Ok(t) => t,
            Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
        };
        let dir = tmp.path().join("src");
        let (z, d) = (zip.clone(), dir.clone());
        match tokio::task::spawn_blocking(move || unzip(&z, &d)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!("Cannot unpack {}: {e}", zip.display()),
                );
            }
            Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
        }
        let env: Vec<(String, String, Option<String>)> = self
            .action
            .config("EnvironmentVariables")
            .and_then(|e| serde_json::from_str::<Vec<EnvVarDecl>>(e).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.value, v.kind))
            .collect();
        let project = self
            .action
            .config("ProjectName")
            .unwrap_or_default()
            .to_owned();
        let source = PipelineSource {
            dir,
            pipeline: self.pipeline.clone(),
        };
        let flag = |k| {
            self.action
                .config(k)
                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        };
        if flag("BatchEnabled") {
            let combine = flag("CombineArtifacts");
            let input = codebuild::pipeline_input(&project, source, env);
            // `tmp` (the unpacked input) lives until the batch has ended.
            return self.batch_build(input, combine).await;
        }
        let id = match codebuild::start_for_pipeline(&self.ctx, &project, source, env).await {
            Ok(id) => id,
            Err(e) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Error calling startBuild: {e} (Service: AWSCodeBuild; Status Code: 400; Error Code: {}; Request ID: {})",
                        e.aws_type(),
                        uuid::Uuid::new_v4()
                    ),
                );
            }
        };
        let _ = self.tx.send(Msg::Build(self.at, id.clone()));
        let (outcome, record) = codebuild::wait_build(&self.ctx.state, &id).await;
        let build = match (&outcome, record) {
            (Some(o), _) => o.build.clone(),
            (None, Some(r)) => r,
            (None, None) => {
                return ActionResult::failed("JobFailed", format!("Build {id} vanished"));
            }
        };
        let v = serde_json::to_value(&build).unwrap_or_default();
        let status = v["buildStatus"].as_str().unwrap_or("FAILED").to_owned();
        let url = crate::console::build_url(self.ctx.state.addr, &id);
        let mut result = ActionResult {
            external_id: Some(id.clone()),
            external_url: Some(url),
            ..Default::default()
        };
        if status != "SUCCEEDED" {
            let mut message = format!("Build terminated with state: {status}");
            if let Some(p) = v["phases"].as_array().into_iter().flatten().find(|p| {
                matches!(
                    p["phaseStatus"].as_str(),
                    Some("FAILED" | "FAULT" | "TIMED_OUT" | "STOPPED")
                )
            }) {
                let ctx = p["contexts"].get(0);
                message.push_str(&format!(
                    ". Phase: {}, Code: {}, Message: {}",
                    p["phaseType"].as_str().unwrap_or_default(),
                    ctx.and_then(|c| c["statusCode"].as_str())
                        .unwrap_or_default(),
                    ctx.and_then(|c| c["message"].as_str()).unwrap_or_default()
                ));
            }
            result.summary = Some(message.clone());
            result.error = Some(("JobFailed".into(), message));
            return result;
        }
        result.ok = true;
        result.summary = Some(format!("Build {id} succeeded"));
        result.variables = build
            .exported_environment_variables
            .iter()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect();
        if let Some(output) = self.action.outputs().next().map(str::to_owned) {
            let Some(made) = outcome.as_ref().and_then(|o| o.artifacts.first().cloned()) else {
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Build {id} produced no artifacts for the output artifact {output} (the buildspec needs an artifacts section)"
                    ),
                );
            };
            let dest = self.artifact_path(&output);
            let d = dest.clone();
            let written = tokio::task::spawn_blocking(move || {
                if made.is_dir() {
                    zip_dir(&made, &d)
                } else {
                    if let Some(p) = d.parent() {
                        std::fs::create_dir_all(p)?;
                    }
                    std::fs::copy(&made, &d).map(drop)
                }
            })
            .await;
            match written {
                Ok(Ok(())) => result.outputs.push((output, dest)),
                Ok(Err(e)) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Cannot store the build's artifact: {e}"),
                    );
                }
                Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
            }
        }
        result
    }

    /// `BatchEnabled`: a batch build (StartBuildBatch's path). The output artifact is the
    /// combined artifacts with `CombineArtifacts`, else the artifacts of the task whose
    /// identifier is the output artifact's name.
    async fn batch_build(&self, input: codebuild::StartBuildInput, combine: bool) -> ActionResult {
        let handle = match crate::batch::start_for_pipeline(&self.ctx, input, combine).await {
            Ok(h) => h,
            Err(e) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Error calling startBuildBatch: {e} (Service: AWSCodeBuild; Status Code: 400; Error Code: {}; Request ID: {})",
                        e.aws_type(),
                        uuid::Uuid::new_v4()
                    ),
                );
            }
        };
        let id = handle.id.clone();
        let _ = self.tx.send(Msg::Build(self.at, id.clone()));
        let outcome = handle.outcome().await;
        let name = |st: localbuild_engine::record::Status| {
            serde_json::to_value(st)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "FAILED".into())
        };
        let status = name(outcome.batch.build_batch_status);
        let mut result = ActionResult {
            external_id: Some(id.clone()),
            external_url: Some(format!(
                "https://console.aws.amazon.com/codesuite/codebuild/projects/{}/batch/{id}",
                outcome.batch.project_name
            )),
            ..Default::default()
        };
        if status != "SUCCEEDED" {
            let mut message = format!("Build batch terminated with state: {status}");
            if let Some(t) = outcome.tasks.iter().find(|t| {
                !t.ignore_failure && t.status != localbuild_engine::record::Status::Succeeded
            }) {
                message.push_str(&format!(
                    ". Build: {}, Status: {}",
                    t.identifier,
                    name(t.status)
                ));
            }
            result.summary = Some(message.clone());
            result.error = Some(("JobFailed".into(), message));
            return result;
        }
        result.ok = true;
        result.summary = Some(format!("Build batch {id} succeeded"));
        for output in self.action.outputs().map(str::to_owned).collect::<Vec<_>>() {
            let made = if combine {
                outcome.artifacts.clone()
            } else {
                outcome
                    .tasks
                    .iter()
                    .find(|t| t.identifier == output)
                    .and_then(|t| t.outcome.as_ref()?.artifacts.first().cloned())
            };
            let Some(made) = made else {
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Build batch {id} produced no artifacts for the output artifact {output} (with CombineArtifacts false, an output artifact takes the artifacts of the build whose identifier is its name)"
                    ),
                );
            };
            let dest = self.artifact_path(&output);
            let d = dest.clone();
            let written = tokio::task::spawn_blocking(move || {
                if made.is_dir() {
                    zip_dir(&made, &d)
                } else {
                    if let Some(p) = d.parent() {
                        std::fs::create_dir_all(p)?;
                    }
                    std::fs::copy(&made, &d).map(drop)
                }
            })
            .await;
            match written {
                Ok(Ok(())) => result.outputs.push((output, dest)),
                Ok(Err(e)) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Cannot store the batch's artifact: {e}"),
                    );
                }
                Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
            }
        }
        result
    }

    async fn deploy(self) -> ActionResult {
        let cluster = self
            .action
            .config("ClusterName")
            .unwrap_or_default()
            .to_owned();
        let service = self
            .action
            .config("ServiceName")
            .unwrap_or_default()
            .to_owned();
        let file = self
            .action
            .config("FileName")
            .unwrap_or("imagedefinitions.json")
            .to_owned();
        let Some((name, zip)) = self.inputs.first().cloned() else {
            return ActionResult::failed(
                "JobFailed",
                "The deploy action has no input artifact".into(),
            );
        };
        let f = file.clone();
        let text = tokio::task::spawn_blocking(move || read_zip_entry(&zip, &f))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                return ActionResult::failed(
                    "JobFailed",
                    format!("The input artifact {name} has no {file}: {e}"),
                );
            }
        };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ImageDef {
            #[allow(dead_code)]
            name: Option<String>,
            image_uri: String,
        }
        let image = match serde_json::from_str::<Vec<ImageDef>>(&text) {
            Ok(defs) if !defs.is_empty() => defs[0].image_uri.clone(),
            _ => {
                return ActionResult::failed(
                    "JobFailed",
                    format!("Invalid {file}: expected a JSON list of {{\"name\", \"imageUri\"}}"),
                );
            }
        };
        let label = format!("{cluster}/{service}");
        let safe: String = format!("{cluster}-{service}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let short: String = self.execution.chars().take(8).collect();
        let container = format!("localbuild-ecs-{safe}-{short}");
        match self
            .ctx
            .state
            .runtime
            .run_service(&image, &container, &label)
            .await
        {
            Ok(run) => {
                let ports: Vec<String> = run
                    .ports
                    .iter()
                    .map(|(c, h)| format!("{c} on 127.0.0.1:{h}"))
                    .collect();
                ActionResult {
                    ok: true,
                    summary: Some(format!(
                        "Deployed {image} to {label} as container {container}{}",
                        if ports.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", ports.join(", "))
                        }
                    )),
                    external_id: Some(run.id),
                    external_url: run
                        .ports
                        .first()
                        .map(|(_, h)| format!("http://127.0.0.1:{h}")),
                    ..Default::default()
                }
            }
            Err(e) => ActionResult::failed("JobFailed", format!("Could not deploy {image}: {e}")),
        }
    }
}

/// The local repository a source action watches.
fn repo_of(
    action: &Action,
    roots: &localbuild_sources::Roots,
    region: &str,
) -> Result<PathBuf, String> {
    use localbuild_sources::{Resolved, SourceKind};
    let (kind, location) = match action.action_type_id.provider.as_str() {
        "CodeCommit" => (
            SourceKind::Codecommit,
            format!(
                "https://git-codecommit.{region}.amazonaws.com/v1/repos/{}",
                action.config("RepositoryName").unwrap_or_default()
            ),
        ),
        _ => (
            SourceKind::Github,
            format!(
                "https://github.com/{}",
                action.config("FullRepositoryId").unwrap_or_default()
            ),
        ),
    };
    match localbuild_sources::resolve(kind, &location, roots) {
        Ok(Resolved::Git { repo }) => Ok(repo),
        Ok(_) => Err(format!("{location} is not a git repository")),
        Err(e) => Err(e.to_string()),
    }
}

/// The head commit's message and author date (git's own CLI, no outside `GIT_*`).
fn commit_info(dir: &Path) -> (String, String) {
    let mut cmd = std::process::Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("-C")
        .arg(dir)
        .args(["log", "-1", "--format=%aI%n%B"])
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let (date, msg) = text.split_once('\n').unwrap_or((&text, ""));
            (msg.trim().to_owned(), date.trim().to_owned())
        }
        _ => (String::new(), String::new()),
    }
}

/// Zip a folder (without `.git`; symlinks are left out) to `dest`.
pub(crate) fn zip_dir(src: &Path, dest: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(p) = dest.parent() {
        std::fs::create_dir_all(p)?;
    }
    let file = std::fs::File::create(dest)?;
    let mut zip = zip::ZipWriter::new(file);
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let Ok(rel) = path.strip_prefix(src) else {
                continue;
            };
            let name = rel.to_string_lossy().into_owned();
            if name == ".git" {
                continue;
            }
            let opts = zip::write::SimpleFileOptions::default()
                .unix_permissions(meta.permissions().mode() & 0o777);
            if meta.is_dir() {
                zip.add_directory(format!("{name}/"), opts)
                    .map_err(std::io::Error::other)?;
                stack.push(path);
            } else if meta.is_file() {
                zip.start_file(name, opts).map_err(std::io::Error::other)?;
                let mut f = std::fs::File::open(&path)?;
                std::io::copy(&mut f, &mut zip)?;
            }
        }
    }
    zip.finish().map_err(std::io::Error::other)?.flush()
}

/// Unpack a zip into `dest` (entries that would leave it are refused).
pub(crate) fn unzip(zip: &Path, dest: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dest)?;
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(zip)?).map_err(std::io::Error::other)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(std::io::Error::other)?;
        let Some(name) = entry.enclosed_name() else {
            return Err(std::io::Error::other(format!(
                "unsafe entry name {}",
                entry.name()
            )));
        };
        let path = dest.join(name);
        if entry.is_dir() {
            std::fs::create_dir_all(&path)?;
            continue;
        }
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        std::io::copy(&mut entry, &mut out)?;
        if let Some(mode) = entry.unix_mode() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o777))?;
        }
    }
    Ok(())
}

fn read_zip_entry(zip: &Path, name: &str) -> Result<String, String> {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    let mut entry = archive.by_name(name).map_err(|e| e.to_string())?;
    let mut text = String::new();
    entry
        .by_ref()
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    Ok(text)
}

/// Watch the branches of every pipeline's source actions (unless `DetectChanges` or
/// `PollForSourceChanges` is `false`) every 500 ms; start an execution when one moves.
pub(crate) async fn watch(state: Arc<AppState>) {
    let mut seen: HashMap<(String, String), String> = HashMap::new();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if state.inner().shutting_down {
            return;
        }
        let Ok(docs) = state.history.db().list_docs(PIPELINE_DOC, "") else {
            continue;
        };
        let mut watched = vec![];
        for (name, doc) in docs {
            let Ok(stored) = serde_json::from_str::<Stored>(&doc) else {
                continue;
            };
            let Some(decl) = stored.declaration() else {
                continue;
            };
            for a in decl
                .stages
                .first()
                .map(|s| s.actions.as_slice())
                .unwrap_or_default()
            {
                let off = |k| a.config(k).is_some_and(|v| v.eq_ignore_ascii_case("false"));
                if off("DetectChanges") || off("PollForSourceChanges") {
                    continue;
                }
                watched.push((name.clone(), stored.region.clone(), a.clone()));
            }
        }
        let roots = state.roots.clone();
        let heads = tokio::task::spawn_blocking(move || {
            watched
                .into_iter()
                .filter_map(|(name, region, a)| {
                    let repo = repo_of(&a, &roots, &region).ok()?;
                    let branch = a.config("BranchName").unwrap_or("main");
                    let head = localbuild_sources::resolve_version(
                        &repo,
                        Some(&format!("refs/heads/{branch}")),
                    )
                    .ok()?;
                    let detail = a
                        .config("ConnectionArn")
                        .map(str::to_owned)
                        .unwrap_or_else(|| repo.display().to_string());
                    Some((name, region, a.name.clone(), head, detail))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        let mut live_keys = std::collections::HashSet::new();
        for (name, region, action, head, detail) in heads {
            let key = (name.clone(), action.clone());
            live_keys.insert(key.clone());
            let known = match seen.get(&key) {
                Some(k) => k.clone(),
                None => {
                    // The first look: the newest execution's revision, else the head.
                    let last = executions(&state, &name).ok().and_then(|e| {
                        e.first()?
                            .stages
                            .first()?
                            .actions
                            .iter()
                            .find(|r| r.name == action)?
                            .revision
                            .clone()
                    });
                    last.unwrap_or_else(|| head.clone())
                }
            };
            seen.insert(key, head.clone());
            if known != head {
                let ctx = Ctx {
                    state: state.clone(),
                    region,
                };
                let _ = start(&ctx, &name, "PollForSourceChanges", &detail, vec![]);
            }
        }
        seen.retain(|k, _| live_keys.contains(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_approval_fails_when_its_timeout_passes() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let timer = tokio::spawn(approval_timer(tx, (1, 0), Duration::from_secs(5 * 60)));
        tokio::time::advance(Duration::from_secs(4 * 60)).await;
        tokio::task::yield_now().await;
        assert!(rx.try_recv().is_err(), "not before the timeout");
        tokio::time::advance(Duration::from_secs(61)).await;
        match rx.recv().await {
            Some(Msg::Done(a, r)) => {
                assert_eq!(a, (1, 0));
                assert!(!r.ok);
                let (code, message) = r.error.unwrap();
                assert_eq!(code, "JobFailed");
                assert!(message.contains("within 5 minutes"), "{message}");
            }
            _ => panic!("the timer reports the action failed"),
        }
        timer.await.unwrap();
    }

    #[test]
    fn variables_are_substituted() {
        let vars = BTreeMap::from([("SourceVariables.CommitId".to_owned(), "abc".to_owned())]);
        assert_eq!(
            substitute("id=#{SourceVariables.CommitId} #{Other.X} #{", &vars),
            "id=abc #{Other.X} #{"
        );
    }

    #[test]
    fn zips_round_trip_without_git() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join(".git")).unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/f.txt"), "hi").unwrap();
        let out = tempfile::tempdir().unwrap();
        let zip = out.path().join("x/y.zip");
        zip_dir(src.path(), &zip).unwrap();
        let dest = out.path().join("u");
        unzip(&zip, &dest).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("a/b/f.txt")).unwrap(),
            "hi"
        );
        assert!(!dest.join(".git").exists());
        assert_eq!(read_zip_entry(&zip, "a/b/f.txt").unwrap(), "hi");
    }
}
