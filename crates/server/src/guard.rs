//! What every request passes before a route sees it, and every answer on its way out: the
//! HTTP-level rules of `serve`, in one middleware ([`guard`]).
//!
//! * **Host.** Only a `Host` (or absolute-form authority) that names this server is served
//!   ([`host_allowed`], the one list): `localhost`, `127.0.0.1`, `[::1]`, the listen address,
//!   the names given with `--allowed-host`, and any IP literal when listening on every
//!   interface. A name an attacker controls (DNS rebinding) gets `403 AccessDeniedException`.
//!   The port is not checked: a forged name is what rebinding needs, and proxies change ports.
//! * **Head and body limits.** More than [`MAX_HEADERS`] headers or [`MAX_HEAD_BYTES`] of them
//!   is `431`; a body over [`BODY_LIMIT`] is `413`, answered after reading (and dropping) the
//!   rest of the body up to [`DRAIN_LIMIT`], so the client reads the answer instead of a
//!   connection reset. Heads over hyper's own limits (100 headers, about 400 KiB) are answered
//!   by hyper itself, with a bodiless `431`, before this code runs.
//! * **AWS error bodies.** An error answer that is neither JSON nor a console page (axum's
//!   404 and 405, extractor rejections, plain-text misses) becomes `{"__type", "message"}`
//!   ([`ApiError`]), keeping its headers (`Allow`).
//! * **Framing.** Every answer says `X-Frame-Options: DENY` and carries [`CSP`]
//!   (`frame-ancestors 'none'`): no page of the console can be framed (clickjacking of Stop or
//!   Approve).

use crate::error::ApiError;
use crate::{AppState, BODY_LIMIT};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Headers a request may have (hyper refuses more than 100 on its own).
pub const MAX_HEADERS: usize = 64;
/// Bytes of header names and values a request may have.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How much of an over-limit body is read and dropped to answer `413` cleanly; beyond it the
/// connection is closed after the answer.
pub const DRAIN_LIMIT: u64 = 128 * 1024 * 1024;
/// The console's Content-Security-Policy: its script, stylesheet, `fetch` and EventSource
/// are same-origin; inline `style` attributes draw the phase bars; no framing.
pub const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The request's host name (without port, IPv6 without brackets, lower case), or `None`
/// when `host` is malformed.
fn host_name(host: &str) -> Option<String> {
    let (name, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':')?),
            };
            (inside, port)
        }
        None => match host.rsplit_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        },
    };
    if port.is_some_and(|p| p.parse::<u16>().is_err()) || name.is_empty() {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

/// A `--allowed-host` value as the list keeps it: a DNS name or an IP address (IPv6 with or
/// without brackets), no port; lower case.
pub fn allowed_host_name(value: &str) -> Result<String, String> {
    let bare = value
        .strip_prefix('[')
        .and_then(|v| v.strip_suffix(']'))
        .unwrap_or(value);
    if bare.parse::<IpAddr>().is_ok() {
        return Ok(bare.to_ascii_lowercase());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !bare.is_empty() && bare.len() <= 253 && bare.split('.').all(label_ok) {
        Ok(bare.to_ascii_lowercase())
    } else {
        Err(format!(
            "{value:?} is not a host name or IP address (give the name without a port, e.g. build-host.local)"
        ))
    }
}

/// Whether `host` (a `Host` header value) names this server: `localhost`, `127.0.0.1`,
/// `[::1]`, the listen address, one of `extra` (from [`allowed_host_name`]), or, when
/// listening on every interface, any IP address. Any port.
pub fn host_allowed(host: &str, listen: SocketAddr, extra: &[String]) -> bool {
    let Some(name) = host_name(host) else {
        return false;
    };
    let ip = name.parse::<IpAddr>().ok();
    // `*.localhost` is loopback by definition (RFC 6761): S3's virtual-hosted addresses.
    name == "localhost"
        || name.ends_with(".localhost")
        || ip.is_some_and(|ip| {
            ip == IpAddr::from([127, 0, 0, 1])
                || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
                || ip == listen.ip()
                || listen.ip().is_unspecified()
        })
        || extra
            .iter()
            .any(|e| *e == name || ip.is_some_and(|ip| e.parse::<IpAddr>().is_ok_and(|e| e == ip)))
}

/// Refuse a request whose `Host` (and absolute-form authority) does not name this server.
fn check_host(
    uri: &Uri,
    headers: &HeaderMap,
    listen: SocketAddr,
    extra: &[String],
) -> Result<(), ApiError> {
    let host = headers.get(header::HOST).map(|v| v.to_str());
    let hosts = [
        host.map(|h| h.unwrap_or("(not text)").to_owned()),
        uri.authority().map(|a| a.as_str().to_owned()),
    ];
    if hosts.iter().all(Option::is_none) {
        return Err(ApiError::AccessDenied(
            "The request has no Host header: this server answers only requests addressed to it"
                .into(),
        ));
    }
    for h in hosts.iter().flatten() {
        if !host_allowed(h, listen, extra) {
            return Err(ApiError::AccessDenied(format!(
                "Host '{h}' does not name this server: it answers localhost, 127.0.0.1, [::1] \
                 and {}; start it with --allowed-host NAME to accept another name",
                listen.ip()
            )));
        }
    }
    Ok(())
}

/// `431` for a head over this server's limits.
fn check_head(headers: &HeaderMap) -> Result<(), ApiError> {
    let bytes: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEAD_BYTES {
        return Err(ApiError::HeadersTooLarge(format!(
            "The request has {} headers of {bytes} bytes; the limit is {MAX_HEADERS} headers of {} KiB",
            headers.len(),
            MAX_HEAD_BYTES >> 10
        )));
    }
    Ok(())
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!(
        "The request body is larger than the limit of {} MB",
        BODY_LIMIT >> 20
    ))
}

/// The whole body, at most [`BODY_LIMIT`]; a larger one is read on (and dropped) up to
/// [`DRAIN_LIMIT`] before the `413`.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    // Nothing to drain: the client waits for a go-ahead, or the body could not be drained.
    if declared.is_some_and(|n| n > BODY_LIMIT as u64 && (expects_continue || n > DRAIN_LIMIT)) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::Serialization(format!("The request body could not be read: {e}"))
        })?;
        seen += chunk.len() as u64;
        if seen <= BODY_LIMIT as u64 {
            kept.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        } else {
            kept = Vec::new();
        }
    }
    if seen > BODY_LIMIT as u64 {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

/// The AWS error for a bare error answer (`status`, its text if any) to `method path`.
fn aws_error(status: StatusCode, text: &str, method: &Method, path: &str) -> ApiError {
    let text = text.trim();
    let or = |default: String| {
        if text.is_empty() {
            default
        } else {
            text.to_owned()
        }
    };
    match status {
        StatusCode::NOT_FOUND => ApiError::NoSuchPath(or(format!(
            "No such resource: {method} {path}. The API is POST / with an X-Amz-Target header; \
             the console is under /builds"
        ))),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(or(format!(
            "{method} is not allowed on {path}. The API is POST / with an X-Amz-Target header"
        ))),
        StatusCode::PAYLOAD_TOO_LARGE => too_large(),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ApiError::HeadersTooLarge(or("The request's headers are too large".into()))
        }
        StatusCode::FORBIDDEN => ApiError::AccessDenied(or("Access denied".into())),
        s if s.is_server_error() => ApiError::Service(or(format!("The server failed: {s}"))),
        s => ApiError::Serialization(or(format!("The request is malformed: {s}"))),
    }
}

/// Whether an error answer already has a body meant for its reader: AWS JSON, a console
/// page, a stream.
fn has_own_body(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // JSON: the JSON protocols; XML: STS's query protocol and S3; HTML: the console.
        .is_some_and(|t| t.contains("json") || t.contains("xml") || t.starts_with("text/html"))
}

/// Replace a bare error answer's body with its AWS error, keeping status and headers.
async fn with_aws_body(response: Response, method: &Method, path: &str) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || has_own_body(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let error = aws_error(status, &text, method, path);
    let mut fresh = error.into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fresh.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *fresh.status_mut() = status;
    fresh
}

/// The middleware: host, head and body checks in, AWS error bodies and framing headers out.
pub(crate) async fn guard(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let checked = check_host(
        request.uri(),
        request.headers(),
        state.addr,
        &state.allowed_hosts,
    )
    .and_then(|()| check_head(request.headers()));
    let mut response = match checked {
        Err(e) => e.into_response(),
        // S3 streams its bodies (uploads of any size), so it skips the body limit.
        Ok(()) if crate::aws::s3::is_s3(request.headers()) => state.aws.s3(request).await,
        Ok(()) => {
            let (parts, body) = request.into_parts();
            match read_body(&parts.headers, body).await {
                Err(e) => e.into_response(),
                Ok(bytes) => {
                    let response = next
                        .run(Request::from_parts(parts, Body::from(bytes)))
                        .await;
                    with_aws_body(response, &method, &path).await
                }
            }
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_hosts_that_name_this_server_are_allowed() {
        let loopback = listen("127.0.0.1:4599");
        let extra = vec![
            allowed_host_name("Build-Host.local").unwrap(),
            allowed_host_name("[fd00::5]").unwrap(),
        ];
        // (Host, listen address, allowed)
        let table = [
            ("localhost", loopback, true),
            ("localhost:4599", loopback, true),
            ("LOCALHOST:80", loopback, true),
            ("127.0.0.1:4599", loopback, true),
            ("127.0.0.1", loopback, true),
            ("[::1]:4599", loopback, true),
            ("[::1]", loopback, true),
            ("build-host.local:4599", loopback, true),
            ("[fd00::5]:4599", loopback, true),
            ("10.1.2.3:4599", listen("10.1.2.3:4599"), true),
            ("192.168.1.9:4599", listen("0.0.0.0:4599"), true),
            ("[fd00::9]:4599", listen("[::]:4599"), true),
            ("evil.example:4599", loopback, false),
            ("evil.example", loopback, false),
            ("localhost.evil.example", loopback, false),
            ("evil.example", listen("0.0.0.0:4599"), false),
            ("10.1.2.3:4599", loopback, false),
            ("127.0.0.2:4599", loopback, false),
            ("localhost:port", loopback, false),
            ("localhost:99999", loopback, false),
            ("[::1", loopback, false),
            ("[::1]x", loopback, false),
            ("", loopback, false),
            (":4599", loopback, false),
        ];
        for (host, addr, allowed) in table {
            assert_eq!(
                host_allowed(host, addr, &extra),
                allowed,
                "{host} on {addr}"
            );
        }
    }

    #[test]
    fn allowed_host_values_are_names_or_addresses() {
        assert_eq!(allowed_host_name("Box.LAN").unwrap(), "box.lan");
        assert_eq!(allowed_host_name("[::1]").unwrap(), "::1");
        assert_eq!(allowed_host_name("172.17.0.1").unwrap(), "172.17.0.1");
        for bad in ["", "box:4599", "http://box", "a b", "-box", "box..lan"] {
            let e = allowed_host_name(bad).unwrap_err();
            assert!(e.contains("not a host name"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_request_without_an_allowed_host_names_it_and_the_flag() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, "evil.example:4599".parse().unwrap());
        let uri: Uri = "/".parse().unwrap();
        let e = check_host(&uri, &headers, listen("127.0.0.1:4599"), &[]).unwrap_err();
        assert_eq!(e.aws_type(), "AccessDeniedException");
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        let message = e.to_string();
        assert!(message.contains("'evil.example:4599'"), "{message}");
        assert!(message.contains("--allowed-host"), "{message}");
        // An absolute-form target is checked too.
        headers.insert(header::HOST, "127.0.0.1:4599".parse().unwrap());
        let uri: Uri = "http://evil.example:4599/".parse().unwrap();
        assert!(check_host(&uri, &headers, listen("127.0.0.1:4599"), &[]).is_err());
        assert!(
            check_host(
                &"/".parse().unwrap(),
                &HeaderMap::new(),
                listen("127.0.0.1:1"),
                &[]
            )
            .is_err()
        );
    }

    #[test]
    fn bare_error_answers_get_aws_types() {
        let get = Method::GET;
        let e = aws_error(StatusCode::NOT_FOUND, "", &get, "/nope");
        assert_eq!(e.aws_type(), "ResourceNotFoundException");
        assert!(e.to_string().contains("GET /nope"), "{e}");
        let e = aws_error(StatusCode::NOT_FOUND, "no such artifact\n", &get, "/x");
        assert_eq!(e.to_string(), "no such artifact");
        let e = aws_error(StatusCode::METHOD_NOT_ALLOWED, "", &Method::DELETE, "/");
        assert_eq!(e.aws_type(), "UnknownOperationException");
        assert!(
            e.to_string().starts_with("DELETE is not allowed on /"),
            "{e}"
        );
        let e = aws_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Expected form",
            &get,
            "/",
        );
        assert_eq!(e.aws_type(), "SerializationException");
        let e = aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "length limit exceeded",
            &get,
            "/",
        );
        assert_eq!(e.aws_type(), "RequestEntityTooLargeException");
    }
}
