//! `localbuild pipeline list|status|executions`: the pipelines `serve` keeps, read from the
//! store (the same one `serve` writes), with or without a server running. The views are the
//! server's own (`localbuild_server::pipeline::*_in`), rendered as tables or printed as the
//! API's JSON.

use super::{PipelineCommand, exit};
use localbuild_store::HistoryStore;
use serde_json::Value;

pub fn run(cmd: &PipelineCommand) -> u8 {
    let store = match HistoryStore::open(super::run::store_root()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot open the build history: {e}");
            return exit::FAILURE;
        }
    };
    let db = store.db();
    use localbuild_server::pipeline as p;
    let (json, value) = match cmd {
        PipelineCommand::List { json } => (*json, p::pipelines_in(db).map(Value::from)),
        PipelineCommand::Status { name, json } => (*json, p::pipeline_state_in(db, name)),
        PipelineCommand::Executions { name, json } => {
            (*json, p::executions_in(db, name).map(Value::from))
        }
    };
    let value = match value {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
        return exit::SUCCESS;
    }
    match cmd {
        PipelineCommand::List { .. } => list(&value),
        PipelineCommand::Status { .. } => status(&value),
        PipelineCommand::Executions { .. } => executions(&value),
    }
    exit::SUCCESS
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// Epoch seconds as `YYYY-MM-DD HH:MM:SS` (UTC).
fn time(v: &Value) -> String {
    let Some(secs) = v.as_f64() else {
        return "-".into();
    };
    let secs = secs as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
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
