//! The pipelines' pages and the ECS services page (what the pipelines deploy): the pipelines
//! list, a pipeline's stages as columns of action cards with its history, and the services.

use super::*;

/// What the pipeline page shows: the API's own answers.
pub struct PipelinePage<'a> {
    pub name: &'a str,
    /// GetPipeline's `pipeline`.
    pub declaration: &'a Value,
    /// GetPipelineState's answer.
    pub state: &'a Value,
    /// ListPipelineExecutions' summaries, newest first.
    pub executions: &'a [Value],
    pub now: f64,
}

/// The pipelines list with each one's latest execution.
pub fn pipelines(v: &Viewer, rows: &[(String, Value)], now: f64) -> Markup {
    layout(
        Some(v),
        "Pipelines",
        "Pipelines",
        true,
        html! {
            h1 { "Pipelines" }
            section #pipelines data-refresh {
                @if rows.is_empty() { p { "No pipelines. Create one with " code { "aws codepipeline create-pipeline" } "." } }
                @else {
                    div.scroll { table.list {
                        thead { tr { th { "Pipeline" } th { "Latest execution" } th { "Started" } th { "Duration" } } }
                        tbody {
                            @for (name, e) in rows {
                                tr {
                                    td { a href=(format!("/pipelines/{}", encode(name))) { (name) } }
                                    td { @if let Some(s) = e["status"].as_str() { (badge(s)) } @else { "never run" } }
                                    td { @if let Some(t) = e["startTime"].as_f64() { (time_el(t)) } }
                                    td.num { @if let Some(t) = e["startTime"].as_f64() { (duration(exec_end(e, now) - t)) } }
                                }
                            }
                        }
                    } }
                }
            }
        },
    )
}

/// An ECS service as the services page shows it (the server reads it as DescribeServices
/// does: the record and whether its task runs now).
#[derive(Debug, Clone, Default)]
pub struct EcsService {
    pub cluster: String,
    pub name: String,
    /// `family:revision`.
    pub task_definition: String,
    /// The image of its task (empty without one).
    pub image: String,
    /// Deleted (ECS's `INACTIVE`).
    pub inactive: bool,
    pub desired_count: u32,
    /// Whether its task runs now.
    pub running: bool,
    /// Where its task answers (shown while it runs).
    pub address: Option<String>,
    /// Its newest event: when and what.
    pub latest_event: Option<(f64, String)>,
}

/// What the ECS services page says of a service's state: RUNNING (its task runs), STOPPED
/// (scaled to 0), FAILED (it should run and does not), INACTIVE (deleted).
pub fn ecs_state(s: &EcsService) -> &'static str {
    if s.inactive {
        "INACTIVE"
    } else if s.running {
        "RUNNING"
    } else if s.desired_count == 0 {
        "STOPPED"
    } else {
        "FAILED"
    }
}

/// The ECS services page: every service the pipelines deployed, where it answers, and the
/// commands that manage it.
pub fn ecs_services(v: &Viewer, services: &[EcsService]) -> Markup {
    layout(
        Some(v),
        "ECS services",
        "ECS services",
        true,
        html! {
            h1 { "ECS services" }
            section #ecs data-refresh {
                @if services.is_empty() {
                    p { "No ECS services. A pipeline's ECS deploy action makes one; list them with " code { "aws ecs list-services --cluster CLUSTER" } "." }
                } @else {
                    div.scroll { table.list {
                        thead { tr { th { "Cluster" } th { "Service" } th { "Image" } th { "State" } th { "Tasks" } th { "Address" } th { "Latest event" } } }
                        tbody {
                            @for s in services {
                                tr data-service=(format!("{}/{}", s.cluster, s.name)) {
                                    td { (s.cluster) }
                                    td { (s.name) br; small { (s.task_definition) } }
                                    td { code { (s.image) } }
                                    td.state { (badge(ecs_state(s))) }
                                    td.num { (u32::from(s.running)) "/" (s.desired_count) }
                                    td.address {
                                        @if let Some(a) = s.address.as_ref().filter(|_| s.running) {
                                            a href=(a) { (a) }
                                        }
                                    }
                                    td { @if let Some((at, message)) = &s.latest_event { small { (time_el(*at)) " " (message) } } }
                                }
                            }
                        }
                    } }
                    p { small { "Scale with " code { "aws ecs update-service --cluster CLUSTER --service SERVICE --desired-count 0|1" } ", remove with " code { "aws ecs delete-service --force --cluster CLUSTER --service SERVICE" } ". Services keep running when serve stops, as in AWS." } }
                }
            }
        },
    )
}

fn exec_end(e: &Value, now: f64) -> f64 {
    if e["status"] == "InProgress" {
        now
    } else {
        e["lastUpdateTime"].as_f64().unwrap_or(now)
    }
}

/// A commit id or execution id, shortened to 8 characters as consoles show them.
fn short(rev: &str) -> &str {
    if rev.len() >= 32 && rev.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        &rev[..8]
    } else {
        rev
    }
}

/// An action's `runOrder` (1 when not given).
fn run_order(action: &Value) -> u64 {
    action["runOrder"].as_u64().unwrap_or(1)
}

/// A stage's actions, those that run first first (declaration order among equals).
fn in_run_order(stage: &Value) -> Vec<&Value> {
    let mut actions: Vec<&Value> = stage["actions"].as_array().into_iter().flatten().collect();
    actions.sort_by_key(|a| run_order(a));
    actions
}

/// The names of an action's `inputArtifacts` or `outputArtifacts`.
fn artifact_names(list: &Value) -> Vec<&str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["name"].as_str())
        .collect()
}

/// A pipeline as the console shows it: stages as columns of action cards, then its history.
pub fn pipeline(v: &Viewer, p: &PipelinePage<'_>) -> Markup {
    let here = format!("/pipelines/{}", encode(p.name));
    let stages = p.declaration["stages"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let states = p.state["stageStates"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let state_of = |name: &str| {
        states
            .iter()
            .find(|s| s["stageName"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let execution = |id: &str| p.executions.iter().find(|e| e["pipelineExecutionId"] == id);
    layout(
        Some(v),
        p.name,
        "Pipelines",
        true,
        html! {
            h1 { "Pipeline " (p.name) }
            div.buttons {
                (button(v, &here, "Release change", "primary", &[("op", "StartPipelineExecution"), ("pipelineName", p.name)]))
            }
            section #stages data-refresh aria-label="Stages" {
                div.stages {
                    @for (i, stage) in stages.iter().enumerate() {
                        @let sname = stage["name"].as_str().unwrap_or("");
                        @let st = state_of(sname);
                        @let exec_id = st["latestExecution"]["pipelineExecutionId"].as_str().unwrap_or("");
                        @let sstatus = st["latestExecution"]["status"].as_str();
                        @if i > 0 {
                            @let enabled = st["inboundTransitionState"]["enabled"].as_bool().unwrap_or(true);
                            div class=(if enabled { "transition" } else { "transition disabled" }) data-stage=(sname) {
                                @if enabled {
                                    span.arrow aria-hidden="true" { "→" }
                                    (button(v, &here, "Disable transition", "small", &[("op", "DisableStageTransition"), ("pipelineName", p.name), ("stageName", sname)]))
                                } @else {
                                    span.arrow aria-hidden="true" { "⊘" }
                                    small { "Transition disabled" @if let Some(r) = st["inboundTransitionState"]["disabledReason"].as_str() { ": " (r) } }
                                    (button(v, &here, "Enable transition", "small", &[("op", "EnableStageTransition"), ("pipelineName", p.name), ("stageName", sname)]))
                                }
                            }
                        }
                        section class=(format!("stage {}", sstatus.map(status_class).unwrap_or_default())) data-stage=(sname) aria-label=(format!("Stage {sname}")) {
                            h2 { (sname) " " @if let Some(s) = sstatus { (badge(s)) } }
                            @if !exec_id.is_empty() { p { small { "Execution " a href=(format!("{here}#x-{exec_id}")) { code { (short(exec_id)) } } } } }
                            @let actions = in_run_order(stage);
                            @let orders = actions.iter().map(|a| run_order(a)).collect::<std::collections::BTreeSet<_>>().len();
                            ol.actions {
                                @for a in actions {
                                    @let aname = a["name"].as_str().unwrap_or("");
                                    @let ast = st["actionStates"].as_array().into_iter().flatten().find(|x| x["actionName"] == aname).cloned().unwrap_or(Value::Null);
                                    @let latest = &ast["latestExecution"];
                                    @let astatus = latest["status"].as_str();
                                    @let category = a["actionTypeId"]["category"].as_str().unwrap_or("");
                                    @let provider = a["actionTypeId"]["provider"].as_str().unwrap_or("");
                                    li class=(format!("card {}", astatus.map(status_class).unwrap_or_default())) data-action=(aname) {
                                        strong { (aname) } " " small { (provider) @if orders > 1 { " · run order " (run_order(a)) } }
                                        br;
                                        @if let Some(s) = astatus { (badge(s)) } @else { span.st { "Didn't run" } }
                                        @if let Some(t) = latest["lastStatusChange"].as_f64() { " " small { (time_el(t)) } }
                                        @let message = execution(exec_id).and_then(|e| e["sourceRevisions"].as_array()).into_iter().flatten().find(|r| r["actionName"] == aname).and_then(|r| r["revisionSummary"].as_str());
                                        @if let Some(s) = latest["summary"].as_str().filter(|s| Some(*s) != message) { p.summary { (s) } }
                                        @if let Some(rev) = ast["currentRevision"]["revisionId"].as_str() {
                                            p.rev { code { (short(rev)) } @if let Some(msg) = message { " " (msg) } }
                                        }
                                        @let ins = artifact_names(&a["inputArtifacts"]);
                                        @let outs = artifact_names(&a["outputArtifacts"]);
                                        @if !ins.is_empty() || !outs.is_empty() {
                                            p.artifacts { small {
                                                @if !ins.is_empty() { span.in { "in: " (ins.join(", ")) } }
                                                @if !ins.is_empty() && !outs.is_empty() { " · " }
                                                @if !outs.is_empty() { span.out { "out: " (outs.join(", ")) } }
                                            } }
                                        }
                                        @if let Some(e) = latest["errorDetails"]["message"].as_str() { p.error { (e) } }
                                        @if let Some(id) = latest["externalExecutionId"].as_str().filter(|_| provider == "CodeBuild") {
                                            a href=(build_link(id)) { "Build details" }
                                        } @else if let Some(u) = latest["externalExecutionUrl"].as_str() {
                                            a href=(u) { "Details" }
                                        }
                                        @if category == "Approval" {
                                            @if let Some(d) = a["configuration"]["CustomData"].as_str() { p.summary { (d) } }
                                        }
                                        @if category == "Approval" && astatus == Some("InProgress") {
                                            @if let Some(token) = latest["token"].as_str().or(ast["latestExecution"]["token"].as_str()) {
                                                div.buttons {
                                                    (button(v, &here, "Approve", "primary", &[("op", "PutApprovalResult"), ("pipelineName", p.name), ("stageName", sname), ("actionName", aname), ("token", token), ("status", "Approved"), ("summary", "Approved from the localbuild console")]))
                                                    (button(v, &here, "Reject", "danger", &[("op", "PutApprovalResult"), ("pipelineName", p.name), ("stageName", sname), ("actionName", aname), ("token", token), ("status", "Rejected"), ("summary", "Rejected from the localbuild console")]))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                            @if sstatus == Some("InProgress") && !exec_id.is_empty() {
                                div.buttons {
                                    (button(v, &here, "Stop and wait", "danger", &[("op", "StopPipelineExecution"), ("pipelineName", p.name), ("pipelineExecutionId", exec_id)]))
                                    (button(v, &here, "Stop and abandon", "danger abandon", &[("op", "StopPipelineExecution"), ("pipelineName", p.name), ("pipelineExecutionId", exec_id), ("abandon", "true")]))
                                }
                            }
                        }
                    }
                }
            }
            section #history data-refresh aria-labelledby="history-h" {
                h2 #history-h { "Execution history" }
                @if p.executions.is_empty() { p { "No executions yet." } }
                @else {
                    div.scroll { table.list {
                        thead { tr { th { "Execution" } th { "Status" } th { "Source revisions" } th { "Trigger" } th { "Started" } th { "Duration" } } }
                        tbody {
                            @for e in p.executions {
                                @let id = e["pipelineExecutionId"].as_str().unwrap_or("");
                                tr id=(format!("x-{id}")) {
                                    td { code { (short(id)) } }
                                    td { (badge(e["status"].as_str().unwrap_or(""))) @if let Some(s) = e["statusSummary"].as_str() { br; small { (s) } } }
                                    td { @for r in e["sourceRevisions"].as_array().into_iter().flatten() {
                                        code { (short(r["revisionId"].as_str().unwrap_or(""))) } " " (r["revisionSummary"].as_str().unwrap_or("")) br;
                                    } }
                                    td { (e["trigger"]["triggerType"].as_str().unwrap_or("")) br; small { (e["trigger"]["triggerDetail"].as_str().unwrap_or("")) } }
                                    td { @if let Some(t) = e["startTime"].as_f64() { (time_el(t)) } }
                                    td.num { @if let Some(t) = e["startTime"].as_f64() { (duration(exec_end(e, p.now) - t)) } }
                                }
                            }
                        }
                    } }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stage_shows_every_action_in_run_order_with_its_artifacts() {
        let stage = serde_json::json!({"name": "Build", "actions": [
            {"name": "Late", "runOrder": 2, "actionTypeId": {"category": "Test", "provider": "CodeBuild"}},
            {"name": "Both", "actionTypeId": {"category": "Build", "provider": "CodeBuild"},
             "inputArtifacts": [{"name": "Front"}, {"name": "Back"}],
             "outputArtifacts": [{"name": "Web"}, {"name": "Api"}]},
            {"name": "Also", "runOrder": 1, "actionTypeId": {"category": "Build", "provider": "CodeBuild"}}]});
        let names: Vec<&str> = in_run_order(&stage)
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["Both", "Also", "Late"]);
        let v = Viewer {
            user: None,
            csrf: "t".into(),
        };
        let decl = serde_json::json!({"name": "p", "stages": [stage]});
        let page = PipelinePage {
            name: "p",
            declaration: &decl,
            state: &Value::Null,
            executions: &[],
            now: 0.0,
        };
        let html = pipeline(&v, &page).into_string();
        for a in ["Both", "Also", "Late"] {
            assert!(
                html.contains(&format!("data-action=\"{a}\"")),
                "{a}: {html}"
            );
        }
        assert!(html.contains("in: Front, Back"), "{html}");
        assert!(html.contains("out: Web, Api"), "{html}");
        assert!(html.contains("run order 2"), "{html}");
    }

    #[test]
    fn an_ecs_service_shows_its_state_and_its_address_only_while_running() {
        let v = Viewer {
            user: None,
            csrf: "t".into(),
        };
        let running = EcsService {
            cluster: "apps".into(),
            name: "web".into(),
            task_definition: "web:3".into(),
            image: "127.0.0.1:5000/web:1f3c".into(),
            desired_count: 1,
            running: true,
            address: Some("http://127.0.0.1:32768".into()),
            latest_event: Some((0.0, "(service web) has reached a steady state.".into())),
            ..EcsService::default()
        };
        let failed = EcsService {
            name: "api".into(),
            running: false,
            ..running.clone()
        };
        let stopped = EcsService {
            desired_count: 0,
            ..failed.clone()
        };
        let deleted = EcsService {
            inactive: true,
            ..running.clone()
        };
        let states: Vec<&str> = [&running, &failed, &stopped, &deleted]
            .into_iter()
            .map(ecs_state)
            .collect();
        assert_eq!(states, ["RUNNING", "FAILED", "STOPPED", "INACTIVE"]);
        let html = ecs_services(&v, &[running, failed]).into_string();
        assert_eq!(
            html.matches("href=\"http://127.0.0.1:32768\"").count(),
            1,
            "{html}"
        );
        assert!(html.contains("<td class=\"num\">1/1</td>"), "{html}");
        assert!(html.contains("<td class=\"num\">0/1</td>"), "{html}");
        assert!(html.contains("has reached a steady state."), "{html}");
    }
}
