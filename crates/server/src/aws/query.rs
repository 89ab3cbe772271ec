//! The AWS query protocol, shared by STS and IAM: a form body (`Action=…&Version=…`, lists as
//! `Name.member.N`, structures as `Name.member.N.Field`), answered in XML in the service's
//! namespace (`<ActionResponse><ActionResult>…`), errors as `<ErrorResponse>`.

use super::s3::escape;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

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

/// One field's value.
pub(super) fn field<'f>(fields: &'f [(String, String)], name: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A list of strings (`Name.member.1`, `Name.member.2`, …), in member order.
pub(super) fn list(fields: &[(String, String)], name: &str) -> Vec<String> {
    let prefix = format!("{name}.member.");
    let mut items: Vec<(u32, String)> = fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.parse().ok()?, v.clone())))
        .collect();
    items.sort_by_key(|(n, _)| *n);
    items.into_iter().map(|(_, v)| v).collect()
}

/// A list of structures (`Name.member.N.Field`): for each member in order, its fields.
pub(super) fn structs(fields: &[(String, String)], name: &str) -> Vec<Vec<(String, String)>> {
    let prefix = format!("{name}.member.");
    let mut items: std::collections::BTreeMap<u32, Vec<(String, String)>> = Default::default();
    for (k, v) in fields {
        let Some((n, f)) = k.strip_prefix(&prefix).and_then(|r| r.split_once('.')) else {
            continue;
        };
        if let Ok(n) = n.parse() {
            items.entry(n).or_default().push((f.to_owned(), v.clone()));
        }
    }
    items.into_values().collect()
}

fn xml(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "text/xml")], body).into_response()
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The protocol's error document in namespace `ns`.
pub(super) fn error(ns: &str, code: &str, status: u16, message: &str) -> Response {
    let kind = if status >= 500 { "Receiver" } else { "Sender" };
    xml(
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        format!(
            "<ErrorResponse xmlns=\"{ns}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            escape(code),
            escape(message),
            request_id()
        ),
    )
}

/// A successful answer: `result` (XML elements) inside `<ActionResult>`, or no result element
/// at all when `result` is `None` (operations without output).
pub(super) fn ok(ns: &str, action: &str, result: Option<String>) -> Response {
    let result = result
        .map(|r| format!("  <{action}Result>\n{r}  </{action}Result>\n"))
        .unwrap_or_default();
    xml(
        StatusCode::OK,
        format!(
            "<{action}Response xmlns=\"{ns}\">\n{result}  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
            request_id()
        ),
    )
}

/// ISO 8601 with milliseconds, as STS and IAM write timestamps.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_lists_and_dates() {
        let fields = form(b"Action=AssumeRole&RoleSessionName=a%2Fb+c&X");
        assert_eq!(
            fields,
            vec![
                ("Action".to_owned(), "AssumeRole".to_owned()),
                ("RoleSessionName".to_owned(), "a/b c".to_owned()),
                ("X".to_owned(), String::new()),
            ]
        );
        let fields = form(
            b"TagKeys.member.2=b&TagKeys.member.1=a&Tags.member.1.Key=k&Tags.member.1.Value=v&Tags.member.2.Key=j",
        );
        assert_eq!(list(&fields, "TagKeys"), vec!["a", "b"]);
        let tags = structs(&fields, "Tags");
        assert_eq!(tags.len(), 2);
        assert_eq!(field(&tags[0], "Value"), Some("v"));
        assert_eq!(field(&tags[1], "Key"), Some("j"));
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20.000Z");
    }
}
