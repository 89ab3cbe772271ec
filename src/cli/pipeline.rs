//! `localbuild pipeline …`: the pipelines `serve` keeps.
//!
//! `list|status|executions` read the store (the same one `serve` writes), with or without a
//! server running; the views are the server's own (`localbuild_server::pipeline::*_in`),
//! rendered as tables or printed as the API's JSON. `create|update|start|approve` change what
//! a server runs, so they are calls to the running `serve` ([`super::api`]); a definition file
//! is checked here first, as CreatePipeline checks it, so its errors name the file, line and
//! column.

use super::api::{CallError, Endpoint};
use super::{PipelineCommand, ServerArg, exit};
use localbuild_store::HistoryStore;
use serde_json::{Value, json};
use std::path::Path;

const TARGET: &str = "CodePipeline_20150709";

pub fn run(cmd: &PipelineCommand) -> u8 {
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
            view(*json, |db| p::pipeline_state_in(db, name), status)
        }
        PipelineCommand::Executions { name, json } => view(
            *json,
            |db| p::executions_in(db, name).map(Value::from),
            executions,
        ),
    }
}

fn fail(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    exit::FAILURE
}

/// One call to the server, or the exit code of its failure (usage for a bad endpoint).
fn call(server: &ServerArg, op: &str, body: Value) -> Result<Value, u8> {
    let endpoint = Endpoint::new(server.endpoint_url.as_deref()).map_err(|e| {
        eprintln!("error: {e}");
        exit::USAGE
    })?;
    endpoint
        .call(&format!("{TARGET}.{op}"), &body)
        .map_err(|e: CallError| fail(e))
}

/// `create` / `update`: the file checked here, then sent.
fn define(file: &Path, server: &ServerArg, op: &str) -> u8 {
    let contents = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return fail(format!("{}: {e}", file.display())),
    };
    let body = match localbuild_server::pipeline::read_definition(&contents) {
        Ok(b) => b,
        Err(e) => {
            let at = e.at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default();
            return fail(format!(
                "{}{at}: {}: {}",
                file.display(),
                localbuild_server::error::ApiError::from(e.error.clone()).aws_type(),
                e.error
            ));
        }
    };
    let answer = match call(server, op, body) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let p = &answer["pipeline"];
    let name = text(&p["name"]);
    if op == "CreatePipeline" {
        println!(
            "Created pipeline {name} (version {}); its first execution has started: localbuild pipeline status {name}",
            p["version"]
        );
    } else {
        println!("Updated pipeline {name} to version {}", p["version"]);
    }
    exit::SUCCESS
}

fn start(name: &str, variables: &[String], server: &ServerArg) -> u8 {
    let mut list = Vec::new();
    for v in variables {
        let Some((n, value)) = v.split_once('=') else {
            eprintln!("error: --variable: expected NAME=VALUE, found {v:?}");
            return exit::USAGE;
        };
        list.push(json!({ "name": n, "value": value }));
    }
    let mut body = json!({ "name": name });
    if !list.is_empty() {
        body["variables"] = Value::from(list);
    }
    match call(server, "StartPipelineExecution", body) {
        Ok(a) => {
            println!("{}", text(&a["pipelineExecutionId"]));
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

/// The approval's token comes from the pipeline's state, as the console gets it.
fn approve(
    name: &str,
    stage: &str,
    action: &str,
    reject: bool,
    summary: &str,
    server: &ServerArg,
) -> u8 {
    let state = match call(server, "GetPipelineState", json!({ "name": name })) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let token = state["stageStates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["stageName"] == stage)
        .flat_map(|s| s["actionStates"].as_array().into_iter().flatten())
        .find(|a| a["actionName"] == action)
        .and_then(|a| a["latestExecution"]["token"].as_str());
    let Some(token) = token else {
        return fail(format!(
            "action {action:?} in stage {stage:?} of pipeline {name:?} is not waiting for approval (see localbuild pipeline status {name})"
        ));
    };
    let status = if reject { "Rejected" } else { "Approved" };
    let body = json!({
        "pipelineName": name,
        "stageName": stage,
        "actionName": action,
        "result": { "summary": summary, "status": status },
        "token": token,
    });
    match call(server, "PutApprovalResult", body) {
        Ok(_) => {
            println!("{status} {stage}/{action} of {name}");
            exit::SUCCESS
        }
        Err(code) => code,
    }
}

/// `list|status|executions`: one of the server's views over the store, as JSON or a table.
fn view(
    json: bool,
    read: impl FnOnce(&localbuild_store::Db) -> Result<Value, localbuild_server::error::ApiError>,
    render: fn(&Value),
) -> u8 {
    let store = match HistoryStore::open(super::run::store_root()) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot open the build history: {e}")),
    };
    let value = match read(store.db()) {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        render(&value);
    }
    exit::SUCCESS
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// Epoch seconds as `YYYY-MM-DD HH:MM:SS` (UTC), as the console shows them.
fn time(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), localbuild_server::console::pages::time)
}

fn list(v: &Value) {
    println!(
        "{:<40} {:>7} {:<4} {:<11} {:<19}",
        "PIPELINE", "VERSION", "TYPE", "MODE", "UPDATED (UTC)"
    );
    for p in v.as_array().into_iter().flatten() {
        println!(
            "{:<40} {:>7} {:<4} {:<11} {:<19}",
            text(&p["name"]),
            p["version"],
            text(&p["pipelineType"]),
            text(&p["executionMode"]),
            time(&p["updated"])
        );
    }
}

fn status(v: &Value) {
    println!(
        "Pipeline {} (version {})",
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
        println!("{line}");
        for a in s["actionStates"].as_array().into_iter().flatten() {
            let e = &a["latestExecution"];
            println!(
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
                println!("  {:<24} waiting for approval, token {token}", "");
            }
            if let Some(m) = e["errorDetails"]["message"].as_str() {
                println!("  {:<24} {m}", "");
            }
        }
    }
}

fn executions(v: &Value) {
    println!(
        "{:<36} {:<11} {:<19} {:<21} REVISION",
        "EXECUTION", "STATUS", "STARTED (UTC)", "TRIGGER"
    );
    for e in v.as_array().into_iter().flatten() {
        let rev = &e["sourceRevisions"][0];
        let short: String = text(&rev["revisionId"]).chars().take(12).collect();
        println!(
            "{:<36} {:<11} {:<19} {:<21} {} {}",
            text(&e["pipelineExecutionId"]),
            text(&e["status"]),
            time(&e["startTime"]),
            text(&e["trigger"]["triggerType"]),
            short,
            rev["revisionSummary"].as_str().unwrap_or("")
        );
    }
}
