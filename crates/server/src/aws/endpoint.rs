//! A build's own endpoint: the local AWS services on the build network's gateway address (Docker's
//! default bridge), on a port of its own, for that build's lifetime ([`BuildEndpoints`] is the
//! engine's `LocalAws`). Containers reach that address, the LAN does not (not every interface);
//! what keeps other callers out is authentication (`localbuild_engine::local_aws` says why):
//! only signed requests by a key [`Aws::ids`] knows are served (the build's session, which is
//! revoked when the endpoint closes, `AssumeRole` sessions, `--credentials` keys), never
//! unsigned ones even when `serve` is open ([`BuildEndpoints::new`]), and never by another
//! build's session key or a session assumed with one. `Host` must be the endpoint's own address (no DNS rebinding).

use super::Aws;
use crate::error::ApiError;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use localbuild_engine::local_aws::{AwsEndpoint, BuildInfo, LocalAws};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Opens build endpoints over one set of services (serve's, or `run`'s in-process ones).
pub struct BuildEndpoints {
    aws: Arc<Aws>,
}

struct Served {
    aws: Arc<Aws>,
    addr: SocketAddr,
    /// The build's own session key.
    key: String,
}

/// Stops the endpoint and forgets the build's session when dropped.
struct Guard {
    _stop: tokio::sync::oneshot::Sender<()>,
    aws: Arc<Aws>,
    key: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.aws.ids.revoke(&self.key);
    }
}

async fn handle(State(s): State<Arc<Served>>, request: Request) -> Response {
    let host = request
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let host = host.as_deref();
    if host != Some(s.addr.to_string().as_str()) {
        return ApiError::AccessDenied(format!("Host {host:?} is not this endpoint ({})", s.addr))
            .into_response();
    }
    // Another build's session key is valid, but not here: each build has its own endpoint.
    if let Some(key) = access_key_of(request.headers())
        && s.aws.ids.build_of(&key).is_some_and(|build| build != s.key)
    {
        return ApiError::AccessDenied(format!(
            "The key {key} belongs to another build: this endpoint serves its own build's keys (and sessions assumed with them) and the --credentials keys"
        ))
        .into_response();
    }
    // JSON 1.1 (a target) and query (a form) calls are small; everything else is S3.
    let headers = request.headers();
    let small = headers.contains_key("x-amz-target")
        || headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !small {
        return s.aws.s3(request).await;
    }
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (parts.method, parts.uri, parts.headers);
    let body: Bytes = match axum::body::to_bytes(body, crate::BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::TooLarge(format!(
                "The request body is larger than the limit of {} MB",
                crate::BODY_LIMIT >> 20
            ))
            .into_response();
        }
    };
    if method != Method::POST {
        return ApiError::MethodNotAllowed(format!(
            "{method} is not served here: the JSON and query protocols take POST"
        ))
        .into_response();
    }
    match s.aws.call(&method, &uri, &headers, &body).await {
        Some(r) => r,
        None => ApiError::UnknownOperation(format!(
            "Unknown operation: this build's endpoint serves S3, SSM, Secrets Manager, STS, IAM and ECR (X-Amz-Target {:?})",
            headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("is missing")
        ))
        .into_response(),
    }
}

/// The access key id a request's `Authorization` names (verified later, with the signature;
/// a request without a well-formed one is refused there).
fn access_key_of(headers: &axum::http::HeaderMap) -> Option<String> {
    localbuild_sigv4::parse_authorization(&super::header_pairs(headers))
        .ok()
        .map(|a| a.access_key_id)
}

impl BuildEndpoints {
    /// Endpoints over `aws`'s stores and sessions that never serve an unsigned request or an
    /// unknown key, whatever `aws.open` says (`serve` without `--credentials` is open on
    /// loopback; a build's endpoint is reachable from every container on this machine).
    pub fn new(aws: &Aws) -> BuildEndpoints {
        BuildEndpoints {
            aws: Arc::new(Aws {
                open: false,
                ..aws.clone()
            }),
        }
    }
}

#[async_trait::async_trait]
impl LocalAws for BuildEndpoints {
    async fn open(&self, build: &BuildInfo, gateway: IpAddr) -> Result<AwsEndpoint, String> {
        let listener = tokio::net::TcpListener::bind((gateway, 0))
            .await
            .map_err(|e| format!("cannot listen on {gateway}: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot listen on {gateway}: {e}"))?;
        let uuid = build.build_id.rsplit(':').next().unwrap_or(&build.build_id);
        let creds = self.aws.ids.build_session(&build.project, uuid);
        let served = Arc::new(Served {
            aws: self.aws.clone(),
            addr,
            key: creds.access_key_id.clone(),
        });
        let app = Router::new().fallback(handle).with_state(served);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            use axum::serve::ListenerExt;
            // Small answers go out at once (no delayed-ACK stall between head and body).
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(AwsEndpoint {
            vars: vec![
                ("AWS_ENDPOINT_URL".to_owned(), format!("http://{addr}")),
                ("AWS_ACCESS_KEY_ID".to_owned(), creds.access_key_id.clone()),
                (
                    "AWS_SECRET_ACCESS_KEY".to_owned(),
                    creds.secret_access_key.clone(),
                ),
                ("AWS_SESSION_TOKEN".to_owned(), creds.session_token.clone()),
            ],
            mask: vec![creds.secret_access_key, creds.session_token],
            guard: Box::new(Guard {
                _stop: stop,
                aws: self.aws.clone(),
                key: creds.access_key_id,
            }),
        })
    }
}
