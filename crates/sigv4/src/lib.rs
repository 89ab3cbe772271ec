//! Verification (and, for localbuild's own CLI, signing) of AWS Signature Version 4 (`AWS4-HMAC-SHA256` in the
//! `Authorization` header) on requests received by localbuild's emulated AWS
//! APIs (the JSON 1.1 ones, the query protocol's STS and IAM, and S3 through
//! [`verify_s3`]), as sent by the `aws` CLI and boto3/botocore.
//!
//! The crate does no I/O: the caller hands over the request as plain values
//! ([`Request`]) and the known keys ([`Credentials`], usually parsed from an AWS
//! shared credentials file), and gets back who signed it ([`Verified`]) or an
//! [`AuthError`] that maps onto the error type, message and HTTP status AWS would
//! answer with ([`AuthError::aws_type`], [`AuthError::status`]).
//!
//! [`verify`] checks what AWS's JSON endpoints check: the credential scope (terminator, date,
//! a well-formed region, one of the endpoint's signing names), `host` among `SignedHeaders`,
//! the clock skew, the payload hash (always the body's own: `UNSIGNED-PAYLOAD` is S3's) and
//! the signature, with AWS's error texts.
//!
//! Not supported: presigned URLs (signature in the query string), the `Date`
//! header instead of `X-Amz-Date`, SigV4a, chunked/streaming payload signing.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use sha2::{Digest, Sha256};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far `X-Amz-Date` may be from the server's clock, as AWS allows.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// Access key id → secret access key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    keys: BTreeMap<String, String>,
}

/// A profile's access key id and secret, each with its line number.
type KeyPair<'t> = [Option<(usize, &'t str)>; 2];

/// A malformed shared credentials file; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credentials file line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl Credentials {
    /// An empty key set (every signed request is then unrecognized).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) one key pair.
    pub fn insert(&mut self, access_key_id: impl Into<String>, secret: impl Into<String>) {
        self.keys.insert(access_key_id.into(), secret.into());
    }

    /// Parses AWS's shared credentials file format (`~/.aws/credentials`): INI
    /// `[profile]` sections holding `aws_access_key_id` and
    /// `aws_secret_access_key`. Full-line comments start with `#` or `;`,
    /// whitespace around `=` is ignored, key names are case-insensitive and other
    /// keys (`aws_session_token`, `region`, ...) are ignored. Every profile's pair
    /// becomes a valid key; a profile with neither key is skipped, one with only
    /// one of them is an error.
    pub fn parse(text: &str) -> Result<Credentials, ParseError> {
        let mut creds = Credentials::new();
        // The current profile: its name and its [key id, secret], each with its line.
        let mut profile: Option<(&str, KeyPair)> = None;
        for (index, line) in text.lines().map(str::trim).enumerate() {
            let fail = |message: String| {
                Err(ParseError {
                    line: index + 1,
                    message,
                })
            };
            if line.is_empty() || line.starts_with(['#', ';']) {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let Some(name) = rest
                    .strip_suffix(']')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                else {
                    return fail(format!("expected '[profile name]', got {line:?}"));
                };
                if let Some((done, pair)) = profile.replace((name, [None, None])) {
                    creds.add_profile(done, pair)?;
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else {
                return fail(format!(
                    "expected '[profile]', 'key = value' or a comment, got {line:?}"
                ));
            };
            let Some((name, pair)) = profile.as_mut() else {
                return fail(format!("'{key}' is outside any [profile] section"));
            };
            let slot = match key.to_ascii_lowercase().as_str() {
                "aws_access_key_id" => &mut pair[0],
                "aws_secret_access_key" => &mut pair[1],
                _ => continue,
            };
            if slot.is_some() {
                return fail(format!("'{key}' is set twice in profile [{name}]"));
            }
            *slot = Some((index + 1, value));
        }
        if let Some((name, pair)) = profile {
            creds.add_profile(name, pair)?;
        }
        Ok(creds)
    }

    fn add_profile(&mut self, name: &str, pair: KeyPair) -> Result<(), ParseError> {
        match pair {
            [None, None] => Ok(()),
            [Some((_, id)), Some((_, secret))] => {
                self.insert(id, secret);
                Ok(())
            }
            [Some((line, _)), None] | [None, Some((line, _))] => Err(ParseError {
                line,
                message: format!(
                    "profile [{name}] needs both aws_access_key_id and aws_secret_access_key"
                ),
            }),
        }
    }

    /// The secret access key for `access_key_id`, if known.
    pub fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.keys.get(access_key_id).map(String::as_str)
    }
}

/// An HTTP request as received.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// E.g. `POST`, as sent.
    pub method: &'a str,
    /// The raw (still percent-encoded) path, e.g. `/`.
    pub path: &'a str,
    /// The raw query string without `?`, possibly empty.
    pub query: &'a str,
    /// Headers as received: names in any case, repeats allowed, in order.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// The contents of a SigV4 `Authorization` header (plus `X-Amz-Date`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// Credential scope date, `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Credential scope terminator, normally `aws4_request`.
    pub terminator: String,
    /// Lower-cased names from `SignedHeaders`, in the order given.
    pub signed_headers: Vec<String>,
    /// Hex signature as sent.
    pub signature: String,
    /// The `X-Amz-Date` header value, e.g. `20150830T123600Z`.
    pub amz_date: String,
}

/// Who signed a request that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub access_key_id: String,
    pub region: String,
    pub service: String,
}

/// Why a request was refused, shaped like the AWS error a client would see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header: the request is unsigned.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The `Authorization` header lacks parts; the message names them.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not among the [`Credentials`].
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The signature does not match the one computed here.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureDoesNotMatch,
    /// `X-Amz-Date` is more than 15 minutes before ("Signature expired") or
    /// after ("Signature not yet current") the server's clock.
    #[error("{0}")]
    SignatureExpired(String),
    /// The credential scope is invalid (terminator, date, region, service).
    #[error("{0}")]
    InvalidScope(String),
    /// `host` is not among `SignedHeaders`: the signature would fit any server.
    #[error("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,
}

impl AuthError {
    /// The AWS error type (`__type` of the JSON error body).
    pub fn aws_type(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::SignatureDoesNotMatch
            | AuthError::SignatureExpired(_)
            | AuthError::InvalidScope(_)
            | AuthError::HostNotSigned => "InvalidSignatureException",
        }
    }

    /// The HTTP status AWS JSON 1.1 services answer with: 400 for all of these.
    pub fn status(&self) -> u16 {
        400
    }
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses the `Authorization` header (and reads `X-Amz-Date`) without
/// checking the signature, e.g. to learn the access key or region.
pub fn parse_authorization(headers: &[(String, String)]) -> Result<Authorization, AuthError> {
    let value = header(headers, "authorization")
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(AuthError::MissingAuthenticationToken)?;
    let params = match value.strip_prefix(ALGORITHM) {
        Some(rest) if rest.starts_with(char::is_whitespace) => rest,
        _ => "", // another scheme: none of the SigV4 parameters are there
    };
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in params.split(|c: char| c == ',' || c.is_whitespace()) {
        if let Some((k, v)) = part.split_once('=').filter(|(_, v)| !v.is_empty()) {
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => signature = Some(v),
                _ => {}
            }
        }
    }
    let amz_date = header(headers, "x-amz-date").map(str::trim);
    let mut missing = Vec::new();
    for (present, name) in [
        (credential.is_some(), "'Credential' parameter"),
        (signature.is_some(), "'Signature' parameter"),
        (signed.is_some(), "'SignedHeaders' parameter"),
        (
            amz_date.is_some(),
            "existence of either a 'X-Amz-Date' or a 'Date' header",
        ),
    ] {
        if !present {
            missing.push(format!("Authorization header requires {name}."));
        }
    }
    let (Some(credential), Some(signed), Some(signature), Some(amz_date)) =
        (credential, signed, signature, amz_date)
    else {
        return Err(AuthError::IncompleteSignature(format!(
            "{} Authorization={value}",
            missing.join(" ")
        )));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [id, date, region, service, terminator] = scope[..] else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    Ok(Authorization {
        access_key_id: id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
        signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
        signature: signature.to_string(),
        amz_date: amz_date.to_string(),
    })
}

/// A region name as AWS forms them: `us-east-1`, `eu-central-2`, `us-gov-west-1`,
/// `us-isob-east-1` (two letters, words, a number; lower case). The server answers for every
/// region (an ARN takes the region its request was signed for), so any such name is valid;
/// `us-east1`, `local` or `US-EAST-1` are not.
pub fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    let [first, middle @ .., last] = &parts[..] else {
        return false;
    };
    let letters = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase());
    first.len() == 2
        && letters(first)
        && !middle.is_empty()
        && middle.iter().all(|p| letters(p))
        && (1..=2).contains(&last.len())
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// Verifies the SigV4 signature of `req` against `creds` as an AWS JSON endpoint does, with
/// `now` as the server's clock for the 15-minute skew check: the credential scope names a
/// well-formed region ([`is_region`]) and one of `services` (the signing names of the API the
/// request calls), `host` is signed, and the payload hash is the body's own (a declared
/// `X-Amz-Content-SHA256` that differs, `UNSIGNED-PAYLOAD` included, does not match).
pub fn verify(
    req: &Request,
    creds: &Credentials,
    services: &[&str],
    now: SystemTime,
) -> Result<Verified, AuthError> {
    verify_as(req, creds, services, now, Payload::Body)
}

/// How the canonical request names the path and the payload.
#[derive(Clone, Copy)]
enum Payload<'a> {
    /// JSON and query APIs: the normalised, twice-encoded path and the body's own hash.
    Body,
    /// S3: the path as sent and the hash the client declared in `x-amz-content-sha256` (a hex
    /// SHA-256, checked by the caller while it streams the body, or `UNSIGNED-PAYLOAD`).
    S3(&'a str),
}

/// [`verify`] for S3 (signing name `s3`): the path is not normalised, and the payload is the
/// declared `x-amz-content-sha256`, which must be present; `req.body` is not read (the caller
/// streams the body and compares its hash with the declared one).
pub fn verify_s3(
    req: &Request,
    creds: &Credentials,
    now: SystemTime,
) -> Result<Verified, AuthError> {
    let declared = header(req.headers, "x-amz-content-sha256").ok_or_else(|| {
        AuthError::IncompleteSignature(
            "Missing required header for this request: x-amz-content-sha256".to_owned(),
        )
    })?;
    verify_as(req, creds, &["s3"], now, Payload::S3(declared.trim()))
}

fn verify_as(
    req: &Request,
    creds: &Credentials,
    services: &[&str],
    now: SystemTime,
    payload: Payload,
) -> Result<Verified, AuthError> {
    let auth = parse_authorization(req.headers)?;
    let request_time = parse_amz_date(&auth.amz_date).ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "X-Amz-Date must be in ISO-8601 basic format, e.g. 20150830T123600Z, got '{}'.",
            auth.amz_date
        ))
    })?;
    let mut scope_errors = Vec::new();
    if auth.terminator != "aws4_request" {
        scope_errors.push(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
            auth.terminator
        ));
    }
    if auth.date != auth.amz_date[..8] {
        scope_errors.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
            auth.date,
            &auth.amz_date[..8],
            auth.amz_date
        ));
    }
    if !is_region(&auth.region) {
        scope_errors.push(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            auth.region
        ));
    }
    if let Some(expected) = services.first()
        && !services.contains(&auth.service.as_str())
    {
        scope_errors.push(format!(
            "Credential should be scoped to correct service: '{expected}'."
        ));
    }
    if !scope_errors.is_empty() {
        return Err(AuthError::InvalidScope(scope_errors.join(" ")));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::HostNotSigned);
    }
    let secret = creds
        .secret(&auth.access_key_id)
        .ok_or(AuthError::UnrecognizedClient)?;

    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    let skewed = |what: &str, relation: &str, limit: i64, sign: char| {
        Err(AuthError::SignatureExpired(format!(
            "Signature {what}: {} is {relation} than {} ({} {sign} 15 min.)",
            auth.amz_date,
            format_amz_date(limit),
            format_amz_date(now)
        )))
    };
    if request_time < now - MAX_SKEW_SECS {
        return skewed("expired", "now earlier", now - MAX_SKEW_SECS, '-');
    }
    if request_time > now + MAX_SKEW_SECS {
        return skewed("not yet current", "still later", now + MAX_SKEW_SECS, '+');
    }

    // The signature covers the body's own hash; a declared one must be it (JSON APIs sign
    // every payload: `UNSIGNED-PAYLOAD` is S3's).
    if let Payload::Body = payload {
        let body_hash = hex::encode(Sha256::digest(req.body));
        if let Some(declared) = header(req.headers, "x-amz-content-sha256")
            && !declared.trim().eq_ignore_ascii_case(&body_hash)
        {
            return Err(AuthError::SignatureDoesNotMatch);
        }
    }

    let provided = hex::decode(&auth.signature).map_err(|_| AuthError::SignatureDoesNotMatch)?;
    // `verify_slice` compares in constant time.
    signature_mac_as(req, &auth, secret, payload)
        .verify_slice(&provided)
        .map_err(|_| AuthError::SignatureDoesNotMatch)?;
    Ok(Verified {
        access_key_id: auth.access_key_id,
        region: auth.region,
        service: auth.service,
    })
}

/// The HMAC whose output is the signature of `req` per `auth` with `secret`.
fn signature_mac(req: &Request, auth: &Authorization, secret: &str) -> Hmac<Sha256> {
    signature_mac_as(req, auth, secret, Payload::Body)
}

fn signature_mac_as(
    req: &Request,
    auth: &Authorization,
    secret: &str,
    payload: Payload,
) -> Hmac<Sha256> {
    let canonical = match payload {
        Payload::Body => canonical_request(req, auth),
        Payload::S3(hash) => canonical_request_s3(req, auth, hash),
    };
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{}/{}/{}/aws4_request\n{}",
        auth.amz_date,
        auth.date,
        auth.region,
        auth.service,
        hex::encode(Sha256::digest(canonical))
    );
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [&auth.date, &auth.region, &auth.service, "aws4_request"] {
        key = mac(&key, part.as_bytes()).finalize().into_bytes().to_vec();
    }
    mac(&key, string_to_sign.as_bytes())
}

/// `X-Amz-Date`'s value for `at` (`YYYYMMDDTHHMMSSZ`), for a client that signs.
pub fn amz_date(at: SystemTime) -> String {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format_amz_date(secs)
}

/// The `Authorization` header's value that signs `req` with one key pair, as botocore
/// computes it: every header of `req` is signed, so it must already hold `Host` and
/// `X-Amz-Date` (see [`amz_date`]). Used by localbuild's own CLI when it calls `serve`.
pub fn sign(req: &Request, key: (&str, &str), region: &str, service: &str) -> String {
    let (access_key_id, secret) = key;
    let amz_date = header(req.headers, "x-amz-date")
        .unwrap_or_default()
        .to_string();
    let mut signed_headers: Vec<String> = req
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    signed_headers.sort();
    signed_headers.dedup();
    let auth = Authorization {
        access_key_id: access_key_id.to_string(),
        date: amz_date.get(..8).unwrap_or_default().to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: "aws4_request".into(),
        signed_headers,
        signature: String::new(),
        amz_date,
    };
    let signature = hex::encode(signature_mac(req, &auth, secret).finalize().into_bytes());
    format!(
        "{ALGORITHM} Credential={access_key_id}/{}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={signature}",
        auth.date,
        auth.signed_headers.join(";")
    )
}

/// The SigV4 canonical request for `req` as signed per `auth` (useful to log
/// when a client's signature does not match).
pub fn canonical_request(req: &Request, auth: &Authorization) -> String {
    let mut headers = String::new();
    for name in &auth.signed_headers {
        let values: Vec<String> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    // Always the body's own hash, as AWS's JSON services compute it.
    let payload_hash = hex::encode(Sha256::digest(req.body));
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload_hash}",
        req.method,
        canonical_uri(req.path),
        canonical_query(req.query),
        auth.signed_headers.join(";"),
    )
}

/// S3's canonical request: the path exactly as sent, the declared payload hash.
fn canonical_request_s3(req: &Request, auth: &Authorization, payload_hash: &str) -> String {
    let full = canonical_request(req, auth);
    // Same headers and query as any service; only the path line and the hash differ.
    let mut lines: Vec<&str> = full.split('\n').collect();
    let path = if req.path.is_empty() { "/" } else { req.path };
    lines[1] = path;
    if let Some(last) = lines.last_mut() {
        *last = payload_hash;
    }
    lines.join("\n")
}

fn mac(key: &[u8], data: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac
}

/// Everything but the SigV4 unreserved characters `A-Za-z0-9-_.~` is encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode(bytes: &[u8]) -> String {
    percent_encode(bytes, STRICT).to_string()
}

/// Non-S3 services: remove dot segments and empty segments, then encode the
/// (already encoded) path once more, as botocore does.
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let trailing = if path.ends_with('/') && !segments.is_empty() {
        "/"
    } else {
        ""
    };
    let encoded: Vec<String> = segments.iter().map(|s| encode(s.as_bytes())).collect();
    format!("/{}{trailing}", encoded.join("/"))
}

/// Query parameters decoded, strictly re-encoded and sorted (botocore sends
/// them strictly encoded already).
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let strict = |s: &str| encode(&percent_decode_str(s).collect::<Vec<u8>>());
            (strict(k), strict(v))
        })
        .collect();
    pairs.sort();
    let pairs: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// `YYYYMMDDTHHMMSSZ` → seconds since the Unix epoch.
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hh, mm, ss) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let (era, yoe) = (y.div_euclid(400), y.rem_euclid(400));
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Seconds since the Unix epoch → `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400) + 719_468, secs.rem_euclid(86_400));
    let (era, doe) = (days.div_euclid(146_097), days.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
}

#[cfg(test)]
mod tests;
