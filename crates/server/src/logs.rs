//! CloudWatch Logs over the build logs: one log group per project with builds
//! (`/aws/codebuild/<project>`), one stream per build (its UUID), one event per line of the
//! build's log file. Agent lines carry their own time (`[Container] 2026/11/30 18:32:00.123456`);
//! an output line gets the time of the agent line before it, or the build's start. A running
//! build's file is simply read again on each call, so its stream grows live.

use crate::error::ApiError;
use crate::protocol::{parse, unknown};
use crate::{AppState, Ctx, codebuild};
use localbuild_engine::ACCOUNT_ID;
use localbuild_engine::record::Build;
use serde::Deserialize;
use serde_json::{Value, json};

/// Run one CloudWatch Logs operation.
pub async fn call(ctx: &Ctx, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    match op {
        "GetLogEvents" => get_log_events(ctx, body).await,
        "FilterLogEvents" => filter_log_events(ctx, body).await,
        "DescribeLogGroups" => describe_log_groups(ctx, body),
        "DescribeLogStreams" => describe_log_streams(ctx, body).await,
        _ => Err(unknown(crate::protocol::LOGS, op)),
    }
}

const GROUP_PREFIX: &str = "/aws/codebuild/";
const NO_GROUP: &str = "The specified log group does not exist.";
const NO_STREAM: &str = "The specified log stream does not exist.";
/// Most events one call returns (CloudWatch's own cap).
const MAX_EVENTS: usize = 10_000;

/// One log event: time in milliseconds and the line (with its newline, as CodeBuild sends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp: i64,
    pub message: String,
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The time of an agent line, in ms since the epoch.
pub fn agent_time(line: &str) -> Option<i64> {
    let ts = line.strip_prefix("[Container] ")?.get(..26)?;
    let b = ts.as_bytes();
    let sep_ok = b[4] == b'/' && b[7] == b'/' && b[10] == b' ' && b[13] == b':' && b[16] == b':';
    if !sep_ok || b[19] != b'.' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| ts.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?);
    let secs = days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?;
    Some(secs * 1000 + n(20..26)? / 1000)
}

/// A build log's lines as events.
pub fn events(text: &str, start_ms: i64) -> Vec<LogEvent> {
    let mut at = start_ms;
    text.split_inclusive('\n')
        .map(|line| {
            if let Some(t) = agent_time(line) {
                at = t;
            }
            let mut message = line.to_owned();
            if !message.ends_with('\n') {
                message.push('\n');
            }
            LogEvent {
                timestamp: at,
                message,
            }
        })
        .collect()
}

/// The project of a log group name.
fn group_project(group: &str) -> Option<&str> {
    group.strip_prefix(GROUP_PREFIX).filter(|p| !p.is_empty())
}

/// The builds of a project, newest first (ids).
fn project_builds(state: &AppState, project: &str) -> Result<Vec<String>, ApiError> {
    let (ids, _) = state
        .history
        .db()
        .list_builds(&localbuild_store::BuildQuery {
            project: Some(project.to_owned()),
            page_size: 100_000,
            ..Default::default()
        })
        .map_err(ApiError::db)?;
    Ok(ids)
}

/// The group's project, if the group exists (the project has builds).
fn existing_group(state: &AppState, group: &str) -> Result<String, ApiError> {
    let project =
        group_project(group).ok_or_else(|| ApiError::ResourceNotFound(NO_GROUP.into()))?;
    if project_builds(state, project)?.is_empty() {
        return Err(ApiError::ResourceNotFound(NO_GROUP.into()));
    }
    Ok(project.to_owned())
}

/// A stream's build and its events.
async fn stream_events(
    state: &AppState,
    project: &str,
    stream: &str,
) -> Result<(Build, Vec<LogEvent>), ApiError> {
    let id = format!("{project}:{stream}");
    let build = codebuild::record(state, &id)
        .ok_or_else(|| ApiError::ResourceNotFound(NO_STREAM.into()))?;
    let text = match &build.logs.local_path {
        Some(p) => tokio::fs::read(p).await.unwrap_or_default(),
        None => vec![],
    };
    let text = String::from_utf8_lossy(&text);
    let start_ms = (build.start_time * 1000.0) as i64;
    Ok((build, events(&text, start_ms)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetLogEventsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name: String,
    start_time: Option<i64>,
    end_time: Option<i64>,
    next_token: Option<String>,
    limit: Option<i64>,
    start_from_head: Option<bool>,
}

fn group_name(name: Option<String>, identifier: Option<String>) -> Result<String, ApiError> {
    name.or_else(|| {
        // An identifier may be the group's ARN.
        identifier.map(|i| {
            i.split_once(":log-group:")
                .map_or(i.as_str(), |(_, g)| g.trim_end_matches(":*"))
                .to_owned()
        })
    })
    .ok_or_else(|| ApiError::InvalidInput("Missing required parameter: logGroupName".into()))
}

fn limit(l: Option<i64>) -> Result<usize, ApiError> {
    match l {
        None => Ok(MAX_EVENTS),
        Some(n) if (1..=MAX_EVENTS as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::InvalidInput(format!(
            "Invalid limit: {n}. It must be between 1 and {MAX_EVENTS}"
        ))),
    }
}

/// The window of `n` events a GetLogEvents call returns, and its two tokens.
pub fn window(
    n: usize,
    token: Option<&str>,
    limit: usize,
    from_head: bool,
) -> Result<(usize, usize), ApiError> {
    let bad = || ApiError::InvalidInput("The specified nextToken is invalid.".into());
    let parse = |s: &str| s.parse::<usize>().map_err(|_| bad());
    Ok(match token {
        Some(t) => match t.split_once('/') {
            Some(("f", i)) => {
                let i = parse(i)?.min(n);
                (i, (i + limit).min(n))
            }
            Some(("b", i)) => {
                let i = parse(i)?.min(n);
                (i.saturating_sub(limit), i)
            }
            _ => return Err(bad()),
        },
        None if from_head => (0, limit.min(n)),
        None => (n.saturating_sub(limit), n),
    })
}

async fn get_log_events(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: GetLogEventsInput = parse(body)?;
    let group = group_name(input.log_group_name, input.log_group_identifier)?;
    let project = existing_group(&ctx.state, &group)?;
    let (_, all) = stream_events(&ctx.state, &project, &input.log_stream_name).await?;
    let all: Vec<LogEvent> = all
        .into_iter()
        .filter(|e| input.start_time.is_none_or(|s| e.timestamp >= s))
        .filter(|e| input.end_time.is_none_or(|t| e.timestamp < t))
        .collect();
    let (from, to) = window(
        all.len(),
        input.next_token.as_deref(),
        limit(input.limit)?,
        input.start_from_head.unwrap_or(false),
    )?;
    let events: Vec<Value> = all[from..to]
        .iter()
        .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}))
        .collect();
    Ok(json!({
        "events": events,
        "nextForwardToken": format!("f/{to}"),
        "nextBackwardToken": format!("b/{from}"),
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_names: Option<Vec<String>>,
    log_stream_name_prefix: Option<String>,
    start_time: Option<i64>,
    end_time: Option<i64>,
    filter_pattern: Option<String>,
    limit: Option<i64>,
    next_token: Option<String>,
}

async fn filter_log_events(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: FilterInput = parse(body)?;
    let group = group_name(input.log_group_name, input.log_group_identifier)?;
    let project = existing_group(&ctx.state, &group)?;
    let limit = limit(input.limit)?;
    let skip = match &input.next_token {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| ApiError::InvalidInput("The specified nextToken is invalid.".into()))?,
    };
    let pattern = input
        .filter_pattern
        .as_deref()
        .map(|p| p.trim().trim_matches('"').to_owned())
        .filter(|p| !p.is_empty());
    let mut streams: Vec<String> = project_builds(&ctx.state, &project)?
        .iter()
        .filter_map(|id| id.split_once(':').map(|(_, s)| s.to_owned()))
        .collect();
    streams.reverse();
    if let Some(names) = &input.log_stream_names {
        streams.retain(|s| names.contains(s));
    }
    if let Some(prefix) = &input.log_stream_name_prefix {
        streams.retain(|s| s.starts_with(prefix.as_str()));
    }
    let mut found = vec![];
    for stream in &streams {
        let Ok((_, events)) = stream_events(&ctx.state, &project, stream).await else {
            continue;
        };
        for (i, e) in events.into_iter().enumerate() {
            let keep = input.start_time.is_none_or(|s| e.timestamp >= s)
                && input.end_time.is_none_or(|t| e.timestamp < t)
                && pattern.as_deref().is_none_or(|p| e.message.contains(p));
            if keep {
                found.push(json!({
                    "logStreamName": stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.timestamp,
                    "eventId": format!("{stream}-{i}"),
                }));
            }
        }
    }
    found.sort_by_key(|e| e["timestamp"].as_i64().unwrap_or(0));
    let total = found.len();
    let page: Vec<Value> = found.into_iter().skip(skip).take(limit).collect();
    let searched: Vec<Value> = streams
        .iter()
        .map(|s| json!({"logStreamName": s, "searchedCompletely": true}))
        .collect();
    let mut out = json!({"events": page, "searchedLogStreams": searched});
    if skip + limit < total {
        out["nextToken"] = json!((skip + limit).to_string());
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeGroupsInput {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
}

fn group_arn(region: &str, group: &str) -> String {
    format!("arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{group}")
}

fn describe_log_groups(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: DescribeGroupsInput = parse(body)?;
    let state = &ctx.state;
    let (ids, _) = state
        .history
        .db()
        .list_builds(&localbuild_store::BuildQuery {
            descending: false,
            page_size: 1_000_000,
            ..Default::default()
        })
        .map_err(ApiError::db)?;
    // Oldest build first: a group's creation time is its first build's start.
    let mut groups: Vec<(String, f64)> = vec![];
    for id in &ids {
        let Some((project, _)) = id.split_once(':') else {
            continue;
        };
        if groups.iter().any(|(p, _)| p == project) {
            continue;
        }
        let start = codebuild::record(state, id).map_or(0.0, |b| b.start_time);
        groups.push((project.to_owned(), start));
    }
    groups.sort_by(|a, b| a.0.cmp(&b.0));
    let out: Vec<Value> = groups
        .iter()
        .map(|(p, created)| (format!("{GROUP_PREFIX}{p}"), created))
        .filter(|(g, _)| {
            input
                .log_group_name_prefix
                .as_deref()
                .is_none_or(|pre| g.starts_with(pre))
                && input
                    .log_group_name_pattern
                    .as_deref()
                    .is_none_or(|pat| g.contains(pat))
        })
        .map(|(g, created)| {
            json!({
                "logGroupName": g,
                "creationTime": (*created * 1000.0) as i64,
                "metricFilterCount": 0,
                "arn": format!("{}:*", group_arn(&ctx.region, &g)),
                "logGroupArn": group_arn(&ctx.region, &g),
                "storedBytes": 0,
                "logGroupClass": "STANDARD",
            })
        })
        .collect();
    Ok(json!({ "logGroups": out }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeStreamsInput {
    log_group_name: Option<String>,
    log_group_identifier: Option<String>,
    log_stream_name_prefix: Option<String>,
    order_by: Option<String>,
    descending: Option<bool>,
    limit: Option<i64>,
}

async fn describe_log_streams(ctx: &Ctx, body: &[u8]) -> Result<Value, ApiError> {
    let input: DescribeStreamsInput = parse(body)?;
    let group = group_name(input.log_group_name, input.log_group_identifier)?;
    let project = existing_group(&ctx.state, &group)?;
    let state = &ctx.state;
    let mut streams = vec![];
    for id in project_builds(state, &project)? {
        let Some((_, stream)) = id.split_once(':') else {
            continue;
        };
        if input
            .log_stream_name_prefix
            .as_deref()
            .is_some_and(|p| !stream.starts_with(p))
        {
            continue;
        }
        let Ok((build, events)) = stream_events(state, &project, stream).await else {
            continue;
        };
        let created = (build.start_time * 1000.0) as i64;
        let bytes: usize = events.iter().map(|e| e.message.len()).sum();
        let mut s = json!({
            "logStreamName": stream,
            "creationTime": created,
            "arn": format!("{}:log-stream:{stream}", group_arn(&ctx.region, &group)),
            "storedBytes": bytes,
        });
        if let (Some(first), Some(last)) = (events.first(), events.last()) {
            s["firstEventTimestamp"] = json!(first.timestamp);
            s["lastEventTimestamp"] = json!(last.timestamp);
            s["lastIngestionTime"] = json!(last.timestamp);
        }
        streams.push((stream.to_owned(), last_event(&s, created), s));
    }
    let descending = input.descending.unwrap_or(false);
    match input.order_by.as_deref() {
        None | Some("LogStreamName") => streams.sort_by(|a, b| a.0.cmp(&b.0)),
        Some("LastEventTime") => streams.sort_by_key(|s| s.1),
        Some(o) => {
            return Err(ApiError::InvalidInput(format!(
                "Invalid orderBy: {o}. Valid values: LogStreamName, LastEventTime"
            )));
        }
    }
    if descending {
        streams.reverse();
    }
    let limit = input.limit.map_or(50, |l| l.clamp(1, 50) as usize);
    let out: Vec<Value> = streams.into_iter().take(limit).map(|s| s.2).collect();
    Ok(json!({ "logStreams": out }))
}

fn last_event(stream: &Value, created: i64) -> i64 {
    stream["lastEventTimestamp"].as_i64().unwrap_or(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_lines_carry_their_time_and_output_inherits_it() {
        let t = agent_time("[Container] 2026/11/30 18:32:00.123456 Entering phase BUILD").unwrap();
        assert_eq!(t, 1_796_063_520_123);
        assert_eq!(agent_time("hello"), None);
        let ev = events(
            "out before\n[Container] 2026/11/30 18:32:00.123456 Running command echo hi\nhi\n",
            5,
        );
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].timestamp, 5);
        assert_eq!(ev[2].timestamp, t);
        assert_eq!(ev[2].message, "hi\n");
    }

    #[test]
    fn windows_and_tokens() {
        assert_eq!(window(10, None, 3, true).unwrap(), (0, 3));
        assert_eq!(window(10, None, 3, false).unwrap(), (7, 10));
        assert_eq!(window(10, Some("f/3"), 3, false).unwrap(), (3, 6));
        assert_eq!(window(10, Some("f/10"), 3, false).unwrap(), (10, 10));
        assert_eq!(window(10, Some("b/7"), 3, false).unwrap(), (4, 7));
        assert_eq!(window(10, Some("b/1"), 3, false).unwrap(), (0, 1));
        assert!(window(10, Some("x"), 3, false).is_err());
    }
}
