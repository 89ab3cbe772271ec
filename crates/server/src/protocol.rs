//! AWS JSON 1.1 on the wire: `POST /` with `X-Amz-Target: <Prefix>.<Operation>` and a JSON
//! body (empty means `{}`), answered with `application/x-amz-json-1.1`. This module finds the
//! service by its target prefix and hands the operation name and body to it; each service
//! module has its own dispatch table. Bodies are parsed here ([`parse`]) so that every
//! malformed body is the same `SerializationException` naming the field.

use crate::error::{self, ApiError};
use crate::{Ctx, codebuild, ecs, logs, pipeline};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// CodeBuild's target prefix.
pub const CODEBUILD: &str = "CodeBuild_20161006";
/// CodePipeline's target prefix.
pub const CODEPIPELINE: &str = "CodePipeline_20150709";
/// CodeStar Connections' target prefix.
pub const CODESTAR_CONNECTIONS: &str =
    "com.amazonaws.codestar.connections.CodeStar_connections_20191201";
/// CodeConnections' target prefix (the same operations under the new name).
pub const CODECONNECTIONS: &str = "com.amazonaws.codeconnections.CodeConnections_20231201";
/// CloudWatch Logs' target prefix.
pub const LOGS: &str = "Logs_20140328";

/// The SigV4 signing names (credential scope service) of the API `target` calls, first the
/// one AWS names in its error; without a target this server knows, any of its APIs' (the call
/// then fails as an unknown operation).
pub fn signing_names(target: Option<&str>) -> &'static [&'static str] {
    match target
        .and_then(|t| t.rsplit_once('.'))
        .map(|(prefix, _)| prefix)
    {
        Some(CODEBUILD) => &["codebuild"],
        Some(LOGS) => &["logs"],
        Some(CODEPIPELINE) => &["codepipeline"],
        Some(CODESTAR_CONNECTIONS) => &["codestar-connections"],
        Some(CODECONNECTIONS) => &["codeconnections"],
        Some(ecs::ECS) => &["ecs"],
        _ => &[
            "codebuild",
            "logs",
            "codepipeline",
            "codestar-connections",
            "codeconnections",
            "ecs",
        ],
    }
}

/// Parse a request body into an operation's input shape.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(error::serialization)
}

/// Serialise an operation's output.
pub fn json<T: serde::Serialize>(value: &T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value).map_err(|e| ApiError::Service(format!("cannot encode: {e}")))
}

/// Run the operation named by `target`.
pub async fn call(ctx: Ctx, target: Option<&str>, body: &[u8]) -> Response {
    let result = match target.and_then(|t| t.rsplit_once('.')) {
        Some((CODEBUILD, op)) => codebuild::call(&ctx, op, body).await,
        Some((LOGS, op)) => logs::call(&ctx, op, body).await,
        Some((CODEPIPELINE, op)) => pipeline::call(&ctx, op, body).await,
        Some((CODESTAR_CONNECTIONS, op)) => {
            pipeline::connections::call(&ctx, CODESTAR_CONNECTIONS, op, body)
        }
        Some((CODECONNECTIONS, op)) => pipeline::connections::call(&ctx, CODECONNECTIONS, op, body),
        Some((ecs::ECS, op)) => ecs::call(&ctx, op, body).await,
        _ => Err(ApiError::UnknownOperation(format!(
            "Unknown operation: X-Amz-Target {}",
            target.map_or_else(|| "is missing".to_owned(), |t| format!("'{t}'"))
        ))),
    };
    match result {
        Ok(value) => (
            [("content-type", "application/x-amz-json-1.1")],
            value.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// The error for an operation name a service does not have.
pub fn unknown(service: &str, op: &str) -> ApiError {
    ApiError::UnknownOperation(format!("Unknown operation: {service}.{op}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct In {
        project_name: String,
        ids: Option<Vec<String>>,
    }

    #[test]
    fn each_api_has_its_signing_name() {
        let name = |t: &str| signing_names(Some(t));
        assert_eq!(name("CodeBuild_20161006.StartBuild"), ["codebuild"]);
        assert_eq!(name("Logs_20140328.GetLogEvents"), ["logs"]);
        assert_eq!(name("CodePipeline_20150709.GetPipeline"), ["codepipeline"]);
        assert_eq!(
            name(
                "com.amazonaws.codestar.connections.CodeStar_connections_20191201.ListConnections"
            ),
            ["codestar-connections"]
        );
        assert_eq!(
            name("com.amazonaws.codeconnections.CodeConnections_20231201.ListConnections"),
            ["codeconnections"]
        );
        assert_eq!(
            name("AmazonEC2ContainerServiceV20141113.ListServices"),
            ["ecs"]
        );
        assert_eq!(signing_names(None).len(), 6);
        assert_eq!(name("Nope_2020.X").len(), 6);
    }

    #[test]
    fn malformed_bodies_name_the_field() {
        let e = parse::<In>(br#"{"projectName": 3}"#).unwrap_err();
        assert_eq!(e.aws_type(), "SerializationException");
        assert!(e.to_string().contains("projectName"), "{e}");
        let e = parse::<In>(br#"{"projectName": "a", "ids": [1]}"#).unwrap_err();
        assert!(e.to_string().contains("ids[0]"), "{e}");
        let e = parse::<In>(b"{not json").unwrap_err();
        assert_eq!(e.aws_type(), "SerializationException");
        assert!(parse::<In>(br#"{"projectName": "a"}"#).is_ok());
    }
}
