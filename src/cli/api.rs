//! A client of a running `localbuild serve`, for the CLI commands that change what the server
//! runs (`pipeline create|update|start|approve`): the same JSON 1.1 calls the aws CLI sends,
//! over plain HTTP to a loopback endpoint, signed with SigV4 when `AWS_ACCESS_KEY_ID` and
//! `AWS_SECRET_ACCESS_KEY` are set (needed when `serve` has `--credentials`).

use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

/// How long a call may take before the CLI gives up (the server answers these at once).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Where `serve` listens: `--endpoint-url`, else `AWS_ENDPOINT_URL` (clap reads both), else
/// the server's default address.
pub struct Endpoint {
    url: String,
    /// `HOST:PORT`, for the connection and the `Host` header.
    authority: String,
}

/// Why a call gave no answer: no server, or the server's AWS error.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(
        "no localbuild serve answers at {url} ({reason}): start one with `localbuild serve`, or name it with --endpoint-url"
    )]
    Unreachable { url: String, reason: String },
    #[error("{aws_type}: {message}")]
    Aws { aws_type: String, message: String },
    #[error("{url} answered something that is not an AWS JSON response: {reason}")]
    Protocol { url: String, reason: String },
}

impl Endpoint {
    pub fn new(url: Option<&str>) -> Result<Endpoint, String> {
        let url = url.map_or_else(
            || format!("http://127.0.0.1:{}", localbuild_server::DEFAULT_PORT),
            |u| u.trim_end_matches('/').to_string(),
        );
        let authority = url
            .strip_prefix("http://")
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or_else(|| {
                format!("--endpoint-url: expected http://HOST:PORT (localbuild serve's address), found {url:?}")
            })?;
        let authority = if authority.contains(':') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint { url, authority })
    }

    /// Calls `operation` of `service` (`CodePipeline_20150709`, …) with `body`; the answer's JSON.
    pub fn call(&self, target: &str, body: &Value) -> Result<Value, CallError> {
        let body = body.to_string();
        let unreachable = |e: std::io::Error| CallError::Unreachable {
            url: self.url.clone(),
            reason: e.to_string(),
        };
        let mut headers = vec![
            ("Host".to_string(), self.authority.clone()),
            (
                "X-Amz-Date".to_string(),
                localbuild_sigv4::amz_date(SystemTime::now()),
            ),
            ("X-Amz-Target".to_string(), target.to_string()),
            (
                "Content-Type".to_string(),
                "application/x-amz-json-1.1".to_string(),
            ),
        ];
        if let (Ok(id), Ok(secret)) = (
            std::env::var("AWS_ACCESS_KEY_ID"),
            std::env::var("AWS_SECRET_ACCESS_KEY"),
        ) {
            let region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".into());
            let service = if target.starts_with("CodePipeline") {
                "codepipeline"
            } else {
                "codebuild"
            };
            let request = localbuild_sigv4::Request {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: body.as_bytes(),
            };
            let auth = localbuild_sigv4::sign(&request, (&id, &secret), &region, service);
            headers.push(("Authorization".into(), auth));
        }
        let mut request = String::from("POST / HTTP/1.1\r\n");
        for (name, value) in &headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        let mut stream = TcpStream::connect(&self.authority).map_err(unreachable)?;
        stream
            .set_read_timeout(Some(TIMEOUT))
            .map_err(unreachable)?;
        stream.write_all(request.as_bytes()).map_err(unreachable)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).map_err(unreachable)?;
        self.answer(&answer)
    }

    fn answer(&self, raw: &[u8]) -> Result<Value, CallError> {
        let protocol = |reason: &str| CallError::Protocol {
            url: self.url.clone(),
            reason: reason.to_string(),
        };
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| protocol("no end of headers"))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| protocol("no status line"))?;
        let chunked = head.lines().any(|l| {
            l.to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
        });
        let body = if chunked {
            dechunk(body).ok_or_else(|| protocol("a broken chunked body"))?
        } else {
            body.to_string()
        };
        let value: Value = serde_json::from_str(if body.trim().is_empty() { "{}" } else { &body })
            .map_err(|e| protocol(&format!("HTTP {status}, body is not JSON ({e})")))?;
        if status == 200 {
            return Ok(value);
        }
        let aws_type = value["__type"].as_str().unwrap_or("UnknownError");
        Err(CallError::Aws {
            // `__type` may carry a namespace (`com.amazonaws…#Type`).
            aws_type: aws_type.rsplit('#').next().unwrap_or(aws_type).to_string(),
            message: value["message"]
                .as_str()
                .or(value["Message"].as_str())
                .unwrap_or_default()
                .to_string(),
        })
    }
}

fn dechunk(mut body: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(rest.get(..size)?);
        body = rest.get(size..)?.strip_prefix("\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_an_http_address() {
        let e = Endpoint::new(Some("http://127.0.0.1:4599/")).unwrap();
        assert_eq!(
            (e.url.as_str(), e.authority.as_str()),
            ("http://127.0.0.1:4599", "127.0.0.1:4599")
        );
        assert_eq!(
            Endpoint::new(Some("http://localhost")).unwrap().authority,
            "localhost:80"
        );
        assert!(Endpoint::new(Some("https://127.0.0.1:4599")).is_err());
        assert!(Endpoint::new(Some("127.0.0.1:4599")).is_err());
    }

    #[test]
    fn answers_become_values_or_aws_errors() {
        let e = Endpoint::new(None).unwrap();
        let ok = e
            .answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            .unwrap();
        assert_eq!(ok, serde_json::json!({}));
        let chunked = e
            .answer(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n",
            )
            .unwrap();
        assert_eq!(chunked["a"], 1);
        let err = e
            .answer(b"HTTP/1.1 400 Bad Request\r\n\r\n{\"__type\":\"com.amazonaws.codepipeline#PipelineNotFoundException\",\"message\":\"no such\"}")
            .unwrap_err();
        assert_eq!(err.to_string(), "PipelineNotFoundException: no such");
        assert!(matches!(
            e.answer(b"garbage"),
            Err(CallError::Protocol { .. })
        ));
    }
}
