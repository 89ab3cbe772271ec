use super::*;
use std::time::Duration;

/// A request written as on the wire: request line, headers, blank line, body.
struct Raw {
    head: Vec<String>, // method, path, query
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn new(text: &str) -> Raw {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let target = lines.next().unwrap().split(' ').nth(1).unwrap();
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let method = head.split(' ').next().unwrap();
        let headers = lines
            .map(|l| l.split_once(':').unwrap())
            .map(|(k, v)| (k.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()))
            .collect();
        let head = vec![method.into(), path.into(), query.into()];
        Raw {
            head,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn req(&self) -> Request<'_> {
        let (method, path, query) = (&self.head[0], &self.head[1], &self.head[2]);
        Request {
            method,
            path,
            query,
            headers: &self.headers,
            body: &self.body,
        }
    }

    /// Verified as an endpoint that answers the services the fixtures sign for.
    fn verify(&self, creds: &str, now: &str) -> Result<Verified, AuthError> {
        self.verify_for(&["codebuild", "service", "codepipeline"], creds, now)
    }

    fn verify_for(&self, services: &[&str], creds: &str, now: &str) -> Result<Verified, AuthError> {
        verify(
            &self.req(),
            &Credentials::parse(creds).unwrap(),
            services,
            at(now),
        )
    }
}

fn at(amz_date: &str) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(parse_amz_date(amz_date).unwrap() as u64)
}

fn verified(id: &str, region: &str, service: &str) -> Verified {
    Verified {
        access_key_id: id.into(),
        region: region.into(),
        service: service.into(),
    }
}

// ---- AWS's published SigV4 test suite (signatures also checked against botocore) ----

const SUITE_CREDS: &str = "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\n";
const SUITE_AUTH: &str = "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=";
const SUITE_DATE: &str = "20150830T123600Z";

#[test]
fn suite_get_vanilla() {
    let sig = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";
    let text = format!(
        "GET / HTTP/1.1\nHost: example.amazonaws.com\nX-Amz-Date: {SUITE_DATE}\n{SUITE_AUTH}host;x-amz-date, Signature={sig}"
    );
    let raw = Raw::new(&text);
    assert_eq!(
        canonical_request(&raw.req(), &parse_authorization(&raw.headers).unwrap()),
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        raw.verify(SUITE_CREDS, SUITE_DATE),
        Ok(verified("AKIDEXAMPLE", "us-east-1", "service"))
    );
    let off_by_one = Raw::new(&text.replace("5fa00", "5fa01"));
    assert_eq!(
        off_by_one.verify(SUITE_CREDS, SUITE_DATE),
        Err(AuthError::SignatureDoesNotMatch)
    );
}

#[test]
fn suite_post_x_www_form_urlencoded() {
    let text = format!(
        "POST / HTTP/1.1\nContent-Type: application/x-www-form-urlencoded\nHost: example.amazonaws.com\n\
         X-Amz-Date: {SUITE_DATE}\n{SUITE_AUTH}content-type;host;x-amz-date, \
         Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a\n\nParam1=value1"
    );
    assert!(Raw::new(&text).verify(SUITE_CREDS, SUITE_DATE).is_ok());
    let changed = Raw::new(&text.replace("value1", "value2"));
    assert_eq!(
        changed.verify(SUITE_CREDS, SUITE_DATE),
        Err(AuthError::SignatureDoesNotMatch)
    );
}

#[test]
fn suite_query_order_header_trim_and_duplicate_headers() {
    // get-vanilla-query-order-key-case
    let text = format!(
        "GET /?Param2=value2&Param1=value1 HTTP/1.1\nHost: example.amazonaws.com\nX-Amz-Date: {SUITE_DATE}\n\
         {SUITE_AUTH}host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    );
    assert!(Raw::new(&text).verify(SUITE_CREDS, SUITE_DATE).is_ok());
    // get-header-value-trim
    let text = format!(
        "GET / HTTP/1.1\nHost: example.amazonaws.com\nMy-Header1:  value1\nMy-Header2:  \"a   b   c\"\n\
         X-Amz-Date: {SUITE_DATE}\n{SUITE_AUTH}host;my-header1;my-header2;x-amz-date, \
         Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
    );
    assert!(Raw::new(&text).verify(SUITE_CREDS, SUITE_DATE).is_ok());
    // get-header-key-duplicate
    let text = format!(
        "GET / HTTP/1.1\nHost: example.amazonaws.com\nMy-Header1: value2\nMy-Header1: value2\n\
         My-Header1: value1\nX-Amz-Date: {SUITE_DATE}\n{SUITE_AUTH}host;my-header1;x-amz-date, \
         Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"
    );
    assert!(Raw::new(&text).verify(SUITE_CREDS, SUITE_DATE).is_ok());
}

// ---- Signed by botocore 1.43.11 and captured on the wire from `aws --endpoint-url
// http://127.0.0.1:4566 codebuild list-projects` (aws-cli 1.45.11) with
// AKIDLOCAL/secretlocal; tools/sign_botocore.py made it. ----

const CLI_DATE: &str = "20261130T183956Z";
const CLI_CREDS: &str =
    "[default]\naws_access_key_id=AKIDLOCAL\naws_secret_access_key=secretlocal\n";
const CLI_REQUEST: &str = "POST / HTTP/1.1
Host: 127.0.0.1:4566
Accept-Encoding: identity
X-Amz-Target: CodeBuild_20161006.ListProjects
Content-Type: application/x-amz-json-1.1
User-Agent: aws-cli/1.45.11 md/Botocore#1.43.11 ua/2.1 os/linux#6.18.44-fc-v782 md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython m/b,N,C,Z,D,g cfg/retry-mode#legacy botocore/1.43.11
X-Amz-Date: 20261130T183956Z
Authorization: AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20261130/us-east-1/codebuild/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=e591afa14b0531bcf39b5498f28d388c973927bfc2d9c941cb8400893d21986b
amz-sdk-invocation-id: f22aad17-f713-4e2c-8295-19136f4730b7
amz-sdk-request: attempt=1
Content-Length: 2

{}";

fn minutes(base: &str, delta: i64) -> String {
    format_amz_date(parse_amz_date(base).unwrap() + delta * 60)
}

#[test]
fn botocore_request_verifies_within_15_minutes() {
    let raw = Raw::new(CLI_REQUEST);
    assert_eq!(
        raw.verify(CLI_CREDS, CLI_DATE),
        Ok(verified("AKIDLOCAL", "us-east-1", "codebuild"))
    );
    assert!(raw.verify(CLI_CREDS, &minutes(CLI_DATE, 14)).is_ok());
    assert!(raw.verify(CLI_CREDS, &minutes(CLI_DATE, -14)).is_ok());
}

#[test]
fn botocore_request_with_changed_body_or_wrong_secret_is_refused() {
    let err = Raw::new(&CLI_REQUEST.replace("\n\n{}", "\n\n{ "))
        .verify(CLI_CREDS, CLI_DATE)
        .unwrap_err();
    assert_eq!(err, AuthError::SignatureDoesNotMatch);
    assert_eq!(
        (err.aws_type(), err.status()),
        ("InvalidSignatureException", 400)
    );
    assert!(
        err.to_string()
            .starts_with("The request signature we calculated does not match")
    );
    let wrong_secret = CLI_CREDS.replace("secretlocal", "nope");
    let err = Raw::new(CLI_REQUEST)
        .verify(&wrong_secret, CLI_DATE)
        .unwrap_err();
    assert_eq!(err, AuthError::SignatureDoesNotMatch);
}

#[test]
fn botocore_request_with_unknown_key_is_unrecognized() {
    let err = Raw::new(&CLI_REQUEST.replace("=AKIDLOCAL/", "=AKIDOTHER/"))
        .verify(CLI_CREDS, CLI_DATE)
        .unwrap_err();
    assert_eq!(err, AuthError::UnrecognizedClient);
    assert_eq!(
        (err.aws_type(), err.status()),
        ("UnrecognizedClientException", 400)
    );
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
}

#[test]
fn botocore_request_20_minutes_off_is_expired() {
    let err = Raw::new(CLI_REQUEST)
        .verify(CLI_CREDS, &minutes(CLI_DATE, 20))
        .unwrap_err();
    assert_eq!(
        (err.aws_type(), err.status()),
        ("InvalidSignatureException", 400)
    );
    assert_eq!(
        err.to_string(),
        "Signature expired: 20261130T183956Z is now earlier than 20261130T184456Z (20261130T185956Z - 15 min.)"
    );
    let err = Raw::new(CLI_REQUEST)
        .verify(CLI_CREDS, &minutes(CLI_DATE, -20))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20261130T183956Z is still later than 20261130T183456Z (20261130T181956Z + 15 min.)"
    );
}

#[test]
fn declared_payload_hash_must_match_body() {
    let hash = hex::encode(Sha256::digest(b"{}"));
    let text = CLI_REQUEST.replace("\n\n{}", &format!("\nX-Amz-Content-SHA256: {hash}\n\n{{ "));
    assert_eq!(
        Raw::new(&text).verify(CLI_CREDS, CLI_DATE),
        Err(AuthError::SignatureDoesNotMatch)
    );
}

// ---- The scope, SignedHeaders and payload hash as AWS's JSON endpoints check them ----

/// What a request is, its text, the services the endpoint answers, the outcome.
type Case = (
    &'static str,
    String,
    &'static [&'static str],
    Result<(), AuthError>,
);

#[test]
fn scope_host_and_payload_are_checked_as_aws_does() {
    let signed_scope = "20261130/us-east-1/codebuild/aws4_request";
    let hash = hex::encode(Sha256::digest(b"{}"));
    // (what changes in the botocore request, the services the endpoint answers, the outcome)
    let table: Vec<Case> = vec![
        ("as signed", CLI_REQUEST.into(), &["codebuild"], Ok(())),
        (
            "a region that is no region",
            CLI_REQUEST.replace(signed_scope, "20261130/us-east1/codebuild/aws4_request"),
            &["codebuild"],
            Err(AuthError::InvalidScope(
                "Credential should be scoped to a valid region, not 'us-east1'.".into(),
            )),
        ),
        (
            "another well-formed region: the scope passes, the signature does not",
            CLI_REQUEST.replace(signed_scope, "20261130/eu-west-1/codebuild/aws4_request"),
            &["codebuild"],
            Err(AuthError::SignatureDoesNotMatch),
        ),
        (
            "signed for another service",
            CLI_REQUEST.into(),
            &["logs"],
            Err(AuthError::InvalidScope(
                "Credential should be scoped to correct service: 'logs'.".into(),
            )),
        ),
        (
            "one of the API's signing names",
            CLI_REQUEST.into(),
            &["codestar-connections", "codebuild"],
            Ok(()),
        ),
        (
            "region and service both wrong",
            CLI_REQUEST.replace(signed_scope, "20261130/moon/s3/aws4_request"),
            &["codebuild"],
            Err(AuthError::InvalidScope(
                "Credential should be scoped to a valid region, not 'moon'. \
                 Credential should be scoped to correct service: 'codebuild'."
                    .into(),
            )),
        ),
        (
            "host not signed",
            CLI_REQUEST.replace(
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target",
                "SignedHeaders=content-type;x-amz-date;x-amz-target",
            ),
            &["codebuild"],
            Err(AuthError::HostNotSigned),
        ),
        (
            "UNSIGNED-PAYLOAD",
            CLI_REQUEST.replace("\n\n{}", "\nX-Amz-Content-SHA256: UNSIGNED-PAYLOAD\n\n{}"),
            &["codebuild"],
            Err(AuthError::SignatureDoesNotMatch),
        ),
        (
            "a malformed payload hash",
            CLI_REQUEST.replace("\n\n{}", "\nX-Amz-Content-SHA256: abc\n\n{}"),
            &["codebuild"],
            Err(AuthError::SignatureDoesNotMatch),
        ),
        (
            "the body's own payload hash",
            CLI_REQUEST.replace("\n\n{}", &format!("\nX-Amz-Content-SHA256: {hash}\n\n{{}}")),
            &["codebuild"],
            Ok(()),
        ),
    ];
    for (what, text, services, expected) in table {
        let got = Raw::new(&text)
            .verify_for(services, CLI_CREDS, CLI_DATE)
            .map(|_| ());
        assert_eq!(got, expected, "{what}");
        if let Err(e) = got {
            assert_eq!(e.aws_type(), "InvalidSignatureException", "{what}");
        }
    }
    assert_eq!(
        AuthError::HostNotSigned.to_string(),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn region_names_are_aws_shaped() {
    for good in [
        "us-east-1",
        "eu-central-2",
        "ap-southeast-5",
        "us-gov-west-1",
        "us-isob-east-1",
        "cn-north-1",
        "il-central-1",
    ] {
        assert!(is_region(good), "{good}");
    }
    for bad in [
        "",
        "us-east1",
        "useast-1",
        "local",
        "US-EAST-1",
        "us-east-1a",
        "us--1",
        "u-east-1",
        "us-east-100",
        "us-east-",
    ] {
        assert!(!is_region(bad), "{bad}");
    }
}

// ---- Authorization header parsing ----

#[test]
fn unsigned_request_is_missing_token() {
    let err = parse_authorization(&Raw::new("POST / HTTP/1.1\nHost: 127.0.0.1:4566").headers)
        .unwrap_err();
    assert_eq!(err, AuthError::MissingAuthenticationToken);
    assert_eq!(
        (err.aws_type(), err.status()),
        ("MissingAuthenticationTokenException", 400)
    );
    assert_eq!(err.to_string(), "Missing Authentication Token");
}

#[test]
fn parse_authorization_reads_every_part() {
    let auth = parse_authorization(&Raw::new(CLI_REQUEST).headers).unwrap();
    assert_eq!(auth.access_key_id, "AKIDLOCAL");
    assert_eq!(
        [&auth.date, &auth.region, &auth.service],
        ["20261130", "us-east-1", "codebuild"]
    );
    assert_eq!(auth.terminator, "aws4_request");
    assert_eq!(
        auth.signed_headers,
        ["content-type", "host", "x-amz-date", "x-amz-target"]
    );
    assert_eq!(
        auth.signature,
        "e591afa14b0531bcf39b5498f28d388c973927bfc2d9c941cb8400893d21986b"
    );
    assert_eq!(auth.amz_date, CLI_DATE);
    let compact = Raw::new(&CLI_REQUEST.replace(", ", ","));
    assert_eq!(parse_authorization(&compact.headers), Ok(auth));
}

#[test]
fn malformed_authorization_is_incomplete() {
    let no_signed = Raw::new(&CLI_REQUEST.replace(
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, ",
        "",
    ));
    let err = parse_authorization(&no_signed.headers).unwrap_err();
    assert_eq!(
        (err.aws_type(), err.status()),
        ("IncompleteSignatureException", 400)
    );
    assert!(err.to_string().starts_with(
        "Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential="
    ));
    let bearer = Raw::new("POST / HTTP/1.1\nAuthorization: Bearer abc");
    assert_eq!(
        parse_authorization(&bearer.headers)
            .unwrap_err()
            .to_string(),
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. \
         Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either \
         a 'X-Amz-Date' or a 'Date' header. Authorization=Bearer abc"
    );
    let short = Raw::new(&CLI_REQUEST.replace("/aws4_request", ""));
    let err = parse_authorization(&short.headers).unwrap_err();
    assert!(
        matches!(&err, AuthError::IncompleteSignature(m) if m.starts_with("Credential must have exactly 5"))
    );
}

#[test]
fn bad_credential_scope_is_invalid_signature() {
    let raw = Raw::new(&CLI_REQUEST.replace(
        "20261130/us-east-1/codebuild/aws4_",
        "20261129/us-east-1/codebuild/aws5_",
    ));
    let err = raw.verify(CLI_CREDS, CLI_DATE).unwrap_err();
    assert_eq!(err.aws_type(), "InvalidSignatureException");
    assert_eq!(
        err.to_string(),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. \
         Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
         '20261129' != '20261130', from '20261130T183956Z'."
    );
}

// ---- Canonicalisation and dates ----

#[test]
fn canonical_uri_query_and_dates() {
    assert_eq!(
        [
            canonical_uri(""),
            canonical_uri("/"),
            canonical_uri("//a/./b/../c/")
        ],
        ["/", "/", "/a/c/"]
    );
    // Non-S3 services encode the already-encoded path once more, as botocore does.
    assert_eq!(canonical_uri("/a%20b/c~d"), "/a%2520b/c~d");
    assert_eq!(canonical_query("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
    assert_eq!(canonical_query("k=a%20b&x=%7e+"), "k=a%20b&x=~%2B");
    for d in [
        "19700101T000000Z",
        "20150830T123600Z",
        "20240229T235959Z",
        "21000301T000000Z",
    ] {
        assert_eq!(format_amz_date(parse_amz_date(d).unwrap()), d);
    }
    assert_eq!(parse_amz_date(SUITE_DATE), Some(1_440_938_160));
    for bad in [
        "2015-08-30T12:36:00Z",
        "20150830T123600",
        "20151330T123600Z",
        "2015083OT123600Z",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}

// ---- Shared credentials file ----

#[test]
fn parses_two_profiles_with_comments() {
    let text = "\
# localbuild keys
[default]
aws_access_key_id = AKIDLOCAL
aws_secret_access_key=secretlocal
region = us-east-1

; a second profile
[profile ci]
  AWS_ACCESS_KEY_ID   =   AKIDCI
aws_secret_access_key = ci/secret+with=equals
aws_session_token = IQoJb3JpZ2luX2VjE
[role-only]
role_arn = arn:aws:iam::000000000000:role/x
";
    let creds = Credentials::parse(text).unwrap();
    assert_eq!(creds.secret("AKIDLOCAL"), Some("secretlocal"));
    assert_eq!(creds.secret("AKIDCI"), Some("ci/secret+with=equals"));
    assert_eq!(creds.secret("IQoJb3JpZ2luX2VjE"), None);
    assert_eq!(creds.secret("secretlocal"), None);
}

#[test]
fn credentials_errors_name_the_line() {
    let err = Credentials::parse("[default]\naws_access_key_id = A\n# fine\nthis line is wrong\n")
        .unwrap_err();
    assert_eq!(err.line, 4);
    assert!(
        err.to_string()
            .starts_with("credentials file line 4: expected"),
        "{err}"
    );
    let line = |text: &str| Credentials::parse(text).unwrap_err().line;
    assert_eq!(line("aws_access_key_id = A\n"), 1);
    assert_eq!(line("[a]\n[b\n"), 2);
    assert_eq!(line("[a]\n\naws_access_key_id = A\n[b]\n"), 3);
    assert_eq!(
        line("[a]\naws_access_key_id = A\naws_access_key_id = B\n"),
        3
    );
}

// ---- signing, as localbuild's CLI does when it calls serve ----

#[test]
fn sign_gives_the_suite_signature() {
    let raw = Raw::new(&format!(
        "GET / HTTP/1.1\nHost: example.amazonaws.com\nX-Amz-Date: {SUITE_DATE}"
    ));
    let key = ("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    assert_eq!(
        sign(&raw.req(), key, "us-east-1", "service"),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

#[test]
fn a_signed_request_verifies_and_a_changed_one_does_not() {
    let now = UNIX_EPOCH + Duration::from_secs(1_764_547_200);
    let date = amz_date(now);
    assert_eq!(date, "20251201T000000Z");
    let mut raw = Raw::new(&format!(
        "POST / HTTP/1.1\nHost: 127.0.0.1:4566\nX-Amz-Date: {date}\n\
         X-Amz-Target: CodePipeline_20150709.StartPipelineExecution\n\
         Content-Type: application/x-amz-json-1.1\n\n{{\"name\":\"app\"}}"
    ));
    let auth = sign(&raw.req(), ("AKID", "secret"), "us-east-1", "codepipeline");
    raw.headers.push(("Authorization".into(), auth));
    let creds = "[default]\naws_access_key_id = AKID\naws_secret_access_key = secret\n";
    assert_eq!(
        raw.verify(creds, &date),
        Ok(verified("AKID", "us-east-1", "codepipeline"))
    );
    raw.body = b"{\"name\":\"other\"}".to_vec();
    assert_eq!(
        raw.verify(creds, &date),
        Err(AuthError::SignatureDoesNotMatch)
    );
}
