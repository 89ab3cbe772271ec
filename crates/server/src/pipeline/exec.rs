//! Pipeline executions: one task per execution advances the pure [`Machine`] and carries out
//! its actions; a watcher starts an execution when a watched branch moves.
//!
//! Actions:
//! * Source `CodeStarSourceConnection` (`FullRepositoryId` OWNER/REPO, resolved under the git
//!   root exactly like a CodeBuild `GITHUB` source), `GitHub` version 1 (`Owner`, `Repo`,
//!   `Branch`; its `OAuthToken` is kept only as `****`) and `CodeCommit` (`RepositoryName`): the
//!   head of the branch is checked out and zipped (without `.git`) as the output artifact
//!   into the artifact store, `$LOCALBUILD_HOME/s3/<artifactStore.location>/<pipeline>/<artifact>/`.
//! * Build `CodeBuild`: a build of `ProjectName` through the same path as StartBuild, the
//!   primary input artifact unpacked as its source (type `CODEPIPELINE`, initiator
//!   `codepipeline/<pipeline>`), the other input artifacts as secondary sources
//!   (`CODEBUILD_SRC_DIR_<artifact>`); one output artifact is its primary artifacts, several
//!   are its secondary artifacts of the same names, each zipped into the artifact store.
//! * Deploy `ECS`: the image of `FileName` (default `imagedefinitions.json`) runs as a local
//!   container labelled `localbuild.ecs-service=<cluster>/<service>`, replacing the previous
//!   one; its exposed ports are published on 127.0.0.1 at ephemeral ports (the action's
//!   `externalExecutionUrl` is `http://127.0.0.1:<port>` of the first).
//! * Source `S3` (`S3Bucket`, `S3ObjectKey`: a zip at `$LOCALBUILD_HOME/s3/<bucket>/<key>`):
//!   copied as the output artifact; its revision (`VersionId`) is the file's size and
//!   modification time, `ETag` a hash of its bytes; the watcher starts an execution when it
//!   changes.
//! * Deploy `S3` (`BucketName`, `Extract`, `ObjectKey`): the input artifact unpacked under
//!   `$LOCALBUILD_HOME/s3/<bucket>/<ObjectKey>` (Extract true; files replaced), or copied to
//!   `<bucket>/<ObjectKey>` (Extract false).
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
    /// Source action → (branch, commit) this execution builds (a trigger's push).
    #[serde(default)]
    pub pins: BTreeMap<String, (String, String)>,
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

    /// Keep the record (not once the pipeline is deleted: a deleted pipeline's executions
    /// stay deleted).
    pub(crate) fn save(&self, state: &AppState) {
        let db = state.history.db();
        if !matches!(db.get_doc(PIPELINE_DOC, &self.pipeline), Ok(Some(_))) {
            return;
        }
        let _ = db.put_doc(
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
pub(crate) fn executions(
    db: &localbuild_store::Db,
    pipeline: &str,
) -> Result<Vec<Execution>, ApiError> {
    let docs = db
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
    start_pinned(
        ctx,
        pipeline,
        trigger_type,
        trigger_detail,
        vars,
        BTreeMap::new(),
    )
}

/// [`start`], with source actions pinned to (branch, commit) (a push a trigger admitted).
pub(crate) fn start_pinned(
    ctx: &Ctx,
    pipeline: &str,
    trigger_type: &str,
    trigger_detail: &str,
    vars: Vec<(String, String)>,
    pins: BTreeMap<String, (String, String)>,
) -> Result<String, ApiError> {
    let state = &ctx.state;
    let stored = super::load(state.history.db(), pipeline)?
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
    variables.insert("codepipeline.PipelineExecutionId".to_owned(), id.clone());
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
        pins,
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
            pin: exec.pins.get(&action.name).cloned(),
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
    /// (branch, commit) for a source action, instead of `BranchName`'s head.
    pin: Option<(String, String)>,
    at: ActionRef,
    tx: mpsc::UnboundedSender<Msg>,
}

impl Job {
    async fn run(self) -> ActionResult {
        match self.action.action_type_id.provider.as_str() {
            "CodeStarSourceConnection" | "CodeCommit" | "GitHub" => {
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
            "S3" => {
                let s3 = self.ctx.state.roots.s3_root.clone();
                tokio::task::spawn_blocking(move || {
                    if self.action.action_type_id.category == "Source" {
                        self.s3_source(&s3)
                    } else {
                        self.s3_deploy(&s3)
                    }
                })
                .await
                .unwrap_or_else(|e| ActionResult::failed("JobFailed", e.to_string()))
            }
            other => ActionResult::failed(
                "JobFailed",
                format!("localbuild cannot run {other} actions"),
            ),
        }
    }

    /// Where an output artifact's zip goes: `<s3 root>/<store>/<pipeline>/<artifact>/<id>-<action>.zip`,
    /// every part from the declaration confined under the S3 root.
    fn artifact_path(&self, artifact: &str) -> Result<PathBuf, String> {
        let short: String = self.execution.chars().take(8).collect();
        localbuild_confine::Root::new(&self.ctx.state.roots.s3_root)
            .confined(
                "artifact store path",
                &format!(
                    "{}/{}/{artifact}/{short}-{}.zip",
                    self.store, self.pipeline, self.action.name
                ),
            )
            .map_err(|e| e.to_string())
    }

    fn s3_source(self, s3: &Path) -> ActionResult {
        let bucket = self.action.config("S3Bucket").unwrap_or_default();
        let key = self.action.config("S3ObjectKey").unwrap_or_default();
        let Some(path) = s3_path(s3, bucket, Some(key)) else {
            return ActionResult::failed(
                "JobFailed",
                format!("Invalid object s3://{bucket}/{key}"),
            );
        };
        let Some(version) = s3_version(&path) else {
            return ActionResult::failed(
                "JobFailed",
                format!(
                    "The object s3://{bucket}/{key} does not exist (localbuild looks for {})",
                    path.display()
                ),
            );
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => return ActionResult::failed("JobFailed", format!("{}: {e}", path.display())),
        };
        if zip::ZipArchive::new(std::io::Cursor::new(&bytes)).is_err() {
            return ActionResult::failed(
                "JobFailed",
                format!("The object s3://{bucket}/{key} is not a zip file"),
            );
        }
        let Some(output) = self.action.outputs().next().map(str::to_owned) else {
            return ActionResult::failed(
                "JobFailed",
                "The source action has no output artifact".into(),
            );
        };
        let dest = match self.artifact_path(&output) {
            Ok(p) => p,
            Err(e) => return ActionResult::failed("JobFailed", e),
        };
        let written = dest
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&dest, &bytes));
        if let Err(e) = written {
            return ActionResult::failed("JobFailed", format!("{}: {e}", dest.display()));
        }
        let etag = format!("{:016x}", fnv64(&bytes));
        let summary = format!("Object s3://{bucket}/{key} (version {version})");
        ActionResult {
            ok: true,
            summary: Some(summary.clone()),
            external_id: Some(version.clone()),
            revision: Some(version.clone()),
            outputs: vec![(output.clone(), dest)],
            variables: vec![
                ("ETag".to_owned(), etag),
                ("VersionId".to_owned(), version.clone()),
                ("BucketName".to_owned(), bucket.to_owned()),
                ("ObjectKey".to_owned(), key.to_owned()),
            ],
            source_revision: Some(json!({
                "actionName": self.action.name,
                "revisionId": version,
                "revisionSummary": summary,
            })),
            artifact_revision: Some(json!({
                "name": output,
                "revisionId": version,
                "revisionSummary": summary,
                "created": now(),
            })),
            ..Default::default()
        }
    }

    fn s3_deploy(self, s3: &Path) -> ActionResult {
        let bucket = self.action.config("BucketName").unwrap_or_default();
        let extract = !self
            .action
            .config("Extract")
            .is_some_and(|e| e.eq_ignore_ascii_case("false"));
        let key = self.action.config("ObjectKey").filter(|k| !k.is_empty());
        let Some((name, zip)) = self.inputs.first().cloned() else {
            return ActionResult::failed(
                "JobFailed",
                "The deploy action has no input artifact".into(),
            );
        };
        let Some(dest) = s3_path(s3, bucket, key) else {
            return ActionResult::failed("JobFailed", format!("Invalid bucket {bucket} or key"));
        };
        let done = if extract {
            scratch(&self.ctx.state).and_then(|tmp| unzip_replacing(&zip, &dest, tmp.path()))
        } else {
            dest.parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::copy(&zip, &dest).map(drop))
        };
        match done {
            Ok(()) => ActionResult {
                ok: true,
                summary: Some(format!(
                    "Deployed {name} to s3://{bucket}/{} ({})",
                    key.unwrap_or(""),
                    if extract {
                        "extracted"
                    } else {
                        "as one object"
                    }
                )),
                external_url: Some(format!("file://{}", dest.display())),
                ..Default::default()
            },
            Err(e) => ActionResult::failed(
                "JobFailed",
                format!("Could not deploy {name} to {}: {e}", dest.display()),
            ),
        }
    }

    fn source(self, roots: &localbuild_sources::Roots, region: &str) -> ActionResult {
        let branch = self.action.branch().to_owned();
        let (_, location) = self.action.repository(region);
        let config = |k: &str| self.action.config(k).map(|v| (k.to_owned(), v.to_owned()));
        // The output variables of each provider besides the commit's.
        let mut vars: Vec<(String, String)> = match self.action.action_type_id.provider.as_str() {
            "CodeCommit" => config("RepositoryName").into_iter().collect(),
            "GitHub" => vec![],
            _ => [config("FullRepositoryId"), config("ConnectionArn")]
                .into_iter()
                .flatten()
                .collect(),
        };
        let repo = match repo_of(&self.action, roots, region) {
            Ok(r) => r,
            Err(e) => return ActionResult::failed("JobFailed", e),
        };
        let tmp = match scratch(&self.ctx.state) {
            Ok(t) => t,
            Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
        };
        let dest = tmp.path().join("src");
        let (branch, version) = match &self.pin {
            Some((b, c)) => (b.clone(), c.clone()),
            None => (branch.clone(), branch),
        };
        let co = match localbuild_sources::checkout(&repo, Some(&version), None, &dest) {
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
        let zip = match self.artifact_path(&output) {
            Ok(p) => p,
            Err(e) => return ActionResult::failed("JobFailed", e),
        };
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
        if self.action.action_type_id.provider == "GitHub" {
            vars.extend([
                (
                    "CommitUrl".to_owned(),
                    format!("{location}/commit/{}", co.commit),
                ),
                (
                    "RepositoryName".to_owned(),
                    self.action.config("Repo").unwrap_or_default().to_owned(),
                ),
            ]);
        }
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
        if !self.inputs.iter().any(|(n, _)| *n == primary) {
            return ActionResult::failed(
                "JobFailed",
                format!("The input artifact {primary} is missing"),
            );
        }
        let tmp = match scratch(&self.ctx.state) {
            Ok(t) => t,
            Err(e) => return ActionResult::failed("JobFailed", e.to_string()),
        };
        // Every input artifact unpacked: the primary as the source, the others as secondary
        // sources named after their artifact (`CODEBUILD_SRC_DIR_<name>`), as CodeBuild does.
        let mut dir = tmp.path().join("src");
        let mut location = String::new();
        let mut secondary = vec![];
        for (i, (name, zip)) in self.inputs.iter().enumerate() {
            let d = tmp.path().join(format!("input-{i}"));
            if *name == primary {
                dir = d.clone();
                // The artifact in the store, as CodeBuild names a pipeline build's source.
                location = match zip.strip_prefix(&self.ctx.state.roots.s3_root) {
                    Ok(key) => format!("arn:aws:s3:::{}", key.display()),
                    Err(_) => zip.display().to_string(),
                };
            } else {
                secondary.push((name.clone(), d.clone()));
            }
            let z = zip.clone();
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
            location,
            secondary,
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
        // One output artifact is the build's primary artifacts; several are its secondary
        // artifacts whose identifiers are their names.
        let outputs: Vec<String> = self.action.outputs().map(str::to_owned).collect();
        for output in &outputs {
            let made = if outputs.len() == 1 {
                outcome.as_ref().and_then(|o| o.artifacts.first().cloned())
            } else {
                build
                    .secondary_artifacts
                    .iter()
                    .find(|a| a.artifact_identifier.as_deref() == Some(output))
                    .map(|a| PathBuf::from(&a.location))
            };
            let Some(made) = made else {
                let needs = if outputs.len() == 1 {
                    "the buildspec needs an artifacts section".to_owned()
                } else {
                    format!(
                        "with several output artifacts, the buildspec needs a secondary-artifacts entry named {output}"
                    )
                };
                return ActionResult::failed(
                    "JobFailed",
                    format!(
                        "Build {id} produced no artifacts for the output artifact {output} ({needs})"
                    ),
                );
            };
            let dest = match self.artifact_path(output) {
                Ok(p) => p,
                Err(e) => return ActionResult::failed("JobFailed", e),
            };
            match store_artifact(made, dest.clone()).await {
                Ok(()) => result.outputs.push((output.clone(), dest)),
                Err(e) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Cannot store the build's artifact: {e}"),
                    );
                }
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
            let dest = match self.artifact_path(&output) {
                Ok(p) => p,
                Err(e) => return ActionResult::failed("JobFailed", e),
            };
            match store_artifact(made, dest.clone()).await {
                Ok(()) => result.outputs.push((output, dest)),
                Err(e) => {
                    return ActionResult::failed(
                        "JobFailed",
                        format!("Cannot store the batch's artifact: {e}"),
                    );
                }
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

/// Put what a build made (a folder, zipped; or a file, copied) at `dest` in the artifact store.
async fn store_artifact(made: PathBuf, dest: PathBuf) -> Result<(), String> {
    let written = tokio::task::spawn_blocking(move || {
        if made.is_dir() {
            zip_dir(&made, &dest)
        } else {
            if let Some(p) = dest.parent() {
                std::fs::create_dir_all(p)?;
            }
            std::fs::copy(&made, &dest).map(drop)
        }
    })
    .await;
    match written {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The local repository a source action watches.
fn repo_of(
    action: &Action,
    roots: &localbuild_sources::Roots,
    region: &str,
) -> Result<PathBuf, String> {
    use localbuild_sources::Resolved;
    let (kind, location) = action.repository(region);
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

/// `<s3>/<bucket>/<key>` when both are relative names without `..` (and the bucket one
/// component).
pub(crate) fn s3_path(s3: &Path, bucket: &str, key: Option<&str>) -> Option<PathBuf> {
    let bucket = localbuild_confine::Root::new(s3)
        .sub(
            "bucket",
            localbuild_confine::component("bucket", bucket).ok()?,
        )
        .ok()?;
    match key {
        Some(k) => bucket
            .confined("object key", k.trim_start_matches('/'))
            .ok(),
        None => Some(bucket.path().to_path_buf()),
    }
}

/// An S3 object's local version: its size and modification time (what the watcher compares).
pub(crate) fn s3_version(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("{}-{}", meta.len(), modified.as_nanos()))
}

/// A scratch folder for one action (a checkout, unpacked input artifacts), removed when
/// dropped: under `$LOCALBUILD_HOME/tmp`, never the system's `/tmp`.
fn scratch(state: &AppState) -> std::io::Result<tempfile::TempDir> {
    let dir = state.history.root().join("tmp");
    std::fs::create_dir_all(&dir)?;
    tempfile::Builder::new().prefix("action-").tempdir_in(dir)
}

/// FNV-1a, 64 bits: the local `ETag` of an S3 source object.
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Unpack a zip into `dest`, replacing files that exist (an S3 deploy over an earlier one).
fn unzip_replacing(zip: &Path, dest: &Path, tmp: &Path) -> std::io::Result<()> {
    unzip(zip, tmp)?;
    let mut stack = vec![tmp.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            let Ok(rel) = path.strip_prefix(tmp) else {
                continue;
            };
            let target = localbuild_confine::Root::new(dest)
                .confined("artifact entry", &rel.to_string_lossy())
                .map_err(std::io::Error::other)?;
            if path.is_dir() {
                std::fs::create_dir_all(&target)?;
                stack.push(path);
            } else {
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p)?;
                }
                // Never write through a symlink that is there.
                if std::fs::symlink_metadata(&target).is_ok() {
                    std::fs::remove_file(&target)?;
                }
                std::fs::copy(&path, &target)?;
            }
        }
    }
    Ok(())
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

/// `git -C repo ARGS` (no outside `GIT_*`): its stdout lines, `None` when it fails.
fn git_lines(repo: &Path, args: &[&str]) -> Option<Vec<String>> {
    let mut cmd = std::process::Command::new("git");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GIT_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.arg("-C").arg(repo).args(args).output().ok()?;
    out.status.success().then(|| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    })
}

/// One thing the watcher looks at: a source action, on one branch (or an S3 object).
struct Watched {
    pipeline: String,
    region: String,
    action: String,
    /// The action's own branch (`BranchName`); `None` for S3.
    configured: Option<String>,
    branch: String,
    head: String,
    detail: String,
    repo: Option<PathBuf>,
    /// V2 push filters of the action's trigger.
    filters: Option<Vec<super::PushFilter>>,
}

/// What to watch now: every source action of every pipeline (unless `DetectChanges` or
/// `PollForSourceChanges` is `false` and it has no trigger), with its heads.
fn look(state: &AppState) -> Vec<Watched> {
    let Ok(docs) = state.history.db().list_docs(PIPELINE_DOC, "") else {
        return vec![];
    };
    let roots = &state.roots;
    let mut out = vec![];
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
            let filters: Option<Vec<super::PushFilter>> = decl
                .triggers
                .iter()
                .flatten()
                .find(|t| t.git_configuration.source_action_name == a.name)
                .map(|t| t.git_configuration.push.clone().unwrap_or_default());
            let off = |k| a.config(k).is_some_and(|v| v.eq_ignore_ascii_case("false"));
            if filters.is_none() && (off("DetectChanges") || off("PollForSourceChanges")) {
                continue;
            }
            let entry =
                |branch: &str, head: String, detail: String, repo: Option<PathBuf>| Watched {
                    pipeline: name.clone(),
                    region: stored.region.clone(),
                    action: a.name.clone(),
                    configured: repo.as_ref().map(|_| a.branch().to_owned()),
                    branch: branch.to_owned(),
                    head,
                    detail,
                    repo,
                    filters: filters.clone(),
                };
            if a.action_type_id.provider == "S3" {
                let (Some(bucket), Some(key)) = (a.config("S3Bucket"), a.config("S3ObjectKey"))
                else {
                    continue;
                };
                if let Some(version) =
                    s3_path(&roots.s3_root, bucket, Some(key)).and_then(|p| s3_version(&p))
                {
                    out.push(entry("", version, format!("s3://{bucket}/{key}"), None));
                }
                continue;
            }
            let Ok(repo) = repo_of(a, roots, &stored.region) else {
                continue;
            };
            let detail = a
                .config("ConnectionArn")
                .map(str::to_owned)
                .unwrap_or_else(|| repo.display().to_string());
            let configured = a.branch();
            let with_branches = filters
                .as_ref()
                .is_some_and(|f| f.iter().any(|p| p.branches.is_some()));
            if with_branches {
                // Every branch a filter admits.
                let refs = git_lines(
                    &repo,
                    &[
                        "for-each-ref",
                        "--format=%(refname:short) %(objectname)",
                        "refs/heads",
                    ],
                )
                .unwrap_or_default();
                for line in refs {
                    let Some((branch, head)) = line.split_once(' ') else {
                        continue;
                    };
                    let admitted = filters
                        .iter()
                        .flatten()
                        .any(|f| f.branches.as_ref().is_none_or(|b| b.admits(branch)));
                    if admitted {
                        out.push(entry(
                            branch,
                            head.to_owned(),
                            detail.clone(),
                            Some(repo.clone()),
                        ));
                    }
                }
            } else if let Ok(head) = localbuild_sources::resolve_version(
                &repo,
                Some(&format!("refs/heads/{configured}")),
            ) {
                out.push(entry(configured, head, detail, Some(repo.clone())));
            }
        }
    }
    out
}

/// Whether a push from `old` (`None`: a new branch) to `new` passes the trigger's filters.
fn admitted(w: &Watched, old: Option<&str>) -> bool {
    let Some(filters) = &w.filters else {
        return true;
    };
    let Some(repo) = &w.repo else {
        return true;
    };
    let files = match old {
        Some(old) => git_lines(repo, &["diff", "--name-only", old, &w.head]),
        None => git_lines(
            repo,
            &[
                "diff-tree",
                "--no-commit-id",
                "--name-only",
                "-r",
                "--root",
                &w.head,
            ],
        ),
    }
    .unwrap_or_default();
    filters.iter().any(|f| {
        let branch_ok = match &f.branches {
            Some(b) => b.admits(&w.branch),
            None => Some(w.branch.as_str()) == w.configured.as_deref(),
        };
        let files_ok = f
            .file_paths
            .as_ref()
            .is_none_or(|p| files.iter().any(|file| p.admits(file)));
        branch_ok && files_ok
    })
}

/// Watch every pipeline's source actions every 500 ms (git branches, with a trigger's push
/// filters when it has one; S3 objects); start an execution when one moves. A branch a
/// trigger admits that appears after the first look counts as a push.
pub(crate) async fn watch(state: Arc<AppState>) {
    let mut seen: HashMap<(String, String, String), String> = HashMap::new();
    let mut known_actions: std::collections::HashSet<(String, String)> = Default::default();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if state.inner().shutting_down {
            return;
        }
        let st = state.clone();
        let Ok(watched) = tokio::task::spawn_blocking(move || look(&st)).await else {
            continue;
        };
        let mut live_keys = std::collections::HashSet::new();
        let mut live_actions = std::collections::HashSet::new();
        let mut starts = vec![];
        for w in watched {
            let key = (w.pipeline.clone(), w.action.clone(), w.branch.clone());
            let action_key = (w.pipeline.clone(), w.action.clone());
            live_keys.insert(key.clone());
            live_actions.insert(action_key.clone());
            let known: Option<String> = match seen.get(&key) {
                Some(k) => Some(k.clone()),
                // A branch that appeared since the first look: a push.
                None if known_actions.contains(&action_key) => None,
                None => {
                    // The first look: the newest execution's revision on the action's own
                    // branch, else the head (nothing to do).
                    let last = (Some(w.branch.as_str()) == w.configured.as_deref()
                        || w.configured.is_none())
                    .then(|| {
                        executions(state.history.db(), &w.pipeline)
                            .ok()
                            .and_then(|e| {
                                e.first()?
                                    .stages
                                    .first()?
                                    .actions
                                    .iter()
                                    .find(|r| r.name == w.action)?
                                    .revision
                                    .clone()
                            })
                    })
                    .flatten();
                    Some(last.unwrap_or_else(|| w.head.clone()))
                }
            };
            seen.insert(key, w.head.clone());
            if known.as_deref() != Some(w.head.as_str()) {
                starts.push((w, known));
            }
        }
        for (w, known) in starts {
            let filtered = w.filters.is_some();
            let w = Arc::new(w);
            let check = (w.clone(), known.clone());
            let ok = tokio::task::spawn_blocking(move || admitted(&check.0, check.1.as_deref()))
                .await
                .unwrap_or(false);
            if !ok {
                continue;
            }
            let ctx = Ctx {
                state: state.clone(),
                region: w.region.clone(),
            };
            let (trigger, pins) = if filtered {
                (
                    "WebhookV2",
                    BTreeMap::from([(w.action.clone(), (w.branch.clone(), w.head.clone()))]),
                )
            } else {
                ("PollForSourceChanges", BTreeMap::new())
            };
            let _ = start_pinned(&ctx, &w.pipeline, trigger, &w.detail, vec![], pins);
        }
        seen.retain(|k, _| live_keys.contains(k));
        known_actions = live_actions;
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
