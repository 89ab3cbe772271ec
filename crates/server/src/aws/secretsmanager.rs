//! Secrets Manager operations (AWS JSON 1.1, `secretsmanager.*`).

use super::{Aws, service_error};
use crate::error::ApiError;
use crate::protocol::{parse, unknown};
use localbuild_aws::params::Secret;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct IdIn {
    secret_id: String,
    #[allow(dead_code)]
    version_id: Option<String>,
    #[allow(dead_code)]
    version_stage: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateIn {
    name: String,
    secret_string: Option<String>,
    secret_binary: Option<String>,
    description: Option<String>,
    #[allow(dead_code)]
    client_request_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UpdateIn {
    secret_id: String,
    secret_string: Option<String>,
    secret_binary: Option<String>,
    description: Option<String>,
    #[allow(dead_code)]
    client_request_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteIn {
    secret_id: String,
    force_delete_without_recovery: Option<bool>,
    recovery_window_in_days: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListIn {
    #[allow(dead_code)]
    max_results: Option<u64>,
}

fn binary_refused(binary: &Option<String>) -> Result<(), ApiError> {
    match binary {
        Some(_) => Err(super::typed(
            "InvalidParameterException",
            "SecretBinary is not supported by localbuild's Secrets Manager; use SecretString."
                .to_owned(),
        )),
        None => Ok(()),
    }
}

/// DescribeSecret's answer, or (`listed`) a ListSecrets entry, which names the versions
/// `SecretVersionsToStages`.
fn describe(s: &Secret, region: &str, listed: bool) -> Value {
    let versions = if listed {
        "SecretVersionsToStages"
    } else {
        "VersionIdsToStages"
    };
    let mut v = json!({
        "ARN": s.arn(region),
        "Name": s.name,
        "LastChangedDate": s.last_changed,
        "CreatedDate": s.created,
    });
    v[versions] = json!({s.version_id.clone(): ["AWSCURRENT"]});
    if let Some(d) = &s.description {
        v["Description"] = json!(d);
    }
    if let Some(d) = s.deleted_date {
        v["DeletedDate"] = json!(d);
    }
    v
}

pub(super) fn call(aws: &Aws, region: &str, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    let store = &aws.store;
    match op {
        "GetSecretValue" => {
            let i: IdIn = parse(body)?;
            let s = store.live_secret(&i.secret_id).map_err(service_error)?;
            let Some(value) = &s.secret_string else {
                return Err(service_error(localbuild_aws::AwsError::SecretNotFound));
            };
            Ok(json!({
                "ARN": s.arn(region),
                "Name": s.name,
                "VersionId": s.version_id,
                "SecretString": value,
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": s.last_changed,
            }))
        }
        "CreateSecret" => {
            let i: CreateIn = parse(body)?;
            binary_refused(&i.secret_binary)?;
            let s = store
                .create_secret(&i.name, i.secret_string, i.description)
                .map_err(service_error)?;
            Ok(json!({"ARN": s.arn(region), "Name": s.name, "VersionId": s.version_id}))
        }
        "PutSecretValue" | "UpdateSecret" => {
            let i: UpdateIn = parse(body)?;
            binary_refused(&i.secret_binary)?;
            if op == "PutSecretValue" && i.secret_string.is_none() {
                return Err(super::typed(
                    "InvalidRequestException",
                    "You must provide either SecretString or SecretBinary.".to_owned(),
                ));
            }
            let changes_value = i.secret_string.is_some();
            let s = store
                .update_secret(&i.secret_id, i.secret_string, i.description)
                .map_err(service_error)?;
            let mut out = json!({"ARN": s.arn(region), "Name": s.name});
            if changes_value {
                out["VersionId"] = json!(s.version_id);
            }
            if op == "PutSecretValue" {
                out["VersionStages"] = json!(["AWSCURRENT"]);
            }
            Ok(out)
        }
        "DeleteSecret" => {
            let i: DeleteIn = parse(body)?;
            let force = i.force_delete_without_recovery.unwrap_or(false);
            if force && i.recovery_window_in_days.is_some() {
                return Err(super::typed(
                    "InvalidParameterException",
                    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.".to_owned(),
                ));
            }
            if let Some(days) = i.recovery_window_in_days
                && !(7..=30).contains(&days)
            {
                return Err(super::typed(
                    "InvalidParameterException",
                    "RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
                        .to_owned(),
                ));
            }
            let s = store
                .delete_secret(&i.secret_id, force)
                .map_err(service_error)?;
            let days = i.recovery_window_in_days.unwrap_or(30) as f64;
            let at = s.deleted_date.unwrap_or_default();
            let when = if force { at } else { at + days * 86400.0 };
            Ok(json!({"ARN": s.arn(region), "Name": s.name, "DeletionDate": when}))
        }
        "DescribeSecret" => {
            let i: IdIn = parse(body)?;
            let s = store.secret(&i.secret_id).map_err(service_error)?;
            Ok(describe(&s, region, false))
        }
        "ListSecrets" => {
            let _: ListIn = parse(body)?;
            let list: Vec<Value> = store
                .secrets()
                .map_err(service_error)?
                .iter()
                .filter(|s| s.deleted_date.is_none())
                .map(|s| describe(s, region, true))
                .collect();
            Ok(json!({"SecretList": list}))
        }
        _ => Err(unknown(super::SECRETS_MANAGER, op)),
    }
}
