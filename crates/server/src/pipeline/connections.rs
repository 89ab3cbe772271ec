//! CodeStar Connections / CodeConnections: `CreateConnection` (AVAILABLE at once: there is no
//! handshake with a provider; repositories resolve under the server's git root),
//! `GetConnection`, `ListConnections`, `DeleteConnection`. Kept in the docs table, one
//! document per connection ARN.

use crate::Ctx;
use crate::error::ApiError;
use crate::protocol::{CODECONNECTIONS, parse, unknown};
use serde::Deserialize;
use serde_json::{Value, json};

/// The document kind of connections (key: the ARN).
pub(crate) use super::exec::CONNECTION_DOC;

/// Run one connections operation (`service` is the target prefix used).
pub fn call(ctx: &Ctx, service: &str, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "CreateConnection" => create(ctx, service, body),
        "GetConnection" => get(ctx, body),
        "ListConnections" => list(ctx, body),
        "DeleteConnection" => delete(ctx, body),
        _ => Err(unknown(service, op)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateInput {
    connection_name: String,
    provider_type: Option<String>,
    host_arn: Option<String>,
    tags: Option<Value>,
}

fn create(ctx: &Ctx, service: &str, body: &[u8]) -> Result<Value, ApiError> {
    let input: CreateInput = parse(body)?;
    let name = &input.connection_name;
    if name.is_empty() || name.len() > 32 {
        return Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{name}' at 'connectionName' failed to satisfy constraint: Member must have length between 1 and 32"
        )));
    }
    let provider = input.provider_type.unwrap_or_else(|| "GitHub".to_owned());
    const PROVIDERS: [&str; 5] = [
        "Bitbucket",
        "GitHub",
        "GitHubEnterpriseServer",
        "GitLab",
        "GitLabSelfManaged",
    ];
    if !PROVIDERS.contains(&provider.as_str()) {
        return Err(ApiError::Validation(format!(
            "1 validation error detected: Value '{provider}' at 'providerType' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            PROVIDERS.join(", ")
        )));
    }
    let svc = if service == CODECONNECTIONS {
        "codeconnections"
    } else {
        "codestar-connections"
    };
    let arn = format!(
        "arn:aws:{svc}:{}:{}:connection/{}",
        ctx.region,
        ctx.account(),
        uuid::Uuid::new_v4()
    );
    let mut conn = json!({
        "ConnectionName": name,
        "ConnectionArn": arn,
        "ProviderType": provider,
        "OwnerAccountId": ctx.account(),
        "ConnectionStatus": "AVAILABLE",
    });
    if let Some(h) = input.host_arn {
        conn["HostArn"] = json!(h);
    }
    ctx.state
        .history
        .db()
        .put_doc(CONNECTION_DOC, &arn, &conn.to_string())
        .map_err(ApiError::db)?;
    let mut out = json!({ "ConnectionArn": arn });
    if let Some(t) = input
        .tags
        .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
    {
        out["Tags"] = t;
    }
    Ok(out)
}

/// A stored connection by ARN.
pub(crate) fn find(ctx: &Ctx, arn: &str) -> Result<Option<Value>, ApiError> {
    let doc = ctx
        .state
        .history
        .db()
        .get_doc(CONNECTION_DOC, arn)
        .map_err(ApiError::db)?;
    Ok(doc.and_then(|d| serde_json::from_str(&d).ok()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArnInput {
    connection_arn: String,
}

fn not_found(arn: &str) -> ApiError {
    ApiError::ResourceNotFound(format!("Connection {arn} not found"))
}

fn get(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ArnInput = parse(body)?;
    let conn = find(ctx, &input.connection_arn)?.ok_or_else(|| not_found(&input.connection_arn))?;
    Ok(json!({ "Connection": conn }))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListInput {
    provider_type_filter: Option<String>,
    host_arn_filter: Option<String>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

fn list(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ListInput = parse(body)?;
    let docs = ctx
        .state
        .history
        .db()
        .list_docs(CONNECTION_DOC, "")
        .map_err(ApiError::db)?;
    let all: Vec<Value> = docs
        .into_iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(&d).ok())
        .filter(|c| {
            input
                .provider_type_filter
                .as_deref()
                .is_none_or(|p| c["ProviderType"] == p)
                && input
                    .host_arn_filter
                    .as_deref()
                    .is_none_or(|h| c["HostArn"] == h)
        })
        .collect();
    let start = match input.next_token.as_deref() {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::Validation(format!("Invalid NextToken: {t}")))?,
    };
    let size = usize::try_from(input.max_results.unwrap_or(50).clamp(1, 100)).unwrap_or(50);
    let page: Vec<&Value> = all.iter().skip(start).take(size).collect();
    let mut out = json!({ "Connections": page });
    if start + size < all.len() {
        out["NextToken"] = json!((start + size).to_string());
    }
    Ok(out)
}

fn delete(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: ArnInput = parse(body)?;
    let deleted = ctx
        .state
        .history
        .db()
        .delete_doc(CONNECTION_DOC, &input.connection_arn)
        .map_err(ApiError::db)?;
    if !deleted {
        return Err(not_found(&input.connection_arn));
    }
    Ok(json!({}))
}
