//! S3 on the wire: REST with XML bodies, path-style (`/BUCKET/KEY`) and virtual-hosted-style
//! (`BUCKET.localhost`), over `localbuild_aws::s3`. Bodies stream: an upload goes to a staged
//! file while its SHA-256 is computed and compared with the signed `x-amz-content-sha256`
//! (SigV4 with the path as sent, [`localbuild_sigv4::verify_s3`]); a download streams the file
//! (with `Range`). Errors are S3's `<Error><Code>…` documents with S3's statuses.

use super::Aws;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use localbuild_aws::s3::{Object, S3Error};
use localbuild_aws::sts::KeyCheck;
use sha2::{Digest, Sha256};
use std::time::SystemTime;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
/// The largest XML body read into memory (DeleteObjects, CompleteMultipartUpload).
const XML_LIMIT: usize = 2 * 1024 * 1024;

/// Is this request for S3: signed for the `s3` service (header or presigned query)?
pub fn is_s3(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("/s3/aws4_request"))
}

/// S3's error, as a response (bodiless for HEAD).
struct Failure {
    code: &'static str,
    status: u16,
    message: String,
    resource: Option<(&'static str, String)>,
}

impl From<S3Error> for Failure {
    fn from(e: S3Error) -> Failure {
        let (code, status) = crate::error::s3_code(&e);
        let resource = match &e {
            S3Error::NoSuchBucket(b)
            | S3Error::BucketAlreadyOwnedByYou(b)
            | S3Error::BucketNotEmpty(b)
            | S3Error::InvalidBucketName(b) => Some(("BucketName", b.clone())),
            S3Error::NoSuchKey(k) => Some(("Key", k.clone())),
            S3Error::NoSuchUpload(u) => Some(("UploadId", u.clone())),
            _ => None,
        };
        Failure {
            code,
            status,
            message: e.to_string(),
            resource,
        }
    }
}

fn fail(code: &'static str, status: u16, message: impl Into<String>) -> Failure {
    Failure {
        code,
        status,
        message: message.into(),
        resource: None,
    }
}

impl Failure {
    fn respond(self, method: &Method) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        if method == Method::HEAD {
            return (status, [("x-amz-error-code", self.code)]).into_response();
        }
        let extra = self
            .resource
            .map(|(tag, v)| format!("<{tag}>{}</{tag}>", escape(&v)))
            .unwrap_or_default();
        xml(
            status,
            format!(
                "<Error><Code>{}</Code><Message>{}</Message>{extra}<RequestId>{}</RequestId></Error>",
                self.code,
                escape(&self.message),
                uuid::Uuid::new_v4().simple()
            ),
        )
    }
}

/// Text as XML character data or an attribute value (S3's and STS's answers).
pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [("content-type", "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"),
    )
        .into_response()
}

/// `2009-10-12T17:50:30.000Z`
fn iso(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    super::query::iso8601(secs)
}

/// `Wed, 21 Oct 2015 07:28:00 GMT`
fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let iso = super::query::iso8601(secs);
    let (y, m, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let month = months[m.parse::<usize>().unwrap_or(1).saturating_sub(1) % 12];
    let weekday = days[((secs / 86400) % 7) as usize];
    format!("{weekday}, {d} {month} {y} {} GMT", &iso[11..19])
}

/// The query's parameters, decoded.
fn query(uri: &axum::http::Uri) -> Vec<(String, String)> {
    super::query::form(uri.query().unwrap_or("").as_bytes())
}

fn param<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// For `encoding-type=url`: every byte but unreserved characters and `/` percent-encoded.
fn url_encode(s: &str) -> String {
    const SET: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~')
        .remove(b'/');
    percent_encoding::utf8_percent_encode(s, SET).to_string()
}

/// Bucket and key of a request: virtual-hosted (`BUCKET.localhost[:port]`) or path-style.
fn address(headers: &HeaderMap, path: &str) -> (Option<String>, Option<String>) {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let name = host.rsplit_once(':').map_or(host, |(n, _)| n);
    if let Some(bucket) = name.strip_suffix(".localhost").filter(|b| !b.is_empty()) {
        let key = path.trim_start_matches('/');
        return (
            Some(bucket.to_owned()),
            (!key.is_empty()).then(|| decode(key)),
        );
    }
    let rest = path.trim_start_matches('/');
    if rest.is_empty() {
        return (None, None);
    }
    match rest.split_once('/') {
        Some((b, k)) if !k.is_empty() => (Some(decode(b)), Some(decode(k))),
        Some((b, _)) => (Some(decode(b)), None),
        None => (Some(decode(rest)), None),
    }
}

impl Aws {
    /// Check an S3 request's signature (and session token); in open mode any key passes.
    fn authorize_s3(
        &self,
        method: &Method,
        uri: &axum::http::Uri,
        headers: &HeaderMap,
    ) -> Result<(), Failure> {
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if self.open && localbuild_sigv4::parse_authorization(&pairs).is_err() {
            return Ok(());
        }
        let request = localbuild_sigv4::Request {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            headers: &pairs,
            body: &[],
        };
        use localbuild_sigv4::AuthError;
        let refused = |e: AuthError| {
            let code = match &e {
                AuthError::UnrecognizedClient => "InvalidAccessKeyId",
                AuthError::SignatureDoesNotMatch => "SignatureDoesNotMatch",
                AuthError::SignatureExpired(_) => "RequestTimeTooSkewed",
                AuthError::MissingAuthenticationToken => "AccessDenied",
                _ => "AuthorizationHeaderMalformed",
            };
            fail(code, 403, e.to_string())
        };
        let verified = localbuild_sigv4::verify_s3(&request, &self.ids.keys(), SystemTime::now());
        let verified = match verified {
            Ok(v) => v,
            Err(AuthError::UnrecognizedClient) if self.open => return Ok(()),
            Err(e) => return Err(refused(e)),
        };
        let token = headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        match self.ids.check(&verified.access_key_id, token) {
            Some(KeyCheck::Known(_)) => Ok(()),
            Some(KeyCheck::Expired) => {
                Err(fail("ExpiredToken", 400, "The provided token has expired."))
            }
            _ => Err(fail(
                "InvalidToken",
                400,
                "The provided token is malformed or otherwise invalid.",
            )),
        }
    }

    /// Serve one S3 request (the body is streamed, never held whole).
    pub async fn s3(&self, request: Request) -> Response {
        let method = request.method().clone();
        match self.s3_inner(request).await {
            Ok(r) => r,
            Err(f) => f.respond(&method),
        }
    }

    async fn s3_inner(&self, request: Request) -> Result<Response, Failure> {
        let (parts, body) = request.into_parts();
        let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
        self.authorize_s3(method, uri, headers)?;
        let q = query(uri);
        let has = |name: &str| q.iter().any(|(k, _)| k == name);
        let s3 = &self.s3;
        let (bucket, key) = address(headers, uri.path());
        let blocking = |f: Box<dyn FnOnce() -> Result<Response, Failure> + Send>| async move {
            tokio::task::spawn_blocking(f)
                .await
                .unwrap_or_else(|e| Err(fail("InternalError", 500, e.to_string())))
        };
        match (method.clone(), bucket, key) {
            (Method::GET, None, None) => {
                let s3 = s3.clone();
                let owner = self.account().to_owned();
                blocking(Box::new(move || {
                    let mut out = String::new();
                    for (name, at) in s3.buckets()? {
                        out.push_str(&format!(
                            "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
                            escape(&name),
                            iso(at)
                        ));
                    }
                    Ok(xml(
                        StatusCode::OK,
                        format!(
                            "<ListAllMyBucketsResult xmlns=\"{NS}\"><Owner><ID>{0}</ID><DisplayName>localbuild</DisplayName></Owner><Buckets>{out}</Buckets></ListAllMyBucketsResult>",
                            escape(&owner)
                        ),
                    ))
                }))
                .await
            }
            (Method::PUT, Some(b), None) => {
                s3.create_bucket(&b)?;
                Ok((StatusCode::OK, [("location", format!("/{b}"))]).into_response())
            }
            (Method::HEAD, Some(b), None) => {
                s3.head_bucket(&b)?;
                Ok((
                    StatusCode::OK,
                    [("x-amz-bucket-region", self.region.clone())],
                )
                    .into_response())
            }
            (Method::DELETE, Some(b), None) => {
                s3.delete_bucket(&b)?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            (Method::GET, Some(b), None) if has("location") => {
                s3.head_bucket(&b)?;
                Ok(xml(
                    StatusCode::OK,
                    format!(
                        "<LocationConstraint xmlns=\"{NS}\">{}</LocationConstraint>",
                        if self.region == "us-east-1" {
                            ""
                        } else {
                            &self.region
                        }
                    ),
                ))
            }
            (Method::GET, Some(b), None) => {
                let s3 = s3.clone();
                blocking(Box::new(move || list(&s3, &b, &q))).await
            }
            (Method::POST, Some(b), None) if has("delete") => {
                let text = read_small(body).await?;
                let mut deleted = String::new();
                let mut errors = String::new();
                let quiet = text.contains("<Quiet>true</Quiet>");
                for k in tags(&text, "Key") {
                    let k = unescape(&k);
                    match s3.delete_object(&b, &k) {
                        Ok(()) if !quiet => deleted
                            .push_str(&format!("<Deleted><Key>{}</Key></Deleted>", escape(&k))),
                        Ok(()) => {}
                        Err(e) => {
                            let (code, _) = crate::error::s3_code(&e);
                            errors.push_str(&format!(
                                "<Error><Key>{}</Key><Code>{code}</Code><Message>{}</Message></Error>",
                                escape(&k),
                                escape(&e.to_string())
                            ));
                        }
                    }
                }
                Ok(xml(
                    StatusCode::OK,
                    format!("<DeleteResult xmlns=\"{NS}\">{deleted}{errors}</DeleteResult>"),
                ))
            }
            (Method::PUT, Some(b), Some(k)) if headers.contains_key("x-amz-copy-source") => {
                let source = headers
                    .get("x-amz-copy-source")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let source = decode(source.split('?').next().unwrap_or(""));
                let Some((sb, sk)) = source.trim_start_matches('/').split_once('/') else {
                    return Err(fail(
                        "InvalidArgument",
                        400,
                        format!(
                            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey ({source:?})"
                        ),
                    ));
                };
                let (sb, sk) = (sb.to_owned(), sk.to_owned());
                let s3 = s3.clone();
                blocking(Box::new(move || {
                    let o = s3.copy((&sb, &sk), (&b, &k))?;
                    Ok(xml(
                        StatusCode::OK,
                        format!(
                            "<CopyObjectResult><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>",
                            iso(o.modified),
                            escape(&o.etag)
                        ),
                    ))
                }))
                .await
            }
            (Method::PUT, Some(b), Some(k)) => {
                if let (Some(n), Some(id)) = (param(&q, "partNumber"), param(&q, "uploadId")) {
                    let n: u32 = n.parse().map_err(|_| {
                        fail("InvalidArgument", 400, format!("Part number must be an integer between 1 and 10000, inclusive (partNumber {n:?})"))
                    })?;
                    let path = s3.part_path(&b, &k, id, n)?;
                    let hash = receive(headers, body, &path).await?;
                    let etag = format!("\"{}\"", &hash[..32]);
                    return Ok((StatusCode::OK, [("etag", etag)]).into_response());
                }
                s3.check_target(&b, &k)?;
                let staged = s3.stage()?;
                let declared_len = headers
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok());
                if declared_len.is_some_and(|n| n <= SMALL) {
                    let bytes = small_body(headers, body).await?;
                    // A small object: one trip to the blocking pool for write and rename.
                    let s3 = s3.clone();
                    return blocking(Box::new(move || {
                        let written = std::fs::write(&staged, &bytes)
                            .map_err(|e| fail("InternalError", 500, e.to_string()))
                            .and_then(|()| s3.commit(&staged, &b, &k).map_err(Failure::from));
                        if written.is_err() {
                            let _ = std::fs::remove_file(&staged);
                        }
                        let o = written?;
                        Ok((StatusCode::OK, [("etag", o.etag)]).into_response())
                    }))
                    .await;
                }
                if let Err(f) = receive(headers, body, &staged).await {
                    let _ = tokio::fs::remove_file(&staged).await;
                    return Err(f);
                }
                let s3 = s3.clone();
                blocking(Box::new(move || {
                    let o = s3.commit(&staged, &b, &k);
                    if o.is_err() {
                        let _ = std::fs::remove_file(&staged);
                    }
                    let o = o?;
                    Ok((StatusCode::OK, [("etag", o.etag)]).into_response())
                }))
                .await
            }
            (Method::POST, Some(b), Some(k)) if has("uploads") => {
                let id = s3.create_upload(&b, &k)?;
                Ok(xml(
                    StatusCode::OK,
                    format!(
                        "<InitiateMultipartUploadResult xmlns=\"{NS}\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                        escape(&b),
                        escape(&k)
                    ),
                ))
            }
            (Method::POST, Some(b), Some(k)) if has("uploadId") => {
                let id = param(&q, "uploadId").unwrap_or("").to_owned();
                let text = read_small(body).await?;
                let mut numbers = vec![];
                for n in tags(&text, "PartNumber") {
                    numbers.push(n.trim().parse::<u32>().map_err(|_| {
                        fail(
                            "MalformedXML",
                            400,
                            format!("PartNumber {n:?} is not a number"),
                        )
                    })?);
                }
                let s3 = s3.clone();
                blocking(Box::new(move || {
                    let o = s3.complete_upload(&b, &k, &id, &numbers)?;
                    Ok(xml(
                        StatusCode::OK,
                        format!(
                            "<CompleteMultipartUploadResult xmlns=\"{NS}\"><Location>/{0}/{1}</Location><Bucket>{0}</Bucket><Key>{1}</Key><ETag>{2}</ETag></CompleteMultipartUploadResult>",
                            escape(&b),
                            escape(&k),
                            escape(&o.etag)
                        ),
                    ))
                }))
                .await
            }
            (Method::DELETE, Some(_), Some(_)) if has("uploadId") => {
                s3.abort_upload(param(&q, "uploadId").unwrap_or(""))?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            (Method::DELETE, Some(b), Some(k)) => {
                s3.delete_object(&b, &k)?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            (Method::GET | Method::HEAD, Some(b), Some(k)) => {
                let o = s3.object(&b, &k)?;
                send(&parts.method, headers, o).await
            }
            (m, _, _) => Err(fail(
                "NotImplemented",
                501,
                format!(
                    "localbuild's S3 does not implement {m} {}{}",
                    uri.path(),
                    uri.query().map(|q| format!("?{q}")).unwrap_or_default()
                ),
            )),
        }
    }
}

/// The text of every `<tag>…</tag>` in `xml`, in order.
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = vec![];
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_owned());
        rest = &after[j + close.len()..];
    }
    out
}

async fn read_small(body: Body) -> Result<String, Failure> {
    let bytes = axum::body::to_bytes(body, XML_LIMIT).await.map_err(|_| {
        fail(
            "MalformedXML",
            400,
            "The XML body is too large or could not be read",
        )
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Bodies up to this size are read whole and written in one go.
const SMALL: usize = 1024 * 1024;

/// The payload hash the request declared, refusing aws-chunked bodies.
fn declared_hash(headers: &HeaderMap) -> Result<String, Failure> {
    let declared = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("UNSIGNED-PAYLOAD")
        .to_owned();
    if declared.starts_with("STREAMING-") {
        return Err(fail(
            "NotImplemented",
            501,
            format!(
                "localbuild's S3 does not accept aws-chunked uploads ({declared}); send the payload whole"
            ),
        ));
    }
    Ok(declared)
}

fn mismatch() -> Failure {
    fail(
        "XAmzContentSHA256Mismatch",
        400,
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
    )
}

/// A small body (declared at most [`SMALL`] bytes), read whole and checked against the signed
/// hash.
async fn small_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, Failure> {
    let declared = declared_hash(headers)?;
    let bytes = axum::body::to_bytes(body, SMALL).await.map_err(|e| {
        fail(
            "IncompleteBody",
            400,
            format!("The request body could not be read: {e}"),
        )
    })?;
    if declared != "UNSIGNED-PAYLOAD"
        && !declared.eq_ignore_ascii_case(&hex::encode(Sha256::digest(&bytes)))
    {
        return Err(mismatch());
    }
    Ok(bytes)
}

/// Stream the body into `path`, checking its SHA-256 against the signed one; the hex SHA-256.
async fn receive(
    headers: &HeaderMap,
    body: Body,
    path: &std::path::Path,
) -> Result<String, Failure> {
    let declared = declared_hash(headers)?;
    let io = |e: std::io::Error| fail("InternalError", 500, e.to_string());
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut hasher = Sha256::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            fail(
                "IncompleteBody",
                400,
                format!("The request body could not be read: {e}"),
            )
        })?;
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    let hash = hex::encode(hasher.finalize());
    if declared != "UNSIGNED-PAYLOAD" && !declared.eq_ignore_ascii_case(&hash) {
        let _ = tokio::fs::remove_file(path).await;
        return Err(mismatch());
    }
    Ok(hash)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` as (start, end inclusive); `Err` if unsatisfiable.
fn range(spec: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(r) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    let Some((a, b)) = r.split_once('-') else {
        return Ok(None);
    };
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (a, "") => (a.parse().map_err(|_| ())?, size.saturating_sub(1)),
        (a, b) => (
            a.parse().map_err(|_| ())?,
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1)),
        ),
    };
    if size == 0 || start > end || start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// GetObject / HeadObject: the file streamed (a range of it with `Range`).
async fn send(method: &Method, headers: &HeaderMap, o: Object) -> Result<Response, Failure> {
    let spec = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let range = match spec.map(|s| range(s, o.size)) {
        None => None,
        Some(Ok(r)) => r,
        Some(Err(())) => {
            let mut f = fail(
                "InvalidRange",
                416,
                "The requested range is not satisfiable",
            );
            f.resource = Some(("RangeRequested", spec.unwrap_or("").to_owned()));
            return Err(f);
        }
    };
    let (status, start, len) = match range {
        Some((a, b)) => (StatusCode::PARTIAL_CONTENT, a, b - a + 1),
        None => (StatusCode::OK, 0, o.size),
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, len)
        .header(header::CONTENT_TYPE, "binary/octet-stream")
        .header(header::ETAG, &o.etag)
        .header(header::LAST_MODIFIED, http_date(o.modified))
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some((a, b)) = range {
        builder = builder.header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{}", o.size));
    }
    let body = if method == Method::HEAD {
        Body::empty()
    } else if len <= SMALL as u64 {
        // A small object in one piece: one read, one write with the head.
        let io = |e: std::io::Error| fail("InternalError", 500, e.to_string());
        let mut file = tokio::fs::File::open(&o.path).await.map_err(io)?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io)?;
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(len).read_to_end(&mut bytes).await.map_err(io)?;
        Body::from(bytes)
    } else {
        let io = |e: std::io::Error| fail("InternalError", 500, e.to_string());
        let mut file = tokio::fs::File::open(&o.path).await.map_err(io)?;
        file.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(io)?;
        let capacity = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .clamp(1, 256 * 1024);
        Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
            file.take(len),
            capacity,
        ))
    };
    builder
        .body(body)
        .map_err(|e| fail("InternalError", 500, e.to_string()))
}

/// ListObjects (v1, `marker`) and ListObjectsV2 (`list-type=2`, continuation tokens).
fn list(
    s3: &localbuild_aws::s3::S3,
    bucket: &str,
    q: &[(String, String)],
) -> Result<Response, Failure> {
    let v2 = param(q, "list-type") == Some("2");
    let prefix = param(q, "prefix").unwrap_or("");
    let delimiter = param(q, "delimiter").filter(|d| !d.is_empty());
    let url = param(q, "encoding-type") == Some("url");
    let max: usize = match param(q, "max-keys") {
        None => 1000,
        Some(m) => m
            .parse::<usize>()
            .map_err(|_| {
                fail(
                    "InvalidArgument",
                    400,
                    format!("Provided max-keys not an integer or within integer range ({m:?})"),
                )
            })?
            .min(1000),
    };
    let token = param(q, "continuation-token");
    let after = if v2 {
        token.or(param(q, "start-after"))
    } else {
        param(q, "marker")
    };
    let page = s3.list(bucket, prefix, delimiter, after, max)?;
    let enc = |s: &str| escape(&if url { url_encode(s) } else { s.to_owned() });
    let mut out = format!(
        "<ListBucketResult xmlns=\"{NS}\"><Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max}</MaxKeys><IsTruncated>{}</IsTruncated>",
        escape(bucket),
        enc(prefix),
        page.truncated
    );
    if let Some(d) = delimiter {
        out.push_str(&format!("<Delimiter>{}</Delimiter>", enc(d)));
    }
    if url {
        out.push_str("<EncodingType>url</EncodingType>");
    }
    if v2 {
        out.push_str(&format!(
            "<KeyCount>{}</KeyCount>",
            page.objects.len() + page.common_prefixes.len()
        ));
        if let Some(t) = token {
            out.push_str(&format!(
                "<ContinuationToken>{}</ContinuationToken>",
                escape(t)
            ));
        }
        if let Some(n) = &page.next {
            out.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                escape(n)
            ));
        }
        if let Some(s) = param(q, "start-after") {
            out.push_str(&format!("<StartAfter>{}</StartAfter>", enc(s)));
        }
    } else {
        out.push_str(&format!("<Marker>{}</Marker>", enc(after.unwrap_or(""))));
        if let (Some(n), Some(_)) = (&page.next, delimiter) {
            out.push_str(&format!("<NextMarker>{}</NextMarker>", enc(n)));
        }
    }
    for o in &page.objects {
        out.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            enc(&o.key),
            iso(o.modified),
            escape(&o.etag),
            o.size
        ));
    }
    for p in &page.common_prefixes {
        out.push_str(&format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            enc(p)
        ));
    }
    out.push_str("</ListBucketResult>");
    Ok(xml(StatusCode::OK, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_as_s3_reads_them() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(range("bytes=100-", 100), Err(()));
        assert_eq!(range("bytes=5-1", 100), Err(()));
        assert_eq!(range("items=1-2", 100), Ok(None));
    }

    #[test]
    fn addresses_path_and_virtual_hosted() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:4599".parse().unwrap());
        assert_eq!(address(&h, "/"), (None, None));
        assert_eq!(address(&h, "/b1x"), (Some("b1x".into()), None));
        assert_eq!(address(&h, "/b1x/"), (Some("b1x".into()), None));
        assert_eq!(
            address(&h, "/b1x/a%20b/c.txt"),
            (Some("b1x".into()), Some("a b/c.txt".into()))
        );
        h.insert(header::HOST, "site.localhost:4599".parse().unwrap());
        assert_eq!(
            address(&h, "/k/x"),
            (Some("site".into()), Some("k/x".into()))
        );
        assert_eq!(
            http_date(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_445_412_480)),
            "Wed, 21 Oct 2015 07:28:00 GMT"
        );
    }

    #[test]
    fn xml_tags_in_order() {
        assert_eq!(
            tags(
                "<a><PartNumber>1</PartNumber><PartNumber>2</PartNumber></a>",
                "PartNumber"
            ),
            ["1", "2"]
        );
    }
}
