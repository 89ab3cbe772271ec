//! `localbuild pipeline …`: the pipelines `serve` keeps.
//!
//! `list|status|executions` read the store (the same one `serve` writes), with or without a
//! server running; the views are the server's own (`localbuild_server::pipeline::*_in`, their
//! errors shown by their text), rendered as tables or printed as the API's JSON.
//! `create|update|start|approve` change what a server runs, so they are calls to the running
//! `serve` ([`super::api`]); a definition file is checked here first, as CreatePipeline checks
//! it, so its errors name the file, line and column.

use super::api::Endpoint;
use super::error::CliError;
use super::{PipelineCommand, ServerArg, exit};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::path::Path;

const TARGET: &str = "CodePipeline_20150709";

/// The account a missing pipeline is reported in: the user config's `account-id`, else the
/// default (what `serve` uses without `--account-id`).
fn account() -> Result<String, CliError> {
    Ok(super::config::user_account_id()?
        .unwrap_or_else(|| localbuild_engine::ACCOUNT_ID.to_owned()))
}

pub fn run(cmd: &PipelineCommand) -> Result<u8, CliError> {
    use localbuild_server::pipeline as p;
    match cmd {
        PipelineCommand::Create { file, server } => define(file, server, "CreatePipeline"),
        PipelineCommand::Update { file, server } => define(file, server, "UpdatePipeline"),
        PipelineCommand::Start {
            name,
            variables,
            server,
        } => start(name, variables, server),
        PipelineCommand::Approve {
            name,
            stage,
            action,
            reject,
            summary,
            server,
        } => approve(name, stage, action, *reject, summary, server),
        PipelineCommand::List { json } => {
            view(*json, |db| p::pipelines_in(db).map(Value::from), list)
        }
        PipelineCommand::Status { name, json } => {
            let account = account()?;
            view(*json, |db| p::pipeline_state_in(db, &account, name), status)
        }
        PipelineCommand::Executions { name, json } => {
            let account = account()?;
            view(
                *json,
                |db| p::executions_in(db, &account, name).map(Value::from),
                executions,
            )
        }
    }
}

/// One call to the server (a bad endpoint is a usage error).
fn call(server: &ServerArg, op: &str, body: Value) -> Result<Value, CliError> {
    let endpoint = Endpoint::new(server.endpoint_url.as_deref()).map_err(CliError::Usage)?;
    Ok(endpoint.call(&format!("{TARGET}.{op}"), &body)?)
}

/// `create` / `update`: the file checked here, then sent.
fn define(file: &Path, server: &ServerArg, op: &str) -> Result<u8, CliError> {
    let contents = std::fs::read_to_string(file)
        .map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
    let body = localbuild_server::pipeline::read_definition(&contents).map_err(|e| {
        let at = e.at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default();
        CliError::Failed(format!(
            "{}{at}: {}: {}",
            file.display(),
            localbuild_server::error::declaration_error_type(&e.error),
            e.error
        ))
    })?;
    let answer = call(server, op, body)?;
    let p = &answer["pipeline"];
    let name = text(&p["name"]);
    super::out::print(if op == "CreatePipeline" {
        format!(
            "Created pipeline {name} (version {}); its first execution has started: localbuild pipeline status {name}\n",
            p["version"]
        )
    } else {
        format!("Updated pipeline {name} to version {}\n", p["version"])
    })?;
    Ok(exit::SUCCESS)
}

fn start(name: &str, variables: &[String], server: &ServerArg) -> Result<u8, CliError> {
    let mut list = Vec::new();
    for v in variables {
        let Some((n, value)) = v.split_once('=') else {
            return Err(CliError::Usage(format!(
                "--variable: expected NAME=VALUE, found {v:?}"
            )));
        };
        list.push(json!({ "name": n, "value": value }));
    }
    let mut body = json!({ "name": name });
    if !list.is_empty() {
        body["variables"] = Value::from(list);
    }
    let answer = call(server, "StartPipelineExecution", body)?;
    super::out::print(format!("{}\n", text(&answer["pipelineExecutionId"])))?;
    Ok(exit::SUCCESS)
}

/// The approval's token comes from the pipeline's state, as the console gets it.
fn approve(
    name: &str,
    stage: &str,
    action: &str,
    reject: bool,
    summary: &str,
    server: &ServerArg,
) -> Result<u8, CliError> {
    let state = call(server, "GetPipelineState", json!({ "name": name }))?;
    let token = state["stageStates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["stageName"] == stage)
        .flat_map(|s| s["actionStates"].as_array().into_iter().flatten())
        .find(|a| a["actionName"] == action)
        .and_then(|a| a["latestExecution"]["token"].as_str());
    let Some(token) = token else {
        return Err(CliError::Failed(format!(
            "action {action:?} in stage {stage:?} of pipeline {name:?} is not waiting for approval (see localbuild pipeline status {name})"
        )));
    };
    let status = if reject { "Rejected" } else { "Approved" };
    let body = json!({
        "pipelineName": name,
        "stageName": stage,
        "actionName": action,
        "result": { "summary": summary, "status": status },
        "token": token,
    });
    call(server, "PutApprovalResult", body)?;
    super::out::print(format!("{status} {stage}/{action} of {name}\n"))?;
    Ok(exit::SUCCESS)
}

/// `list|status|executions`: one of the server's views over the store (its error is the
/// API's, shown as `error: …`), as JSON or a table.
fn view<E: std::fmt::Display>(
    json: bool,
    read: impl FnOnce(&localbuild_store::Db) -> Result<Value, E>,
    render: fn(&Value) -> String,
) -> Result<u8, CliError> {
    let store = super::history()?;
    let value = read(store.db()).map_err(|e| CliError::Failed(e.to_string()))?;
    super::out::print(if json {
        super::builds::pretty(&value)
    } else {
        render(&value)
    })?;
    Ok(exit::SUCCESS)
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// Epoch seconds as `YYYY-MM-DD HH:MM:SS` (UTC), as the console shows them.
fn time(v: &Value) -> String {
    v.as_f64().map_or_else(|| "-".into(), super::builds::utc)
}

fn list(v: &Value) -> String {
    let mut out = format!(
        "{:<40} {:>7} {:<4} {:<11} {:<19}\n",
        "PIPELINE", "VERSION", "TYPE", "MODE", "UPDATED (UTC)"
    );
    for p in v.as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<40} {:>7} {:<4} {:<11} {:<19}",
            text(&p["name"]),
            p["version"],
            text(&p["pipelineType"]),
            text(&p["executionMode"]),
            time(&p["updated"])
        );
    }
    out
}

fn status(v: &Value) -> String {
    let mut out = format!(
        "Pipeline {} (version {})\n",
        text(&v["pipelineName"]),
        v["pipelineVersion"]
    );
    for s in v["stageStates"].as_array().into_iter().flatten() {
        let latest = &s["latestExecution"];
        let mut line = format!(
            "\n{}  {}",
            text(&s["stageName"]),
            latest["status"].as_str().unwrap_or("not run")
        );
        if let Some(id) = latest["pipelineExecutionId"].as_str() {
            line.push_str(&format!("  execution {id}"));
        }
        if s["inboundTransitionState"]["enabled"] == false {
            line.push_str(&format!(
                "  [transition disabled: {}]",
                text(&s["inboundTransitionState"]["disabledReason"])
            ));
        }
        let _ = writeln!(out, "{line}");
        for a in s["actionStates"].as_array().into_iter().flatten() {
            let e = &a["latestExecution"];
            let _ = writeln!(
                out,
                "  {:<24} {:<11} {:<19} {}",
                text(&a["actionName"]),
                e["status"].as_str().unwrap_or("-"),
                time(&e["lastStatusChange"]),
                a["currentRevision"]["revisionId"]
                    .as_str()
                    .or(e["summary"].as_str())
                    .unwrap_or("")
            );
            if let Some(token) = e["token"].as_str() {
                let _ = writeln!(out, "  {:<24} waiting for approval, token {token}", "");
            }
            if let Some(m) = e["errorDetails"]["message"].as_str() {
                let _ = writeln!(out, "  {:<24} {m}", "");
            }
        }
    }
    out
}

fn executions(v: &Value) -> String {
    let mut out = format!(
        "{:<36} {:<11} {:<19} {:<21} REVISION\n",
        "EXECUTION", "STATUS", "STARTED (UTC)", "TRIGGER"
    );
    for e in v.as_array().into_iter().flatten() {
        let rev = &e["sourceRevisions"][0];
        let short: String = text(&rev["revisionId"]).chars().take(12).collect();
        let _ = writeln!(
            out,
            "{:<36} {:<11} {:<19} {:<21} {} {}",
            text(&e["pipelineExecutionId"]),
            text(&e["status"]),
            time(&e["startTime"]),
            text(&e["trigger"]["triggerType"]),
            short,
            rev["revisionSummary"].as_str().unwrap_or("")
        );
    }
    out
}
