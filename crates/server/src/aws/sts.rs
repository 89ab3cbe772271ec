//! STS on the query protocol: a form body (`Action=GetCallerIdentity&Version=2011-06-15`),
//! answered in XML, errors as `<ErrorResponse>`.

use super::Aws;
use super::s3::escape;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use localbuild_aws::AwsError;
use localbuild_aws::sts::Identity;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The fields of a form body (`+` is a space, `%XX` decoded); malformed pairs are skipped.
pub(super) fn form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/xml")], body).into_response()
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// STS's error document.
pub(super) fn error(code: &str, status: u16, message: &str) -> Response {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    xml(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        format!(
            "<ErrorResponse xmlns=\"{NS}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            escape(code),
            escape(message),
            request_id()
        ),
    )
}

fn ok(action: &str, result: String) -> Response {
    xml(
        StatusCode::OK,
        format!(
            "<{action}Response xmlns=\"{NS}\">\n  <{action}Result>\n{result}  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
            request_id()
        ),
    )
}

fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// ISO 8601 with milliseconds, as STS writes `Expiration`.
pub(super) fn iso8601(epoch: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::try_from(epoch).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].000Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

pub(super) fn call(
    aws: &Aws,
    who: Option<Identity>,
    action: &str,
    fields: &[(String, String)],
) -> Response {
    let who = who.unwrap_or_else(|| Identity {
        user_id: localbuild_aws::ACCOUNT_ID.to_owned(),
        account: localbuild_aws::ACCOUNT_ID.to_owned(),
        arn: format!("arn:aws:iam::{}:root", localbuild_aws::ACCOUNT_ID),
    });
    match action {
        "GetCallerIdentity" => ok(
            action,
            format!(
                "    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n",
                escape(&who.arn),
                escape(&who.user_id),
                escape(&who.account)
            ),
        ),
        "AssumeRole" => {
            let Some(role) = field(fields, "RoleArn") else {
                return error(
                    "ValidationError",
                    400,
                    "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null",
                );
            };
            let Some(name) = field(fields, "RoleSessionName") else {
                return error(
                    "ValidationError",
                    400,
                    "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null",
                );
            };
            let duration = match field(fields, "DurationSeconds").map(str::parse::<u64>) {
                None => 3600,
                Some(Ok(d)) => d,
                Some(Err(_)) => {
                    return error(
                        "ValidationError",
                        400,
                        "DurationSeconds must be a whole number of seconds",
                    );
                }
            };
            match aws.ids.assume_role(role, name, duration) {
                Ok((c, user)) => ok(
                    action,
                    format!(
                        "    <Credentials>\n      <AccessKeyId>{}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{}</Expiration>\n    </Credentials>\n    <AssumedRoleUser>\n      <Arn>{}</Arn>\n      <AssumedRoleId>{}</AssumedRoleId>\n    </AssumedRoleUser>\n",
                        c.access_key_id,
                        escape(&c.secret_access_key),
                        escape(&c.session_token),
                        iso8601(c.expiration),
                        escape(&user.arn),
                        escape(&user.user_id)
                    ),
                ),
                Err(AwsError::Validation(m)) => error("ValidationError", 400, &m),
                Err(e) => error("ServiceUnavailable", 503, &e.to_string()),
            }
        }
        _ => error(
            "InvalidAction",
            400,
            &format!("Could not find operation {action} for version 2011-06-15"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_dates() {
        assert_eq!(
            form(b"Action=AssumeRole&RoleSessionName=a%2Fb+c&X"),
            vec![
                ("Action".to_owned(), "AssumeRole".to_owned()),
                ("RoleSessionName".to_owned(), "a/b c".to_owned()),
                ("X".to_owned(), String::new()),
            ]
        );
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20.000Z");
    }
}
