//! Pipeline executions: one task per execution advances the pure [`Machine`] and carries out
//! its actions; a watcher starts an execution when a watched branch moves.
//!
//! Layout: [`Executor`] (`executor.rs`) is what every execution shares; [`Provider`] is the
//! one trait of an action provider, one file each in [`providers`]; `artifacts` keeps the
//! artifact and S3 stores as files; `watch` is the source watcher; `docs` the history
//! documents; `host` the traits for what comes from outside ([`Builds`]: starting and
//! awaiting a build or batch; [`Deploys`]: ECS and the local ECR registry), which the server
//! implements. The API shapes of the records are rendered by the server (`pipeline/wire.rs`).
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

use crate::machine::{ActionRef, ActionStatus, ExecStatus, Machine};
use crate::{Action, Declaration, EnvVarDecl};
use localbuild_store::{Db, DbError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What an execution's task hears.
pub enum Msg {
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
pub struct ActionResult {
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
pub struct ActionRec {
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

/// One start of one action (`ActionExecutionDetail` of ListActionExecutions).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRun {
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRec {
    pub name: String,
    /// `StageExecution.status`, once the stage was reached.
    pub status: Option<String>,
    pub actions: Vec<ActionRec>,
}

/// One execution, as kept in the docs table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
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
    pub fn mode(&self) -> &str {
        self.declaration
            .execution_mode
            .as_deref()
            .unwrap_or("SUPERSEDED")
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
    /// stay deleted). A record the history cannot take is reported on serve's log, never
    /// dropped silently: the execution goes on from memory, the next transition saves again,
    /// and a final record is retried until it lands ([`Execution::keep_trying`]).
    pub fn save(&self, db: &Db) -> Result<(), DbError> {
        if !matches!(db.get_doc(PIPELINE_DOC, &self.pipeline), Ok(Some(_))) {
            return Ok(());
        }
        db.put_doc(
            EXECUTION_DOC,
            &format!("{}/{}", self.pipeline, self.id),
            &json!(self).to_string(),
        )
        .inspect_err(|e| {
            tracing::error!(
                "pipeline {}: execution {} could not be saved to the history: {e}",
                self.pipeline,
                self.id
            );
        })
    }

    /// Save a final record the history refused, again and again (0.5 s, doubling up to 10 s)
    /// until it lands or serve shuts down (then the next start marks the execution Failed, as
    /// for a killed serve).
    fn keep_trying(self, x: Arc<Executor>) {
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(500);
            while !x.builds.shutting_down() {
                tokio::time::sleep(wait).await;
                if self.save(&x.db).is_ok() {
                    tracing::info!(
                        "pipeline {}: execution {} saved to the history",
                        self.pipeline,
                        self.id
                    );
                    return;
                }
                wait = (wait * 2).min(Duration::from_secs(10));
            }
        });
    }

    fn action(&self, a: ActionRef) -> Option<&Action> {
        self.declaration.stages.get(a.0)?.actions.get(a.1)
    }
}

pub fn load_execution(db: &Db, pipeline: &str, id: &str) -> Result<Option<Execution>, DbError> {
    let doc = db.get_doc(EXECUTION_DOC, &format!("{pipeline}/{id}"))?;
    Ok(doc.and_then(|d| serde_json::from_str(&d).ok()))
}

/// A pipeline's executions, newest first.
pub fn executions(db: &Db, pipeline: &str) -> Result<Vec<Execution>, DbError> {
    let docs = db.list_docs(EXECUTION_DOC, &format!("{pipeline}/"))?;
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
pub fn start(
    ctx: &Ctx,
    pipeline: &str,
    trigger_type: &str,
    trigger_detail: &str,
    vars: Vec<(String, String)>,
) -> Result<String, ExecError> {
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
pub fn start_pinned(
    ctx: &Ctx,
    pipeline: &str,
    trigger_type: &str,
    trigger_detail: &str,
    vars: Vec<(String, String)>,
    pins: BTreeMap<String, (String, String)>,
) -> Result<String, ExecError> {
    let state = &ctx.exec;
    let stored = load(&state.db, pipeline)?
        .ok_or_else(|| ExecError::PipelineNotFound(format!("no pipeline {pipeline}")))?;
    let declaration = stored.declaration().ok_or_else(|| {
        ExecError::Unreadable(format!("the stored pipeline {pipeline} is unreadable"))
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
    // Reported by `save`; the execution's task saves again at once.
    let _ = exec.save(&state.db);
    let mode = exec.mode().to_owned();
    let (tx, rx) = mpsc::unbounded_channel();
    {
        let mut live = state.lock();
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
        exec: state.clone(),
        region: stored.region,
    };
    // QUEUED: the pipeline's turn, in order of start (tokio's mutex is fair).
    let turn = (mode == "QUEUED").then(|| state.turn(pipeline));
    let mut m = Machine::new(run_orders(&exec.declaration));
    m.set_gates(gates(&state.db, pipeline, &exec.declaration));
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
pub fn retry(ctx: &Ctx, mut exec: Execution, stage: usize, all: bool) -> Result<(), ExecError> {
    let mut m = exec.machine();
    let starts = m.retry(stage, all).map_err(|why| {
        ExecError::StageNotRetryable(format!(
            "Stage '{}' of execution {} cannot be retried: {why}",
            exec.stages.get(stage).map_or("", |s| s.name.as_str()),
            exec.id
        ))
    })?;
    m.set_gates(gates(&ctx.exec.db, &exec.pipeline, &exec.declaration));
    exec.status_summary = None;
    let (tx, rx) = mpsc::unbounded_channel();
    ctx.exec
        .lock()
        .insert(exec.id.clone(), (exec.pipeline.clone(), tx.clone()));
    let ctx = ctx.clone();
    tokio::spawn(run(ctx, exec, m, starts, rx, tx));
    Ok(())
}

/// Executions this process did not finish (it was killed): Failed, with a summary that says
/// so; their running actions Failed the same way. Run once when the server starts, before it
/// starts any execution.
pub fn recover(db: &Db) -> usize {
    let Ok(docs) = db.list_docs(EXECUTION_DOC, "") else {
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
        // Reported by `save`; the next start tries again.
        let _ = exec.save(db);
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
    let mut saved;
    loop {
        sync(&mut exec, &m);
        saved = exec.save(&ctx.exec.db).is_ok();
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
                    rec.external_url = Some(ctx.exec.builds.url(&id));
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
                        ctx.exec.builds.stop_soon(id);
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
    ctx.exec.lock().remove(&exec.id);
    if !saved {
        exec.keep_trying(ctx.exec.clone());
    }
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
    // The bucket's folder through the one confinement rule (a declared name, though checked).
    let key = artifacts::s3_path(&ctx.exec.roots.s3_root, &bucket, None)
        .and_then(|dir| path.strip_prefix(dir).ok().map(Path::to_path_buf))
        .map(|k| k.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
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
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> String {
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
pub struct Job {
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

/// An action provider: carries out one action of its type (one file each in `providers/`;
/// [`providers::provider`] picks it by category and provider).
#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    async fn run(&self, job: Job) -> ActionResult;
}

impl Job {
    async fn run(self) -> ActionResult {
        let t = &self.action.action_type_id;
        match providers::provider(&t.category, &t.provider) {
            Some(p) => p.run(self).await,
            None => ActionResult::failed(
                "JobFailed",
                format!("localbuild cannot run {} actions", t.provider),
            ),
        }
    }

    /// Where an output artifact's zip goes: `<s3 root>/<store>/<pipeline>/<artifact>/<id>-<action>.zip`,
    /// every part from the declaration confined under the S3 root.
    fn artifact_path(&self, artifact: &str) -> Result<PathBuf, String> {
        let short: String = self.execution.chars().take(8).collect();
        localbuild_confine::Root::new(&self.ctx.exec.roots.s3_root)
            .confined(
                "artifact store path",
                &format!(
                    "{}/{}/{artifact}/{short}-{}.zip",
                    self.store, self.pipeline, self.action.name
                ),
            )
            .map_err(|e| e.to_string())
    }
}

mod artifacts;
mod docs;
mod executor;
mod host;
pub mod providers;
mod watch;

pub use artifacts::*;
pub use docs::*;
pub use executor::*;
pub use host::*;
use providers::repo_of;
pub use watch::watch;

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

    #[test]
    fn a_zip_entry_that_would_leave_its_folder_is_refused() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("into");
        std::fs::create_dir_all(&dest).unwrap();
        std::os::unix::fs::symlink(dir.path(), dest.join("out")).unwrap();
        for name in ["../escape.txt", "/abs.txt", "out/through-link.txt"] {
            let zip = dir.path().join("hostile.zip");
            let mut w = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
            w.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(b"x").unwrap();
            w.finish().unwrap();
            assert!(unzip(&zip, &dest).is_err(), "{name}");
        }
        assert!(!dir.path().join("escape.txt").exists());
        assert!(!dir.path().join("through-link.txt").exists());
    }
}
