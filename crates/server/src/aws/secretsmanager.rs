//! Secrets Manager operations (AWS JSON 1.1, `secretsmanager.*`).

use super::Aws;
use crate::error::ApiError;
use crate::protocol::{parse, unknown};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use localbuild_aws::params::{Secret, SecretChange, SecretValue};
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
    kms_key_id: Option<String>,
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
    kms_key_id: Option<String>,
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
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// The value a request gives: `SecretString` or `SecretBinary` (base64 on the wire), not both.
fn value(string: Option<String>, binary: Option<String>) -> Result<Option<SecretValue>, ApiError> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(ApiError::typed(
            "InvalidParameterException",
            "You can't specify both SecretString and SecretBinary: a secret version has one or the other."
                .to_owned(),
        )),
        (Some(s), None) => Ok(Some(SecretValue::String(s))),
        (None, Some(b)) => STANDARD
            .decode(b.as_bytes())
            .map(|b| Some(SecretValue::Binary(b)))
            .map_err(|_| {
                ApiError::Serialization(
                    "SecretBinary must be base64-encoded binary data".to_owned(),
                )
            }),
        (None, None) => Ok(None),
    }
}

/// DescribeSecret's answer, or (`listed`) a ListSecrets entry, which names the versions
/// `SecretVersionsToStages`.
fn describe(s: &Secret, account: &str, region: &str, listed: bool) -> Value {
    let versions = if listed {
        "SecretVersionsToStages"
    } else {
        "VersionIdsToStages"
    };
    let mut v = json!({
        "ARN": s.arn(account, region),
        "Name": s.name,
        "LastChangedDate": s.last_changed,
        "CreatedDate": s.created,
    });
    v[versions] = json!({s.version_id.clone(): ["AWSCURRENT"]});
    if let Some(d) = &s.description {
        v["Description"] = json!(d);
    }
    if let Some(k) = &s.kms_key_id {
        v["KmsKeyId"] = json!(k);
    }
    if let Some(d) = s.deleted_date {
        v["DeletedDate"] = json!(d);
    }
    v
}

pub(super) fn call(aws: &Aws, region: &str, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    let account = aws.account();
    let store = &aws.store;
    match op {
        "GetSecretValue" => {
            let i: IdIn = parse(body)?;
            let s = store.live_secret(&i.secret_id).map_err(ApiError::from)?;
            let mut out = json!({
                "ARN": s.arn(account, region),
                "Name": s.name,
                "VersionId": s.version_id,
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": s.last_changed,
            });
            match (&s.secret_string, &s.secret_binary) {
                (Some(v), _) => out["SecretString"] = json!(v),
                (None, Some(b)) => out["SecretBinary"] = json!(STANDARD.encode(b)),
                (None, None) => {
                    return Err(ApiError::from(localbuild_aws::AwsError::SecretNotFound));
                }
            }
            Ok(out)
        }
        "CreateSecret" => {
            let i: CreateIn = parse(body)?;
            let change = SecretChange {
                value: value(i.secret_string, i.secret_binary)?,
                description: i.description,
                kms_key_id: i.kms_key_id,
            };
            let has_value = change.value.is_some();
            let s = store
                .create_secret(&i.name, change)
                .map_err(ApiError::from)?;
            let mut out = json!({"ARN": s.arn(account, region), "Name": s.name});
            if has_value {
                out["VersionId"] = json!(s.version_id);
            }
            Ok(out)
        }
        "PutSecretValue" | "UpdateSecret" => {
            let i: UpdateIn = parse(body)?;
            let value = value(i.secret_string, i.secret_binary)?;
            if op == "PutSecretValue" && value.is_none() {
                return Err(ApiError::typed(
                    "InvalidRequestException",
                    "You must provide either SecretString or SecretBinary.".to_owned(),
                ));
            }
            let changes_value = value.is_some();
            let change = SecretChange {
                value,
                // PutSecretValue changes only the value.
                description: i.description.filter(|_| op == "UpdateSecret"),
                kms_key_id: i.kms_key_id.filter(|_| op == "UpdateSecret"),
            };
            let s = store
                .update_secret(&i.secret_id, change)
                .map_err(ApiError::from)?;
            let mut out = json!({"ARN": s.arn(account, region), "Name": s.name});
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
                return Err(ApiError::typed(
                    "InvalidParameterException",
                    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.".to_owned(),
                ));
            }
            if let Some(days) = i.recovery_window_in_days
                && !(7..=30).contains(&days)
            {
                return Err(ApiError::typed(
                    "InvalidParameterException",
                    "RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
                        .to_owned(),
                ));
            }
            let s = store
                .delete_secret(&i.secret_id, force)
                .map_err(ApiError::from)?;
            let days = i.recovery_window_in_days.unwrap_or(30) as f64;
            let at = s.deleted_date.unwrap_or_default();
            let when = if force { at } else { at + days * 86400.0 };
            Ok(json!({"ARN": s.arn(account, region), "Name": s.name, "DeletionDate": when}))
        }
        "DescribeSecret" => {
            let i: IdIn = parse(body)?;
            let s = store.secret(&i.secret_id).map_err(ApiError::from)?;
            Ok(describe(&s, account, region, false))
        }
        "ListSecrets" => {
            let i: ListIn = parse(body)?;
            let live: Vec<Secret> = store
                .secrets()
                .map_err(ApiError::from)?
                .into_iter()
                .filter(|s| s.deleted_date.is_none())
                .collect();
            let (list, next) = super::page(
                live,
                |s| s.name.as_str(),
                i.max_results,
                (100, 100),
                i.next_token.as_deref(),
                || {
                    ApiError::typed(
                        "InvalidNextTokenException",
                        "The NextToken value is invalid.".to_owned(),
                    )
                },
            )?;
            let list: Vec<Value> = list
                .iter()
                .map(|s| describe(s, account, region, true))
                .collect();
            let mut out = json!({"SecretList": list});
            if let Some(t) = next {
                out["NextToken"] = json!(t);
            }
            Ok(out)
        }
        _ => Err(unknown(super::SECRETS_MANAGER, op)),
    }
}
