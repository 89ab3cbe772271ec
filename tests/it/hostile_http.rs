//! Hostile HTTP against a real `localbuild serve`: requests a browser page, a confused client
//! or an attacker could send, written byte by byte on a TCP socket (or sent by the real `aws`
//! CLI where a user would meet them). Every refusal is an answer with an AWS error body,
//! never a reset, a hang or a bare status.

use crate::api::Serve;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

/// One answer read off the socket.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Lower-cased names.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The AWS error body: `(__type, message)`.
    fn aws_error(&self) -> (String, String) {
        let v: Value = serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not an AWS error body ({e}): {self:?}"));
        (
            v["__type"].as_str().unwrap_or_default().to_owned(),
            v["message"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

/// Send `head` (request line and headers, without the blank line; `Connection: close` and
/// `Content-Length` are added) and `body`, and read the whole answer.
fn raw(addr: &str, head: &str, body: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let request = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(request.as_bytes()).unwrap();
    s.write_all(body)
        .expect("the server reads the whole body before it answers");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer)
        .expect("an answer, not a connection reset");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn port(s: &Serve) -> &str {
    s.addr.rsplit_once(':').unwrap().1
}

const LIST_PROJECTS: &str = "POST / HTTP/1.1\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: CodeBuild_20161006.ListProjects";

#[test]
fn a_host_that_does_not_name_the_server_is_refused_with_an_aws_error() {
    let s = Serve::start(&["--allowed-host", "build-host.local"]);
    let p = port(&s);
    // DNS rebinding: the browser sends the attacker's name, the API and the console refuse it.
    for head in [
        format!("{LIST_PROJECTS}\r\nHost: evil.example:{p}"),
        format!("GET /builds HTTP/1.1\r\nHost: evil.example:{p}"),
        "GET /builds HTTP/1.1\r\nHost: evil.example".to_owned(),
    ] {
        let r = raw(&s.addr, &head, b"{}");
        assert_eq!(r.status, 403, "{head}: {r:?}");
        let (ty, message) = r.aws_error();
        assert_eq!(ty, "AccessDeniedException");
        assert!(message.contains("'evil.example"), "{message}");
        assert!(message.contains("--allowed-host"), "{message}");
    }
    // The names of this machine, with or without the port, and the --allowed-host one.
    for host in [
        format!("127.0.0.1:{p}"),
        format!("localhost:{p}"),
        "localhost".to_owned(),
        format!("[::1]:{p}"),
        format!("Build-Host.local:{p}"),
    ] {
        let r = raw(&s.addr, &format!("{LIST_PROJECTS}\r\nHost: {host}"), b"{}");
        assert_eq!(r.status, 200, "{host}: {r:?}");
        assert!(r.body.contains("\"projects\""), "{host}: {r:?}");
        let page = raw(
            &s.addr,
            &format!("GET /builds HTTP/1.1\r\nHost: {host}"),
            b"",
        );
        assert_eq!(page.status, 200, "{host}: {page:?}");
    }
    // The aws CLI through localhost works as through 127.0.0.1.
    let keys = ("test".to_owned(), "test".to_owned());
    let listed = crate::api::aws_cli(
        &format!("http://localhost:{p}"),
        &keys,
        &["codebuild", "list-projects"],
    );
    assert!(listed.is_ok(), "{listed:?}");
}

#[test]
fn an_allowed_host_that_is_not_a_name_is_a_usage_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_localbuild"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allowed-host",
            "box:4599",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--allowed-host") && err.contains("box:4599"),
        "{err}"
    );
}

#[test]
fn a_50_mb_body_is_answered_413_with_an_aws_error_not_a_reset() {
    let s = Serve::start(&[]);
    let big = vec![b' '; 50 * 1024 * 1024];
    let r = raw(
        &s.addr,
        &format!("{LIST_PROJECTS}\r\nHost: {}", s.addr),
        &big,
    );
    assert_eq!(r.status, 413, "{r:?}");
    let (ty, message) = r.aws_error();
    assert_eq!(ty, "RequestEntityTooLargeException");
    assert_eq!(message, "The request body is larger than the limit of 6 MB");
    // The console's forms too.
    let r = raw(
        &s.addr,
        &format!(
            "POST /console/action HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded",
            s.addr
        ),
        &big,
    );
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.aws_error().0, "RequestEntityTooLargeException");

    // What a user meets: the aws CLI with an oversized input gets the error, not a reset.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ids.json");
    let id = "x".repeat(50 * 1024 * 1024);
    std::fs::write(&input, serde_json::json!({ "ids": [id] }).to_string()).unwrap();
    let err = s
        .aws(&[
            "codebuild",
            "batch-get-builds",
            "--cli-input-json",
            &format!("file://{}", input.display()),
        ])
        .unwrap_err();
    assert!(
        err.contains("RequestEntityTooLargeException")
            && err.contains("larger than the limit of 6 MB"),
        "{err}"
    );
}

#[test]
fn unknown_paths_and_wrong_methods_get_aws_errors() {
    let s = Serve::start(&[]);
    let host = format!("Host: {}", s.addr);
    let r = raw(&s.addr, &format!("GET /nope HTTP/1.1\r\n{host}"), b"");
    assert_eq!(r.status, 404, "{r:?}");
    let (ty, message) = r.aws_error();
    assert_eq!(ty, "ResourceNotFoundException");
    assert!(message.contains("GET /nope"), "{message}");
    assert_eq!(r.header("content-type"), Some("application/x-amz-json-1.1"));
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );

    let r = raw(&s.addr, &format!("DELETE / HTTP/1.1\r\n{host}"), b"");
    assert_eq!(r.status, 405, "{r:?}");
    let (ty, message) = r.aws_error();
    assert_eq!(ty, "UnknownOperationException");
    assert!(
        message.starts_with("DELETE is not allowed on /"),
        "{message}"
    );
    assert!(
        r.header("allow").is_some_and(|a| a.contains("POST")),
        "{r:?}"
    );

    let r = raw(&s.addr, &format!("PUT /builds HTTP/1.1\r\n{host}"), b"x");
    assert_eq!(r.status, 405, "{r:?}");
    assert_eq!(r.aws_error().0, "UnknownOperationException");

    // A form with the wrong content type: the extractor's refusal, as an AWS error.
    let r = raw(
        &s.addr,
        &format!("POST /console/action HTTP/1.1\r\n{host}\r\nContent-Type: text/plain"),
        b"op=StopBuild",
    );
    assert_eq!(r.status, 415, "{r:?}");
    assert_eq!(r.aws_error().0, "SerializationException");
}

#[test]
fn too_many_headers_get_431() {
    let s = Serve::start(&[]);
    let many = |n: usize| {
        (0..n)
            .map(|i| format!("X-Filler-{i}: {i}"))
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let r = raw(
        &s.addr,
        &format!("GET /builds HTTP/1.1\r\nHost: {}\r\n{}", s.addr, many(70)),
        b"",
    );
    assert_eq!(r.status, 431, "{r:?}");
    let (ty, message) = r.aws_error();
    assert_eq!(ty, "RequestHeaderFieldsTooLargeException");
    assert!(message.contains("the limit is 64 headers"), "{message}");
    // Past hyper's own limit (100 headers) hyper answers before any route: a bare 431. This
    // is the one error answer without an AWS body.
    let r = raw(
        &s.addr,
        &format!("GET /builds HTTP/1.1\r\nHost: {}\r\n{}", s.addr, many(120)),
        b"",
    );
    assert_eq!((r.status, r.body.as_str()), (431, ""), "{r:?}");
}

#[test]
fn console_pages_cannot_be_framed() {
    let s = Serve::start(&[]);
    for path in ["/builds", "/projects", "/pipelines", "/login", "/nope"] {
        let r = raw(
            &s.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: {}", s.addr),
            b"",
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{path}: {r:?}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        // The console's own script and stylesheet (same origin) stay allowed.
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
    }
    let page = raw(
        &s.addr,
        &format!("GET /builds HTTP/1.1\r\nHost: {}", s.addr),
        b"",
    );
    assert!(page.body.contains("src=\"/console/assets/console.js\""));
    let js = raw(
        &s.addr,
        &format!(
            "GET /console/assets/console.js HTTP/1.1\r\nHost: {}",
            s.addr
        ),
        b"",
    );
    assert_eq!(js.status, 200);
}

#[test]
fn the_sixth_bad_login_in_a_minute_is_refused_429() {
    let s = Serve::with_credentials("AKIDLOCAL", "s3cret");
    let login = |secret: &str| {
        raw(
            &s.addr,
            &format!(
                "POST /login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded",
                s.addr
            ),
            format!("access_key_id=AKIDLOCAL&secret_access_key={secret}&next=%2Fbuilds").as_bytes(),
        )
    };
    for attempt in 1..=5 {
        let r = login("guess");
        assert_eq!(r.status, 401, "attempt {attempt}: {r:?}");
        assert!(r.body.contains("wrong secret"), "{r:?}");
    }
    // The sixth, even with the right secret.
    for secret in ["guess", "s3cret"] {
        let r = login(secret);
        assert_eq!(r.status, 429, "{r:?}");
        assert!(r.body.contains("Too many failed logins"), "{}", r.body);
        let wait: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&wait), "{wait}");
        assert!(r.header("set-cookie").is_none());
    }
    // The API is not throttled by the console's logins.
    assert!(s.aws(&["codebuild", "list-projects"]).is_ok());
}

/// A request signed by localbuild's own signer (as botocore signs), with the headers given.
fn signed(
    s: &Serve,
    target: &str,
    region: &str,
    service: &str,
    sign_host: bool,
    extra: &[(&str, &str)],
) -> Reply {
    let body = b"{}";
    let mut headers = vec![
        (
            "X-Amz-Date".to_owned(),
            localbuild_sigv4::amz_date(SystemTime::now()),
        ),
        ("X-Amz-Target".to_owned(), target.to_owned()),
        (
            "Content-Type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
    ];
    if sign_host {
        headers.push(("Host".to_owned(), s.addr.clone()));
    }
    let request = localbuild_sigv4::Request {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body,
    };
    let auth = localbuild_sigv4::sign(&request, (&s.keys.0, &s.keys.1), region, service);
    if !sign_host {
        headers.push(("Host".to_owned(), s.addr.clone()));
    }
    headers.push(("Authorization".to_owned(), auth));
    for (n, v) in extra {
        headers.push(((*n).to_owned(), (*v).to_owned()));
    }
    let mut head = "POST / HTTP/1.1".to_owned();
    for (n, v) in &headers {
        head.push_str(&format!("\r\n{n}: {v}"));
    }
    raw(&s.addr, &head, body)
}

#[test]
fn signatures_are_checked_as_aws_checks_them() {
    let s = Serve::with_credentials("AKIDLOCAL", "s3cret");
    // The aws CLI with a region that is no region, then with the right one.
    let err = s
        .aws(&["codebuild", "list-projects", "--region", "us-east1"])
        .unwrap_err();
    assert!(err.contains("InvalidSignatureException"), "{err}");
    assert!(
        err.contains("Credential should be scoped to a valid region, not 'us-east1'."),
        "{err}"
    );
    assert!(s.aws(&["codebuild", "list-projects"]).is_ok());
    // Any well-formed region is served (its ARNs carry it).
    let other = s.ok(&["codebuild", "list-projects", "--region", "eu-central-1"]);
    assert!(other["projects"].is_array(), "{other}");

    let list = "CodeBuild_20161006.ListProjects";
    let ok = signed(&s, list, "us-east-1", "codebuild", true, &[]);
    assert_eq!(ok.status, 200, "{ok:?}");
    // Signed for another service.
    let r = signed(&s, list, "us-east-1", "logs", true, &[]);
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.aws_error(),
        (
            "InvalidSignatureException".to_owned(),
            "Credential should be scoped to correct service: 'codebuild'.".to_owned()
        )
    );
    let r = signed(
        &s,
        "CodePipeline_20150709.ListPipelines",
        "us-east-1",
        "codebuild",
        true,
        &[],
    );
    assert!(
        r.aws_error().1.contains("correct service: 'codepipeline'"),
        "{r:?}"
    );
    // Host not signed: the signature would fit any server.
    let r = signed(&s, list, "us-east-1", "codebuild", false, &[]);
    assert_eq!(
        r.aws_error(),
        (
            "InvalidSignatureException".to_owned(),
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".to_owned()
        )
    );
    // An unsigned payload is S3's, not a JSON API's.
    let r = signed(
        &s,
        list,
        "us-east-1",
        "codebuild",
        true,
        &[("X-Amz-Content-SHA256", "UNSIGNED-PAYLOAD")],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.aws_error().0, "InvalidSignatureException");
    assert!(
        r.aws_error()
            .1
            .starts_with("The request signature we calculated does not match"),
        "{r:?}"
    );
}
