//! SSM Parameter Store operations (AWS JSON 1.1, `AmazonSSM.*`).

use super::Aws;
use crate::error::ApiError;
use crate::protocol::{parse, unknown};
use localbuild_aws::params::{Parameter, PutParameter};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NameIn {
    name: String,
    #[allow(dead_code)]
    with_decryption: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NamesIn {
    names: Vec<String>,
    #[allow(dead_code)]
    with_decryption: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PathIn {
    path: String,
    recursive: Option<bool>,
    #[allow(dead_code)]
    with_decryption: Option<bool>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeIn {
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// Lists of parameter names (`ParameterNameList`, at least one item): AWS leaves an empty one
/// out.
fn name_lists<const N: usize>(mut out: Value, lists: [(&str, Vec<String>); N]) -> Value {
    for (key, names) in lists {
        if !names.is_empty() {
            out[key] = json!(names);
        }
    }
    out
}

/// SSM's answer to a token it did not give.
fn bad_token() -> ApiError {
    ApiError::typed(
        "InvalidNextToken",
        "The specified token is not valid.".to_owned(),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutIn {
    name: String,
    value: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
    overwrite: Option<bool>,
    description: Option<String>,
    key_id: Option<String>,
}

fn shape(p: &Parameter, account: &str, region: &str) -> Value {
    json!({
        "Name": p.name,
        "Type": p.kind,
        "Value": p.value,
        "Version": p.version,
        "LastModifiedDate": p.last_modified,
        "ARN": p.arn(account, region),
        "DataType": "text",
    })
}

pub(super) fn call(aws: &Aws, region: &str, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    let account = aws.account();
    let store = &aws.store;
    match op {
        "GetParameter" => {
            let i: NameIn = parse(body)?;
            let p = store.parameter(&i.name).map_err(ApiError::from)?;
            Ok(json!({"Parameter": shape(&p, account, region)}))
        }
        "GetParameters" => {
            let i: NamesIn = parse(body)?;
            if i.names.is_empty() || i.names.len() > 10 {
                return Err(ApiError::Validation(
                    "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length between 1 and 10".to_owned(),
                ));
            }
            let (mut found, mut invalid) = (vec![], vec![]);
            for name in &i.names {
                match store.parameter(name) {
                    Ok(p) => found.push(shape(&p, account, region)),
                    Err(localbuild_aws::AwsError::ParameterNotFound(_)) => {
                        invalid.push(name.clone())
                    }
                    Err(e) => return Err(ApiError::from(e)),
                }
            }
            Ok(name_lists(
                json!({"Parameters": found}),
                [("InvalidParameters", invalid)],
            ))
        }
        "GetParametersByPath" => {
            let i: PathIn = parse(body)?;
            if !i.path.starts_with('/') {
                return Err(ApiError::Validation(format!(
                    "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". (Path {:?})",
                    i.path
                )));
            }
            let prefix = format!("{}/", i.path.trim_end_matches('/'));
            let recursive = i.recursive.unwrap_or(false);
            let found: Vec<Parameter> = store
                .parameters()
                .map_err(ApiError::from)?
                .into_iter()
                .filter(|p| {
                    p.name
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| !rest.is_empty() && (recursive || !rest.contains('/')))
                })
                .collect();
            let (found, next) = super::page(
                found,
                |p| p.name.as_str(),
                i.max_results,
                (10, 10),
                i.next_token.as_deref(),
                bad_token,
            )?;
            let found: Vec<Value> = found.iter().map(|p| shape(p, account, region)).collect();
            let mut out = json!({"Parameters": found});
            if let Some(t) = next {
                out["NextToken"] = json!(t);
            }
            Ok(out)
        }
        "PutParameter" => {
            let i: PutIn = parse(body)?;
            let version = store
                .put_parameter(PutParameter {
                    name: i.name,
                    value: i.value,
                    kind: i.kind,
                    overwrite: i.overwrite.unwrap_or(false),
                    description: i.description,
                    key_id: i.key_id,
                })
                .map_err(ApiError::from)?;
            Ok(json!({"Version": version, "Tier": "Standard"}))
        }
        "DeleteParameter" => {
            let i: NameIn = parse(body)?;
            store.delete_parameter(&i.name).map_err(ApiError::from)?;
            Ok(json!({}))
        }
        "DeleteParameters" => {
            let i: NamesIn = parse(body)?;
            let (mut deleted, mut invalid) = (vec![], vec![]);
            for name in i.names {
                match store.delete_parameter(&name) {
                    Ok(()) => deleted.push(name),
                    Err(_) => invalid.push(name),
                }
            }
            Ok(name_lists(
                json!({}),
                [
                    ("DeletedParameters", deleted),
                    ("InvalidParameters", invalid),
                ],
            ))
        }
        "DescribeParameters" => {
            let i: DescribeIn = parse(body)?;
            let (all, next) = super::page(
                store.parameters().map_err(ApiError::from)?,
                |p| p.name.as_str(),
                i.max_results,
                (10, 50),
                i.next_token.as_deref(),
                bad_token,
            )?;
            let all: Vec<Value> = all
                .iter()
                .map(|p| {
                    let mut v = json!({
                        "Name": p.name,
                        "ARN": p.arn(account, region),
                        "Type": p.kind,
                        "LastModifiedDate": p.last_modified,
                        "Version": p.version,
                        "Tier": "Standard",
                        "DataType": "text",
                    });
                    if let Some(d) = &p.description {
                        v["Description"] = json!(d);
                    }
                    if p.kind == "SecureString" {
                        v["KeyId"] = json!(p.key_id.as_deref().unwrap_or("alias/aws/ssm"));
                    }
                    v
                })
                .collect();
            let mut out = json!({"Parameters": all});
            if let Some(t) = next {
                out["NextToken"] = json!(t);
            }
            Ok(out)
        }
        _ => Err(unknown(super::SSM, op)),
    }
}
