//! CodePipeline's shapes of the executor's records (`localbuild_pipeline::exec`): an
//! `ActionExecution` (GetPipelineState), a `PipelineExecution`, a
//! `PipelineExecutionSummary`, `ActionExecutionDetail`s (ListActionExecutions).

use super::exec::{ActionRec, Execution};
use super::machine::ActionStatus;
use serde_json::{Value, json};

/// An `ActionExecutionStatus` name.
pub(crate) fn action_status_name(s: ActionStatus) -> &'static str {
    match s {
        ActionStatus::NotStarted | ActionStatus::InProgress => "InProgress",
        ActionStatus::Succeeded => "Succeeded",
        ActionStatus::Failed => "Failed",
        ActionStatus::Abandoned => "Abandoned",
    }
}

/// The wire shape of a running or finished action.
pub(crate) trait ActionWire {
    fn latest(&self) -> Option<Value>;
}

impl ActionWire for ActionRec {
    /// `ActionExecution` of GetPipelineState.
    fn latest(&self) -> Option<Value> {
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

/// The wire shapes of an execution.
pub(crate) trait ExecutionWire {
    fn trigger(&self) -> Value;
    fn execution(&self) -> Value;
    fn summary(&self) -> Value;
    fn action_details(&self) -> Vec<Value>;
}

impl ExecutionWire for Execution {
    fn trigger(&self) -> Value {
        json!({"triggerType": self.trigger_type, "triggerDetail": self.trigger_detail})
    }

    /// `PipelineExecution`.
    fn execution(&self) -> Value {
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
    fn summary(&self) -> Value {
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

    /// `ActionExecutionDetail`s of this execution, newest first.
    fn action_details(&self) -> Vec<Value> {
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
}
