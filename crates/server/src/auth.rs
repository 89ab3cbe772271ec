//! Who may call: with `--credentials FILE` every request must carry a valid SigV4 signature by
//! one of the file's keys (checked by `localbuild-sigv4`, refused with the error type and
//! status AWS would use); without it any request is accepted, signed or not. Either way the
//! region of a signed request's credential scope is the region of the ARNs the call makes.
//! The scope must name the signing name of the API the `X-Amz-Target` calls
//! ([`protocol::signing_names`]) and a well-formed region; `host` must be signed and the
//! payload hash is the body's (see [`localbuild_sigv4::verify`]).

use crate::error::ApiError;
use crate::protocol;
use axum::http::{HeaderMap, Method, Uri};
use localbuild_sigv4::{Credentials, Request};

/// The request's headers as the verifier takes them (names as received, values lossy UTF-8).
fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
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

/// Check the request (when credentials are configured) and return the region it was signed
/// for, if it was signed.
pub fn check(
    credentials: Option<&Credentials>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    target: Option<&str>,
    body: &[u8],
) -> Result<Option<String>, ApiError> {
    let pairs = header_pairs(headers);
    let Some(creds) = credentials else {
        return Ok(localbuild_sigv4::parse_authorization(&pairs)
            .ok()
            .map(|a| a.region));
    };
    let request = Request {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers: &pairs,
        body,
    };
    let services = protocol::signing_names(target);
    match localbuild_sigv4::verify(&request, creds, services, std::time::SystemTime::now()) {
        Ok(v) => Ok(Some(v.region)),
        Err(e) => Err(ApiError::Auth {
            aws_type: e.aws_type(),
            status: e.status(),
            message: e.to_string(),
        }),
    }
}
