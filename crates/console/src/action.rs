//! The console's buttons: each is a form posted to `/console/action`, read here into one typed
//! [`Action`] (a whitelist: a button can do nothing the API cannot). The server carries it out
//! with the same functions its API handlers use (the build service, the pipeline module), as
//! the console, in its own region; the page then goes where [`Action::page_after`] says.

use std::collections::HashMap;

/// What a console button asks for: one operation of the CodeBuild or CodePipeline API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    StopBuild {
        id: String,
    },
    RetryBuild {
        id: String,
    },
    StopBuildBatch {
        id: String,
    },
    RetryBuildBatch {
        id: String,
    },
    StartPipelineExecution {
        pipeline: String,
    },
    StopPipelineExecution {
        pipeline: String,
        execution: String,
        abandon: bool,
    },
    PutApprovalResult {
        pipeline: String,
        stage: String,
        action: String,
        token: String,
        approved: bool,
        summary: String,
    },
    /// Enable or Disable the inbound transition of a stage.
    SetTransition {
        pipeline: String,
        stage: String,
        enable: bool,
        reason: String,
    },
}

/// Why a stop from the console is: the execution's summary.
pub const STOP_REASON: &str = "Stopped from the localbuild console";
/// A disabled transition's reason when the form gives none.
pub const DISABLE_REASON: &str = "Disabled from the localbuild console";

impl Action {
    /// The form's action (`op` and its fields); the error says what is wrong with the form.
    pub fn from_form(form: &HashMap<String, String>) -> Result<Action, String> {
        let field = |name: &str| {
            form.get(name)
                .filter(|v| !v.is_empty())
                .cloned()
                .ok_or_else(|| format!("the form has no {name}"))
        };
        let op = form.get("op").map(String::as_str).unwrap_or_default();
        Ok(match op {
            "StopBuild" => Action::StopBuild { id: field("id")? },
            "RetryBuild" => Action::RetryBuild { id: field("id")? },
            "StopBuildBatch" => Action::StopBuildBatch { id: field("id")? },
            "RetryBuildBatch" => Action::RetryBuildBatch { id: field("id")? },
            "StartPipelineExecution" => Action::StartPipelineExecution {
                pipeline: field("pipelineName")?,
            },
            "StopPipelineExecution" => Action::StopPipelineExecution {
                pipeline: field("pipelineName")?,
                execution: field("pipelineExecutionId")?,
                abandon: form.get("abandon").is_some_and(|v| v == "true"),
            },
            "PutApprovalResult" => {
                let status = field("status")?;
                let approved = match status.as_str() {
                    "Approved" => true,
                    "Rejected" => false,
                    _ => {
                        return Err(format!("status must be Approved or Rejected, not {status}"));
                    }
                };
                Action::PutApprovalResult {
                    pipeline: field("pipelineName")?,
                    stage: field("stageName")?,
                    action: field("actionName")?,
                    token: field("token")?,
                    approved,
                    summary: form.get("summary").cloned().unwrap_or_default(),
                }
            }
            "EnableStageTransition" | "DisableStageTransition" => Action::SetTransition {
                pipeline: field("pipelineName")?,
                stage: field("stageName")?,
                enable: op == "EnableStageTransition",
                reason: form
                    .get("reason")
                    .filter(|r| !r.is_empty())
                    .cloned()
                    .unwrap_or_else(|| DISABLE_REASON.to_owned()),
            },
            other => return Err(format!("the console has no action {other:?}")),
        })
    }

    /// The API operation's name (for the page that reports a failure).
    pub fn operation(&self) -> &'static str {
        match self {
            Action::StopBuild { .. } => "StopBuild",
            Action::RetryBuild { .. } => "RetryBuild",
            Action::StopBuildBatch { .. } => "StopBuildBatch",
            Action::RetryBuildBatch { .. } => "RetryBuildBatch",
            Action::StartPipelineExecution { .. } => "StartPipelineExecution",
            Action::StopPipelineExecution { .. } => "StopPipelineExecution",
            Action::PutApprovalResult { .. } => "PutApprovalResult",
            Action::SetTransition { enable: true, .. } => "EnableStageTransition",
            Action::SetTransition { enable: false, .. } => "DisableStageTransition",
        }
    }

    /// Where the console goes once the action is done: the build or batch a retry started
    /// (`started`: its id), else `back`.
    pub fn page_after(&self, started: Option<&str>, back: String) -> String {
        match (self, started) {
            (Action::RetryBuild { .. }, Some(id)) => crate::build_path(id),
            (Action::RetryBuildBatch { .. }, Some(id)) => crate::batch_path(id),
            _ => back,
        }
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
    fn buttons_are_read_into_typed_actions() {
        assert_eq!(
            Action::from_form(&form(&[("op", "StopBuild"), ("id", "p:1")])),
            Ok(Action::StopBuild { id: "p:1".into() })
        );
        let a = Action::from_form(&form(&[
            ("op", "PutApprovalResult"),
            ("pipelineName", "p"),
            ("stageName", "Approve"),
            ("actionName", "Manual"),
            ("token", "t"),
            ("status", "Approved"),
        ]))
        .unwrap();
        assert!(matches!(
            a,
            Action::PutApprovalResult { approved: true, .. }
        ));
        assert_eq!(a.operation(), "PutApprovalResult");
        let t = Action::from_form(&form(&[
            ("op", "DisableStageTransition"),
            ("pipelineName", "p"),
            ("stageName", "Deploy"),
        ]))
        .unwrap();
        assert_eq!(
            t,
            Action::SetTransition {
                pipeline: "p".into(),
                stage: "Deploy".into(),
                enable: false,
                reason: DISABLE_REASON.into()
            }
        );
        assert_eq!(t.operation(), "DisableStageTransition");
        assert!(
            Action::from_form(&form(&[("op", "StopBuild")]))
                .unwrap_err()
                .contains("id")
        );
        assert!(Action::from_form(&form(&[("op", "DeleteProject"), ("id", "x")])).is_err());
        let bad = form(&[
            ("op", "PutApprovalResult"),
            ("pipelineName", "p"),
            ("stageName", "s"),
            ("actionName", "a"),
            ("token", "t"),
            ("status", "Maybe"),
        ]);
        assert!(Action::from_form(&bad).is_err());
    }

    #[test]
    fn a_retry_goes_to_what_it_started() {
        let back = || "/pipelines/p".to_owned();
        let retry = Action::RetryBuild { id: "web:1".into() };
        assert_eq!(retry.page_after(Some("web:2"), back()), "/builds/web%3A2");
        let batch = Action::RetryBuildBatch { id: "web:b".into() };
        assert_eq!(batch.page_after(Some("web:b"), back()), "/batches/web%3Ab");
        let stop = Action::StopBuild { id: "web:1".into() };
        assert_eq!(stop.page_after(None, back()), "/pipelines/p");
    }
}
