//! The console's buttons: each is a form posted to `/console/action`, mapped here to one API
//! operation and its JSON body (a whitelist), so a button can do nothing the API cannot. The
//! server runs the operation as the console, in its own region.

use serde_json::{Value, json};
use std::collections::HashMap;

/// Which API an operation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    CodeBuild,
    CodePipeline,
}

/// One API operation, as a console button asks for it.
#[derive(Debug, PartialEq)]
pub struct ApiCall {
    pub api: Api,
    pub op: &'static str,
    pub body: Value,
}

/// The API operation of a console form (`op` and its fields); the error says what is wrong
/// with the form.
pub fn action_call(form: &HashMap<String, String>) -> Result<ApiCall, String> {
    let field = |name: &str| {
        form.get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("the form has no {name}"))
    };
    let op = form.get("op").map(String::as_str).unwrap_or_default();
    let (api, op, body) = match op {
        "StopBuild" => (Api::CodeBuild, "StopBuild", json!({"id": field("id")?})),
        "RetryBuild" => (Api::CodeBuild, "RetryBuild", json!({"id": field("id")?})),
        "StopBuildBatch" => (
            Api::CodeBuild,
            "StopBuildBatch",
            json!({"id": field("id")?}),
        ),
        "RetryBuildBatch" => (
            Api::CodeBuild,
            "RetryBuildBatch",
            json!({"id": field("id")?}),
        ),
        "StartPipelineExecution" => (
            Api::CodePipeline,
            "StartPipelineExecution",
            json!({"name": field("pipelineName")?}),
        ),
        "StopPipelineExecution" => (
            Api::CodePipeline,
            "StopPipelineExecution",
            json!({
                "pipelineName": field("pipelineName")?,
                "pipelineExecutionId": field("pipelineExecutionId")?,
                "abandon": form.get("abandon").is_some_and(|v| v == "true"),
                "reason": "Stopped from the localbuild console",
            }),
        ),
        "PutApprovalResult" => {
            let status = field("status")?;
            if status != "Approved" && status != "Rejected" {
                return Err(format!("status must be Approved or Rejected, not {status}"));
            }
            (
                Api::CodePipeline,
                "PutApprovalResult",
                json!({
                    "pipelineName": field("pipelineName")?,
                    "stageName": field("stageName")?,
                    "actionName": field("actionName")?,
                    "token": field("token")?,
                    "result": {
                        "status": status,
                        "summary": form.get("summary").cloned().unwrap_or_default(),
                    },
                }),
            )
        }
        "EnableStageTransition" => (
            Api::CodePipeline,
            "EnableStageTransition",
            json!({
                "pipelineName": field("pipelineName")?,
                "stageName": field("stageName")?,
                "transitionType": "Inbound",
            }),
        ),
        "DisableStageTransition" => (
            Api::CodePipeline,
            "DisableStageTransition",
            json!({
                "pipelineName": field("pipelineName")?,
                "stageName": field("stageName")?,
                "transitionType": "Inbound",
                "reason": form.get("reason").filter(|r| !r.is_empty()).cloned()
                    .unwrap_or_else(|| "Disabled from the localbuild console".to_owned()),
            }),
        ),
        other => return Err(format!("the console has no action {other:?}")),
    };
    Ok(ApiCall { api, op, body })
}

/// Where the console goes after an operation answered `out`: the build or batch it started
/// (Retry), else `back`.
pub fn after(out: &Value, back: String) -> String {
    if let Some(id) = out["build"]["id"].as_str() {
        crate::build_path(id)
    } else if let Some(id) = out["buildBatch"]["id"].as_str() {
        crate::batch_path(id)
    } else {
        back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn buttons_map_to_api_operations() {
        let c = action_call(&form(&[("op", "StopBuild"), ("id", "p:1")])).unwrap();
        assert_eq!(
            (c.api, c.op, c.body),
            (Api::CodeBuild, "StopBuild", json!({"id": "p:1"}))
        );
        let c = action_call(&form(&[
            ("op", "PutApprovalResult"),
            ("pipelineName", "p"),
            ("stageName", "Approve"),
            ("actionName", "Manual"),
            ("token", "t"),
            ("status", "Approved"),
        ]))
        .unwrap();
        assert_eq!(c.body["result"]["status"], "Approved");
        assert_eq!(c.api, Api::CodePipeline);
        assert!(
            action_call(&form(&[("op", "StopBuild")]))
                .unwrap_err()
                .contains("id")
        );
        assert!(action_call(&form(&[("op", "DeleteProject"), ("id", "x")])).is_err());
        let bad = form(&[
            ("op", "PutApprovalResult"),
            ("pipelineName", "p"),
            ("stageName", "s"),
            ("actionName", "a"),
            ("token", "t"),
            ("status", "Maybe"),
        ]);
        assert!(action_call(&bad).is_err());
    }

    #[test]
    fn a_retry_goes_to_what_it_started() {
        let back = || "/pipelines/p".to_owned();
        assert_eq!(
            after(&json!({"build": {"id": "web:2"}}), back()),
            "/builds/web%3A2"
        );
        assert_eq!(
            after(&json!({"buildBatch": {"id": "web:b"}}), back()),
            "/batches/web%3Ab"
        );
        assert_eq!(after(&json!({}), back()), "/pipelines/p");
    }
}
