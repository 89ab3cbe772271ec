//! The local AWS services on the wire: SSM Parameter Store and Secrets Manager (AWS JSON 1.1,
//! `X-Amz-Target: AmazonSSM.*` / `secretsmanager.*`), STS and IAM (the query protocol,
//! [`query`]: a form body with `Action`, answered in XML; IAM's requests are signed for `iam`,
//! or unsigned with `Version=2010-05-08`), S3 (REST/XML, [`s3`]; requests signed for `s3`, and on
//! a build's endpoint every request that is neither JSON nor a query) and ECR ([`ecr`], JSON 1.1,
//! `AmazonEC2ContainerRegistry_V20150921.*`). The services themselves are `localbuild-aws`; this module
//! only decodes requests, checks who signed them ([`Aws::authorize`]) and encodes answers.
//!
//! They answer on `serve`'s port (next to CodeBuild) and on each build's own endpoint
//! ([`endpoint`]), which accepts only signed requests by a key [`Aws::ids`] knows: the build's
//! session, `AssumeRole` sessions and the `--credentials` keys.

pub mod ecr;
pub mod endpoint;
mod iam;
mod query;
pub mod s3;
mod secretsmanager;
mod ssm;
mod sts;

use crate::error::ApiError;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use localbuild_aws::params::Store;
use localbuild_aws::sts::{Identities, Identity, KeyCheck};

/// SSM's target prefix.
pub const SSM: &str = "AmazonSSM";
/// Secrets Manager's target prefix.
pub const SECRETS_MANAGER: &str = "secretsmanager";

/// The local AWS services one process serves. Cloning shares the stores and sessions.
#[derive(Clone)]
pub struct Aws {
    pub store: Store,
    /// Buckets and objects (`$LOCALBUILD_HOME/s3`).
    pub s3: localbuild_aws::s3::S3,
    pub ids: Identities,
    /// IAM's stand-in (stored and shown, not enforced).
    pub iam: localbuild_aws::iam::Iam,
    /// Accept unsigned requests (serve without `--credentials`); a build's endpoint never does.
    pub open: bool,
    /// The region of an unsigned request's ARNs, and the region of the ECR references that
    /// map to the local registry.
    pub region: String,
    /// ECR and its registry (`None`: this process serves no ECR; its calls say so).
    pub ecr: Option<std::sync::Arc<localbuild_aws::ecr::Ecr>>,
}

impl Aws {
    /// The account of these services' ARNs (the one STS answers; `--account-id`).
    pub fn account(&self) -> &str {
        self.ids.account()
    }
}

/// Which of these services a request calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    Ssm(String),
    SecretsManager(String),
    Ecr(String),
    /// STS's `Action` and the form's other fields.
    Sts(String, Vec<(String, String)>),
    /// IAM's `Action` and the form's other fields.
    Iam(String, Vec<(String, String)>),
}

impl Api {
    /// The service a request is for, if it is one of these: by `X-Amz-Target`, or (no target) a
    /// form body with an `Action` (the query protocol: IAM when signed for `iam`, or unsigned
    /// with IAM's `Version`; STS otherwise).
    pub fn of(headers: &HeaderMap, body: &[u8]) -> Option<Api> {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
        if let Some(target) = target {
            return match target.rsplit_once('.') {
                Some((SSM, op)) => Some(Api::Ssm(op.to_owned())),
                Some((SECRETS_MANAGER, op)) => Some(Api::SecretsManager(op.to_owned())),
                Some((ecr::ECR, op)) => Some(Api::Ecr(op.to_owned())),
                _ => None,
            };
        }
        let form = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return None;
        }
        let fields = query::form(body);
        let action = query::field(&fields, "Action")?.to_owned();
        let iam = match localbuild_sigv4::parse_authorization(&header_pairs(headers)) {
            Ok(scope) => scope.service == "iam",
            Err(_) => query::field(&fields, "Version") == Some(iam::VERSION),
        };
        Some(if iam {
            Api::Iam(action, fields)
        } else {
            Api::Sts(action, fields)
        })
    }

    /// The SigV4 signing name (credential scope service).
    pub fn signing_name(&self) -> &'static str {
        match self {
            Api::Ssm(_) => "ssm",
            Api::SecretsManager(_) => "secretsmanager",
            Api::Ecr(_) => "ecr",
            Api::Sts(..) => "sts",
            Api::Iam(..) => "iam",
        }
    }
}

/// The headers as SigV4 reads them.
pub(super) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// A refused signature, as the protocol's error.
struct Refused {
    aws_type: &'static str,
    status: u16,
    message: String,
}

impl Aws {
    /// Who signed the request, with the key they signed with, and the region it was signed
    /// for; `None` for an unsigned request where that is accepted.
    fn authorize(
        &self,
        api: &Api,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(Option<(Identity, String)>, String), Refused> {
        let pairs = header_pairs(headers);
        let signed = localbuild_sigv4::parse_authorization(&pairs).ok();
        if self.open && signed.is_none() {
            return Ok((None, self.region.clone()));
        }
        let request = localbuild_sigv4::Request {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            headers: &pairs,
            body,
        };
        let refused = |e: localbuild_sigv4::AuthError| Refused {
            aws_type: e.aws_type(),
            status: e.status(),
            message: e.to_string(),
        };
        let verified = localbuild_sigv4::verify(
            &request,
            &self.ids.keys(),
            &[api.signing_name()],
            std::time::SystemTime::now(),
        );
        let verified = match verified {
            Ok(v) => v,
            // serve without --credentials: any key is accepted, as for CodeBuild.
            Err(localbuild_sigv4::AuthError::UnrecognizedClient) if self.open => {
                let region = signed.map_or_else(|| self.region.clone(), |a| a.region);
                return Ok((None, region));
            }
            Err(e) => return Err(refused(e)),
        };
        let token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        match self.ids.check(&verified.access_key_id, token) {
            Some(KeyCheck::Known(who)) => {
                Ok((Some((who, verified.access_key_id)), verified.region))
            }
            Some(KeyCheck::Expired) => Err(Refused {
                aws_type: "ExpiredTokenException",
                status: 400,
                message: "The security token included in the request is expired".into(),
            }),
            _ => Err(refused(localbuild_sigv4::AuthError::UnrecognizedClient)),
        }
    }

    /// Answer the request if it is for one of these services; `None` if it is not.
    pub async fn call(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Response> {
        let api = Api::of(headers, body)?;
        let (who, region) = match self.authorize(&api, method, uri, headers, body) {
            Ok(r) => r,
            Err(r) => {
                return Some(match api {
                    Api::Sts(..) => sts::error(sts_code(r.aws_type), r.status, &r.message),
                    Api::Iam(..) => iam::error(sts_code(r.aws_type), r.status, &r.message),
                    _ => ApiError::Auth {
                        aws_type: r.aws_type,
                        status: r.status,
                        message: r.message,
                    }
                    .into_response(),
                });
            }
        };
        Some(match api {
            Api::Ssm(op) => json(ssm::call(self, &region, &op, body)),
            Api::SecretsManager(op) => json(secretsmanager::call(self, &region, &op, body)),
            Api::Ecr(op) => json(ecr::call(self.ecr.clone(), region, op, body.to_vec()).await),
            Api::Sts(action, fields) => sts::call(self, who, &action, &fields),
            Api::Iam(action, fields) => iam::call(self, &action, &fields),
        })
    }
}

/// The query protocol's (STS's, IAM's) names for the signature errors.
fn sts_code(aws_type: &'static str) -> &'static str {
    match aws_type {
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
        "ExpiredTokenException" => "ExpiredToken",
        other => other,
    }
}

fn json(result: Result<serde_json::Value, ApiError>) -> Response {
    match result {
        Ok(value) => (
            [("content-type", "application/x-amz-json-1.1")],
            value.to_string(),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// One page of a list sorted by name (ListSecrets, DescribeParameters, GetParametersByPath):
/// `max` (given, else `default`) must be within `1..=limit` (AWS's ValidationException
/// otherwise), and the token is where the previous page stopped (the base64 of the last name
/// returned; anything else is `bad_token`'s error). Returns the page and the next token.
pub(super) fn page<T>(
    items: Vec<T>,
    name: impl Fn(&T) -> &str,
    max: Option<i64>,
    (default, limit): (usize, usize),
    token: Option<&str>,
    bad_token: impl Fn() -> ApiError,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let max = match max {
        None => default,
        Some(m) if m < 1 => {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{m}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        Some(m) if m as u64 > limit as u64 => {
            return Err(ApiError::Validation(format!(
                "1 validation error detected: Value '{m}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {limit}"
            )));
        }
        Some(m) => m as usize,
    };
    let after = match token {
        None => None,
        Some(t) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.strip_prefix("after:").map(str::to_owned))
                .ok_or_else(&bad_token)?,
        ),
    };
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| after.as_deref().is_none_or(|a| name(i) > a))
        .collect();
    let next = (rest.len() > max)
        .then(|| URL_SAFE_NO_PAD.encode(format!("after:{}", name(&rest[max - 1])).as_bytes()));
    rest.truncate(max);
    Ok((rest, next))
}
