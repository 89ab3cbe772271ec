//! STS on the query protocol: a form body (`Action=GetCallerIdentity&Version=2011-06-15`),
//! answered in XML, errors as `<ErrorResponse>` (the codec is [`super::query`]).

use super::Aws;
use super::query::{self, field, iso8601};
use super::s3::escape;
use axum::response::Response;
use localbuild_aws::AwsError;
use localbuild_aws::sts::Identity;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// STS's error document.
pub(super) fn error(code: &str, status: u16, message: &str) -> Response {
    query::error(NS, code, status, message)
}

fn ok(action: &str, result: String) -> Response {
    query::ok(NS, action, Some(result))
}

pub(super) fn call(
    aws: &Aws,
    signer: Option<(Identity, String)>,
    action: &str,
    fields: &[(String, String)],
) -> Response {
    let (who, key) = match signer {
        Some((who, key)) => (Some(who), Some(key)),
        None => (None, None),
    };
    let who = who.unwrap_or_else(|| Identity {
        user_id: aws.account().to_owned(),
        account: aws.account().to_owned(),
        arn: format!("arn:aws:iam::{}:root", aws.account()),
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
            match aws.ids.assume_role(key.as_deref(), role, name, duration) {
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
