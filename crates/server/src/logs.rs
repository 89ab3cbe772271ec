//! CloudWatch Logs over the build logs: one log group per project with builds
//! (`/aws/codebuild/<project>`), one stream per build (its UUID), one event per line of the
//! build's log file. Agent lines carry their own time (`[Container] 2026/11/30 18:32:00.123456`);
//! an output line gets the time of the agent line before it, or the build's start.
//!
//! Every call reads pages, never a whole log: the log's line index (`build.log.idx`, written by
//! the engine's hub along with the log, see `localbuild_engine::logindex`) says where each line
//! starts and its time, so GetLogEvents reads only the lines it returns and FilterLogEvents
//! walks the logs line by line. Like CloudWatch, an event carries at most 256 KB of its line
//! and a response at most 1 MB of events. A running build's index is read again on each call,
//! so its stream grows live.

use crate::error::ApiError;
use crate::protocol::{parse, unknown};
use crate::{AppState, Ctx};
use localbuild_engine::logindex::{Entry, LogIndex};
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

/// The most of one line an event carries (CloudWatch's event size, less its 26 bytes of
/// overhead); the raw log has the rest.
const MAX_MESSAGE: usize = 256 * 1024 - EVENT_OVERHEAD;
/// The most of a line read for one message (which ends with its newline, added if cut).
const MAX_READ: usize = MAX_MESSAGE - 1;
/// CloudWatch counts an event as its message plus this many bytes.
const EVENT_OVERHEAD: usize = 26;
/// The most one response carries: events up to 1 MB (CloudWatch's rule), at least one.
const MAX_RESPONSE: usize = 1 << 20;
/// Index entries walked at once.
const ENTRY_BLOCK: u64 = 4096;

/// A line of the log as an event's message: lossy UTF-8, always ending with a newline.
fn message(text: &[u8]) -> String {
    let mut m = String::from_utf8_lossy(text).into_owned();
    if !m.ends_with('\n') {
        m.push('\n');
    }
    m
}

/// A build's log with its index, as it stands now; `None` while there is no log (a queued
/// build). Blocking.
pub(crate) fn open_log(build: &Build) -> Option<LogIndex> {
    let path = build.logs.local_path.as_ref()?;
    LogIndex::open(std::path::Path::new(path), build.build_complete).ok()
}

/// Every index entry from line `from` on, in blocks (bounded memory); `visit` returns whether
/// to go on.
fn walk_entries(
    index: &LogIndex,
    from: u64,
    mut visit: impl FnMut(u64, Entry) -> bool,
) -> std::io::Result<()> {
    let mut at = from;
    while at < index.lines() {
        let to = (at + ENTRY_BLOCK).min(index.lines());
        for (k, e) in index.entries(at, to)?.into_iter().enumerate() {
            if !visit(at + k as u64, e) {
                return Ok(());
            }
        }
        at = to;
    }
    Ok(())
}

fn io_error(e: std::io::Error) -> ApiError {
    ApiError::Service(format!("cannot read the build log: {e}"))
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

/// A stream's build.
fn stream_build(state: &AppState, project: &str, stream: &str) -> Result<Build, ApiError> {
    state
        .builds
        .record(&format!("{project}:{stream}"))
        .ok_or_else(|| ApiError::ResourceNotFound(NO_STREAM.into()))
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
    .ok_or_else(|| ApiError::InvalidParameter("Missing required parameter: logGroupName".into()))
}

fn limit(l: Option<i64>) -> Result<usize, ApiError> {
    match l {
        None => Ok(MAX_EVENTS),
        Some(n) if (1..=MAX_EVENTS as i64).contains(&n) => Ok(n as usize),
        Some(n) => Err(ApiError::InvalidParameter(format!(
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
    let bad = || ApiError::InvalidParameter("The specified nextToken is invalid.".into());
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
    // The request's own values first, as AWS validates them, then what they name.
    let limit = limit(input.limit)?;
    let project = existing_group(&ctx.state, &group)?;
    let build = stream_build(&ctx.state, &project, &input.log_stream_name)?;
    let query = PageQuery {
        start_time: input.start_time,
        end_time: input.end_time,
        token: input.next_token,
        limit,
        from_head: input.start_from_head.unwrap_or(false),
    };
    let start_ms = (build.start_time * 1000.0) as i64;
    let page =
        tokio::task::spawn_blocking(move || log_page(open_log(&build).as_ref(), start_ms, &query))
            .await
            .map_err(|e| ApiError::Service(e.to_string()))??;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|e| json!({"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}))
        .collect();
    Ok(json!({
        "events": events,
        "nextForwardToken": format!("f/{}", page.to),
        "nextBackwardToken": format!("b/{}", page.from),
    }))
}

/// What a GetLogEvents call asks of one log.
pub struct PageQuery {
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub token: Option<String>,
    pub limit: usize,
    pub from_head: bool,
}

impl PageQuery {
    fn in_time(&self, t: i64) -> bool {
        self.start_time.is_none_or(|s| t >= s) && self.end_time.is_none_or(|e| t < e)
    }
}

/// One GetLogEvents answer: its events, and the positions (among the events in the time
/// range) its backward and forward tokens name.
#[derive(Debug)]
pub struct Page {
    pub events: Vec<LogEvent>,
    pub from: usize,
    pub to: usize,
}

/// GetLogEvents over one log (blocking): reads the index entries it needs (with a time
/// range, a walk over them) and the text of the lines it returns, nothing else.
pub fn log_page(index: Option<&LogIndex>, start_ms: i64, q: &PageQuery) -> Result<Page, ApiError> {
    let filtered = q.start_time.is_some() || q.end_time.is_some();
    let n = match index {
        None => 0,
        Some(index) if filtered => {
            let mut n = 0;
            walk_entries(index, 0, |_, e| {
                n += usize::from(q.in_time(e.time_or(start_ms)));
                true
            })
            .map_err(io_error)?;
            n
        }
        Some(index) => index.lines() as usize,
    };
    let (from, to) = window(n, q.token.as_deref(), q.limit, q.from_head)?;
    let Some(index) = index.filter(|_| from < to) else {
        return Ok(Page {
            events: vec![],
            from,
            to,
        });
    };
    // The lines at positions from..to, with their times.
    let mut lines: Vec<(u64, i64)> = Vec::with_capacity(to - from);
    if filtered {
        let mut pos = 0;
        walk_entries(index, 0, |i, e| {
            let t = e.time_or(start_ms);
            if q.in_time(t) {
                if pos >= from {
                    lines.push((i, t));
                }
                pos += 1;
            }
            pos < to
        })
        .map_err(io_error)?;
    } else {
        let entries = index.entries(from as u64, to as u64).map_err(io_error)?;
        lines.extend(
            entries
                .iter()
                .enumerate()
                .map(|(k, e)| ((from + k) as u64, e.time_or(start_ms))),
        );
    }
    // At most 1 MB: a page read forward ends early, one read backward starts late.
    let forward = match q.token.as_deref() {
        Some(t) => t.starts_with("f/"),
        None => q.from_head,
    };
    let mut events = vec![];
    let mut size = 0;
    let order: Box<dyn Iterator<Item = &(u64, i64)>> = if forward {
        Box::new(lines.iter())
    } else {
        Box::new(lines.iter().rev())
    };
    for &(line, timestamp) in order {
        let message = message(&index.line(line, MAX_READ).map_err(io_error)?);
        size += message.len() + EVENT_OVERHEAD;
        if size > MAX_RESPONSE && !events.is_empty() {
            break;
        }
        events.push(LogEvent { timestamp, message });
    }
    let (from, to) = if forward {
        (from, from + events.len())
    } else {
        events.reverse();
        (to - events.len(), to)
    };
    Ok(Page { events, from, to })
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
    let pattern = input
        .filter_pattern
        .as_deref()
        .map(|p| p.trim().trim_matches('"').to_owned())
        .filter(|p| !p.is_empty());
    // Oldest build first.
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
    // The token is where the last page stopped: a stream and a line in it.
    let invalid = || ApiError::InvalidParameter("The specified nextToken is invalid.".into());
    let resume = match &input.next_token {
        None => (0, 0),
        Some(t) => {
            let (stream, line) = t.rsplit_once('/').ok_or_else(invalid)?;
            let at = streams
                .iter()
                .position(|s| s == stream)
                .ok_or_else(invalid)?;
            (at, line.parse::<u64>().map_err(|_| invalid())?)
        }
    };
    let state = ctx.state.clone();
    let (start_time, end_time) = (input.start_time, input.end_time);
    let (found, next, searched) = tokio::task::spawn_blocking(move || {
        let mut found: Vec<Value> = vec![];
        let mut size = 0;
        let mut next = None;
        for (k, stream) in streams.iter().enumerate().skip(resume.0) {
            let Ok(build) = stream_build(&state, &project, stream) else {
                continue;
            };
            let Some(index) = open_log(&build) else {
                continue;
            };
            let start_ms = (build.start_time * 1000.0) as i64;
            let from = if k == resume.0 { resume.1 } else { 0 };
            index
                .scan(from, MAX_READ, |i, e, text| {
                    let timestamp = e.time_or(start_ms);
                    if start_time.is_some_and(|s| timestamp < s)
                        || end_time.is_some_and(|t| timestamp >= t)
                    {
                        return true;
                    }
                    let message = message(text);
                    if pattern.as_deref().is_some_and(|p| !message.contains(p)) {
                        return true;
                    }
                    size += message.len() + EVENT_OVERHEAD;
                    if found.len() == limit || (size > MAX_RESPONSE && !found.is_empty()) {
                        next = Some(format!("{stream}/{i}"));
                        return false;
                    }
                    found.push(json!({
                        "logStreamName": stream,
                        "timestamp": timestamp,
                        "message": message,
                        "ingestionTime": timestamp,
                        "eventId": format!("{stream}-{i}"),
                    }));
                    true
                })
                .map_err(io_error)?;
            if next.is_some() {
                break;
            }
        }
        Ok::<_, ApiError>((found, next, streams))
    })
    .await
    .map_err(|e| ApiError::Service(e.to_string()))??;
    let searched: Vec<Value> = searched
        .iter()
        .map(|s| json!({"logStreamName": s, "searchedCompletely": true}))
        .collect();
    let mut out = json!({"events": found, "searchedLogStreams": searched});
    if let Some(next) = next {
        out["nextToken"] = json!(next);
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeGroupsInput {
    log_group_name_prefix: Option<String>,
    log_group_name_pattern: Option<String>,
}

fn group_arn(account: &str, region: &str, group: &str) -> String {
    format!("arn:aws:logs:{region}:{account}:log-group:{group}")
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
        let start = state.builds.record(id).map_or(0.0, |b| b.start_time);
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
                "arn": format!("{}:*", group_arn(ctx.account(), &ctx.region, &g)),
                "logGroupArn": group_arn(ctx.account(), &ctx.region, &g),
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
    let by_last_event = match input.order_by.as_deref() {
        None | Some("LogStreamName") => false,
        Some("LastEventTime") => true,
        Some(o) => {
            return Err(ApiError::InvalidParameter(format!(
                "Invalid orderBy: {o}. Valid values: LogStreamName, LastEventTime"
            )));
        }
    };
    let project = existing_group(&ctx.state, &group)?;
    let ids = project_builds(&ctx.state, &project)?;
    let state = ctx.state.clone();
    let (region, prefix) = (ctx.region.clone(), input.log_stream_name_prefix.clone());
    let account = ctx.account().to_owned();
    let streams = tokio::task::spawn_blocking(move || {
        let mut streams = vec![];
        for id in ids {
            let Some((_, stream)) = id.split_once(':') else {
                continue;
            };
            if prefix.as_deref().is_some_and(|p| !stream.starts_with(p)) {
                continue;
            }
            let Ok(build) = stream_build(&state, &project, stream) else {
                continue;
            };
            let created = (build.start_time * 1000.0) as i64;
            let mut s = json!({
                "logStreamName": stream,
                "creationTime": created,
                "arn": format!("{}:log-stream:{stream}", group_arn(&account, &region, &group)),
                "storedBytes": 0,
            });
            // The first and last lines' entries; nothing of the text.
            if let Some(index) = open_log(&build).filter(|i| i.lines() > 0) {
                let first = index.entry(0).map(|e| e.time_or(created));
                let last = index.entry(index.lines() - 1).map(|e| e.time_or(created));
                if let (Ok(first), Ok(last)) = (first, last) {
                    s["storedBytes"] = json!(index.log_len());
                    s["firstEventTimestamp"] = json!(first);
                    s["lastEventTimestamp"] = json!(last);
                    s["lastIngestionTime"] = json!(last);
                }
            }
            streams.push((stream.to_owned(), last_event(&s, created), s));
        }
        streams
    })
    .await
    .map_err(|e| ApiError::Service(e.to_string()))?;
    let mut streams = streams;
    let descending = input.descending.unwrap_or(false);
    if by_last_event {
        streams.sort_by_key(|s| s.1);
    } else {
        streams.sort_by(|a, b| a.0.cmp(&b.0));
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

    const AGENT: &str = "[Container] 2026/11/30 18:32:00.123456 Running command echo hi\n";
    const AGENT_MS: i64 = 1_796_063_520_123;

    /// A log and its index, written as the hub writes them.
    fn log(dir: &std::path::Path, text: &[u8]) -> LogIndex {
        let path = dir.join("build.log");
        let mut entries = vec![];
        localbuild_engine::logindex::Lines::default().entries(0, text, &mut entries);
        std::fs::write(&path, text).unwrap();
        std::fs::write(localbuild_engine::logindex::path_for(&path), entries).unwrap();
        LogIndex::open(&path, true).unwrap()
    }

    fn query(token: Option<&str>, limit: usize, from_head: bool) -> PageQuery {
        PageQuery {
            start_time: None,
            end_time: None,
            token: token.map(str::to_owned),
            limit,
            from_head,
        }
    }

    fn messages(p: &Page) -> Vec<&str> {
        p.events.iter().map(|e| e.message.as_str()).collect()
    }

    #[test]
    fn output_lines_take_the_time_of_the_agent_line_before_them() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("out before\n{AGENT}hi\nno newline");
        let index = log(dir.path(), text.as_bytes());
        let p = log_page(Some(&index), 5, &query(None, 10, true)).unwrap();
        let times: Vec<i64> = p.events.iter().map(|e| e.timestamp).collect();
        assert_eq!(times, [5, AGENT_MS, AGENT_MS, AGENT_MS]);
        assert_eq!(
            messages(&p),
            ["out before\n", AGENT, "hi\n", "no newline\n"]
        );
        assert_eq!((p.from, p.to), (0, 4));
        // A time range counts positions among the events in it.
        let q = PageQuery {
            start_time: Some(AGENT_MS),
            ..query(None, 2, true)
        };
        let p = log_page(Some(&index), 5, &q).unwrap();
        assert_eq!(messages(&p), [AGENT, "hi\n"]);
        let q = PageQuery {
            token: Some("f/2".into()),
            ..q
        };
        assert_eq!(
            messages(&log_page(Some(&index), 5, &q).unwrap()),
            ["no newline\n"]
        );
        // No log yet (a queued build): no events, tokens that stay put.
        let p = log_page(None, 5, &query(None, 10, false)).unwrap();
        assert_eq!((p.events.len(), p.from, p.to), (0, 0, 0));
    }

    #[test]
    fn pages_of_a_long_log_from_the_head_the_tail_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..50_000).map(|i| format!("line {i}\n")).collect();
        let index = log(dir.path(), text.as_bytes());
        let p = log_page(Some(&index), 0, &query(None, 3, true)).unwrap();
        assert_eq!(messages(&p), ["line 0\n", "line 1\n", "line 2\n"]);
        let p = log_page(Some(&index), 0, &query(None, 2, false)).unwrap();
        assert_eq!(messages(&p), ["line 49998\n", "line 49999\n"]);
        assert_eq!((p.from, p.to), (49_998, 50_000));
        let p = log_page(Some(&index), 0, &query(Some("b/49998"), 1, false)).unwrap();
        assert_eq!(messages(&p), ["line 49997\n"]);
        let p = log_page(Some(&index), 0, &query(Some("f/50000"), 5, false)).unwrap();
        assert!(p.events.is_empty());
        assert!(log_page(Some(&index), 0, &query(Some("zz"), 5, false)).is_err());
    }

    #[test]
    fn a_response_holds_at_most_a_megabyte_and_an_event_256_kb_of_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let long = "x".repeat(300 * 1024);
        let text: String = (0..10).map(|i| format!("{i}{long}\n")).collect();
        let index = log(dir.path(), text.as_bytes());
        let p = log_page(Some(&index), 0, &query(None, 100, true)).unwrap();
        assert_eq!((p.from, p.to), (0, 4), "four events of 256 KB fit in 1 MB");
        assert!(p.events.iter().all(|e| e.message.len() == MAX_MESSAGE));
        assert!(p.events[1].message.starts_with("1xxx"));
        let p = log_page(Some(&index), 0, &query(None, 100, false)).unwrap();
        assert_eq!(
            (p.from, p.to),
            (6, 10),
            "read backward, the page starts late"
        );
        assert!(p.events[0].message.starts_with("6xxx"));
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
