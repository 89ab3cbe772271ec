//! The web console of `localbuild serve`: server-rendered pages on the API's port (`GET`; the
//! API is `POST /`), for people watching builds and pipelines in a browser.
//!
//! * Pages: `/builds` (paged from the history, newest first, one SQLite page per request),
//!   `/builds/{id}` (phase timeline, log, variables, reports, artifacts, Stop / Retry),
//!   `/builds/{id}/log` (the raw log), `/builds/{id}/log/events` (the log's new lines as
//!   Server-Sent Events while the build runs), `/builds/{id}/artifacts/{path}` (downloads),
//!   `/projects`, `/batches`, `/batches/{id}`, `/pipelines`, `/pipelines/{name}`.
//! * Data comes from where the API's answers come from: a build's record from the build
//!   service (`localbuild_service`: live, else the history), lists from the history,
//!   pipelines through [`pipeline::call`], so a page shows what `aws` would; buttons are forms
//!   posting to `/console/action`, which maps the form to one API operation ([`action_call`])
//!   and calls it ([`codebuild::call`], [`pipeline::call`]).
//! * Sessions ([`session`]): with `--credentials` every page needs a login with one of the file's keys; the
//!   session cookie is HttpOnly and SameSite=Strict. Failed logins are throttled per client
//!   address ([`throttle`]: 5 a minute, then 429). Every form carries a CSRF token (the
//!   session's, or without credentials the server's own random one) and every `POST` must come
//!   from this origin (`Origin`, `Sec-Fetch-Site`).
//! * Assets (CSS, a small JS file for live updates) are compiled into the binary; nothing is
//!   fetched from elsewhere, and every page reads fine without JavaScript.
//!
//! Rendering is [`pages`] (pure: values in, HTML out); this module does the I/O.

pub mod ansi;
pub mod pages;
mod session;
pub mod throttle;

pub(crate) use session::Sessions;
pub use session::same_origin;
use session::{local_path, login, login_page, login_redirect, logout, same_secret, viewer};

use crate::error::ApiError;
use crate::{AppState, Ctx, codebuild, pipeline};
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use localbuild_engine::images::{ImageTracker, PhaseImages};
use localbuild_engine::logindex::LogIndex;
use localbuild_engine::record::{Build, BuildBatch, PhaseType};
use pages::Listing;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds per page of `/builds`.
pub const PAGE_SIZE: usize = 25;
/// How long a console session lasts.
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
const COOKIE: &str = "localbuild_session";
/// The log lines a build page shows at most (the last ones).
const PAGE_LOG_LINES: u64 = 5000;
/// The most of its log a build page reads (its last lines that fit).
const PAGE_LOG_BYTES: u64 = 4 << 20;
/// The most of one line the images summary looks at (their lines are short).
const IMAGE_LINE_BYTES: usize = 64 << 10;
/// The most a log stream reads at once.
const TAIL_CHUNK: u64 = 1 << 20;
/// How often the log stream looks for new lines.
const TAIL_EVERY: Duration = Duration::from_millis(250);

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The console's routes (merged into the server's router).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/builds", get(builds_page))
        .route("/builds/{id}", get(build_page))
        .route("/builds/{id}/log", get(build_log))
        .route("/builds/{id}/log/events", get(build_log_events))
        .route("/builds/{id}/artifacts/{*path}", get(artifact))
        .route("/projects", get(projects_page))
        .route("/batches", get(batches_page))
        .route("/batches/{id}", get(batch_page))
        .route("/pipelines", get(pipelines_page))
        .route("/roles", get(roles_page))
        .route("/pipelines/{name}", get(pipeline_page))
        .route("/ecs", get(ecs_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/console/action", post(action))
        .route("/console/assets/{name}", get(asset))
}

/// `GET /`: the builds page.
pub(crate) async fn home() -> Redirect {
    Redirect::to("/builds")
}

/// The console page of a build (`Build.logs.deepLink`, a pipeline action's
/// `externalExecutionUrl`).
pub(crate) fn build_url(addr: std::net::SocketAddr, id: &str) -> String {
    format!("http://{addr}/builds/{}", encode(id))
}

/// What a path segment or query value keeps as is: letters, digits and `-_.~`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment (or query value), percent-encoded.
pub(crate) fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Html(markup.into_string()),
    )
        .into_response()
}

fn forbidden(message: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::message_page(None, "Forbidden", message),
    )
}

/// The viewer, or the response that sends them to the login page.
macro_rules! viewer_or_login {
    ($state:expr, $headers:expr, $uri:expr) => {
        match viewer(&$state, &$headers) {
            Some(v) => v,
            None => return login_redirect(&$uri),
        }
    };
}

async fn asset(Path(name): Path<String>) -> Response {
    let (kind, body) = match name.as_str() {
        "console.css" => ("text/css; charset=utf-8", CSS),
        "console.js" => ("text/javascript; charset=utf-8", JS),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Calling the API from a page

/// One API operation, as a console button asks for it.
#[derive(Debug, PartialEq)]
pub struct ApiCall {
    /// `true`: CodePipeline; `false`: CodeBuild.
    pub pipeline: bool,
    pub op: &'static str,
    pub body: Value,
}

/// The API operation of a console form (`op` and its fields).
pub fn action_call(form: &HashMap<String, String>) -> Result<ApiCall, String> {
    let field = |name: &str| {
        form.get(name)
            .filter(|v| !v.is_empty())
            .cloned()
            .ok_or_else(|| format!("the form has no {name}"))
    };
    let op = form.get("op").map(String::as_str).unwrap_or_default();
    let (pipeline, op, body) = match op {
        "StopBuild" => (false, "StopBuild", json!({"id": field("id")?})),
        "RetryBuild" => (false, "RetryBuild", json!({"id": field("id")?})),
        "StopBuildBatch" => (false, "StopBuildBatch", json!({"id": field("id")?})),
        "RetryBuildBatch" => (false, "RetryBuildBatch", json!({"id": field("id")?})),
        "StartPipelineExecution" => (
            true,
            "StartPipelineExecution",
            json!({"name": field("pipelineName")?}),
        ),
        "StopPipelineExecution" => (
            true,
            "StopPipelineExecution",
            json!({
                "pipelineName": field("pipelineName")?,
                "pipelineExecutionId": field("pipelineExecutionId")?,
                "abandon": form.get("abandon").is_some_and(|v| v == "true"),
                "reason": "Stopped from the localbuild console",
            }),
        ),
        "PutApprovalResult" => {
            let status = field("status")?;
            if status != "Approved" && status != "Rejected" {
                return Err(format!("status must be Approved or Rejected, not {status}"));
            }
            (
                true,
                "PutApprovalResult",
                json!({
                    "pipelineName": field("pipelineName")?,
                    "stageName": field("stageName")?,
                    "actionName": field("actionName")?,
                    "token": field("token")?,
                    "result": {
                        "status": status,
                        "summary": form.get("summary").cloned().unwrap_or_default(),
                    },
                }),
            )
        }
        "EnableStageTransition" => (
            true,
            "EnableStageTransition",
            json!({
                "pipelineName": field("pipelineName")?,
                "stageName": field("stageName")?,
                "transitionType": "Inbound",
            }),
        ),
        "DisableStageTransition" => (
            true,
            "DisableStageTransition",
            json!({
                "pipelineName": field("pipelineName")?,
                "stageName": field("stageName")?,
                "transitionType": "Inbound",
                "reason": form.get("reason").filter(|r| !r.is_empty()).cloned()
                    .unwrap_or_else(|| "Disabled from the localbuild console".to_owned()),
            }),
        ),
        other => return Err(format!("the console has no action {other:?}")),
    };
    Ok(ApiCall { pipeline, op, body })
}

/// Run an API operation as the console (the server's own region).
async fn call(
    state: &Arc<AppState>,
    pipeline: bool,
    op: &str,
    body: &Value,
) -> Result<Value, ApiError> {
    let ctx = Ctx {
        state: state.clone(),
        region: state.region.clone(),
    };
    let body = body.to_string();
    if pipeline {
        pipeline::call(&ctx, op, body.as_bytes()).await
    } else {
        codebuild::call(&ctx, op, body.as_bytes()).await
    }
}

async fn action(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let back = local_path(form.get("back").map(String::as_str));
    let Some(v) = viewer(&state, &headers) else {
        return login_redirect(&back);
    };
    if !same_origin(&headers) {
        return forbidden("This form was posted from another site.");
    }
    if !form.get("csrf").is_some_and(|t| same_secret(t, &v.csrf)) {
        return forbidden("The form's token is missing or stale: reload the page and try again.");
    }
    let api = match action_call(&form) {
        Ok(a) => a,
        Err(e) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::message_page(Some(&v), "Cannot do that", &e),
            );
        }
    };
    match call(&state, api.pipeline, api.op, &api.body).await {
        Ok(out) => {
            let to = if let Some(id) = out["build"]["id"].as_str() {
                format!("/builds/{}", encode(id))
            } else if let Some(id) = out["buildBatch"]["id"].as_str() {
                format!("/batches/{}", encode(id))
            } else {
                back
            };
            Redirect::to(&to).into_response()
        }
        Err(e) => html(
            StatusCode::CONFLICT,
            pages::message_page(
                Some(&v),
                &format!("{} failed", api.op),
                &format!("{}: {e}", e.aws_type()),
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Builds

#[derive(Deserialize, Default)]
pub(crate) struct BuildsQuery {
    pub project: Option<String>,
    pub status: Option<String>,
    pub next: Option<String>,
}

/// One page of the builds list, straight from the history.
pub(crate) fn builds_listing(state: &AppState, q: &BuildsQuery) -> Result<Listing, ApiError> {
    let db = state.history.db();
    let query = localbuild_store::BuildQuery {
        project: q.project.clone().filter(|p| !p.is_empty()),
        status: q.status.clone().filter(|s| !s.is_empty()),
        descending: true,
        page_size: PAGE_SIZE,
        next_token: q.next.clone().filter(|n| !n.is_empty()),
    };
    let (ids, next) = db.list_builds(&query).map_err(ApiError::db)?;
    let mut builds: Vec<Build> = db
        .get_builds(&ids)
        .map_err(ApiError::db)?
        .into_iter()
        .filter_map(|r| serde_json::from_str(&r.json).ok())
        .collect();
    // A running build: the live record, fresher than the last saved phase.
    for b in &mut builds {
        if !b.build_complete
            && let Some(live) = state.builds.record(&b.id)
        {
            *b = live;
        }
    }
    let projects = state
        .projects
        .list(localbuild_service::projects::ProjectSort::Name, false)?;
    Ok(Listing {
        paged: query.next_token.is_some(),
        builds,
        next,
        projects,
        project: query.project,
        status: query.status,
    })
}

async fn builds_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<BuildsQuery>,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let began = Instant::now();
    match builds_listing(&state, &q) {
        Ok(listing) => {
            let page = pages::builds(&v, &listing, pipeline::now());
            let mut r = html(StatusCode::OK, page);
            // The page's own cost (query and render), for bench/console.py and the browser's
            // developer tools.
            let dur = began.elapsed().as_secs_f64() * 1000.0;
            if let Ok(h) = format!("render;dur={dur:.2}").parse() {
                r.headers_mut().insert("server-timing", h);
            }
            r
        }
        Err(e) => html(
            StatusCode::BAD_REQUEST,
            pages::message_page(Some(&v), "Cannot list builds", &e.to_string()),
        ),
    }
}

fn build_dir(build: &Build) -> Option<PathBuf> {
    let log = build.logs.local_path.as_ref()?;
    std::path::Path::new(log).parent().map(PathBuf::from)
}

/// The end of a build's log a page shows, read through the log's index: at most
/// [`PAGE_LOG_LINES`] lines and [`PAGE_LOG_BYTES`] bytes. Returns the lines, how many come
/// before them, the offset after them (where the live stream goes on) and the images the log
/// tells of (a walk over every line, one line in memory at a time). Blocking.
fn page_log(build: &Build) -> (Vec<String>, usize, usize, Vec<PhaseImages>) {
    crate::logs::open_log(build)
        .and_then(|index| page_of(&index, build.build_complete).ok())
        .unwrap_or_default()
}

/// [`page_log`] over an opened log; `complete`: the build is over (its last line is whole).
fn page_of(
    index: &LogIndex,
    complete: bool,
) -> std::io::Result<(Vec<String>, usize, usize, Vec<PhaseImages>)> {
    {
        let (n, len) = (index.lines(), index.log_len());
        let start = n
            .saturating_sub(PAGE_LOG_LINES)
            .max(index.line_at(len.saturating_sub(PAGE_LOG_BYTES))?);
        let from = if start < n {
            index.entry(start)?.offset
        } else {
            len
        };
        let (lines, used) = complete_lines(&index.bytes(from, len)?, complete);
        let mut reader = PhaseLines::default();
        index.scan(0, IMAGE_LINE_BYTES, |_, _, text| {
            let line = String::from_utf8_lossy(text);
            reader.line(line.trim_end_matches('\n').trim_end_matches('\r'));
            true
        })?;
        Ok((
            lines,
            start as usize,
            from as usize + used,
            reader.tracker.into_phases(),
        ))
    }
}

/// The complete lines of a log, from byte `offset` on: the lines and the offset after them.
/// At the end of the build the last line counts as complete with or without its newline.
fn complete_lines(bytes: &[u8], all: bool) -> (Vec<String>, usize) {
    let end = if all {
        bytes.len()
    } else {
        bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1)
    };
    let text = String::from_utf8_lossy(&bytes[..end]);
    let lines = text
        .split_inclusive('\n')
        .map(|l| l.trim_end_matches('\n').trim_end_matches('\r').to_owned())
        .collect();
    (lines, end)
}

/// What a build did with images, read back from its log with the tracker behind the CLI's
/// summary: each line counts in the phase the agent last said it entered.
pub fn images_in_log(log: &str) -> Vec<PhaseImages> {
    let mut reader = PhaseLines::default();
    for line in log.lines() {
        reader.line(line);
    }
    reader.tracker.into_phases()
}

/// Log lines read one by one into an [`ImageTracker`], in the phase they belong to.
struct PhaseLines {
    tracker: ImageTracker,
    phase: PhaseType,
}

impl Default for PhaseLines {
    fn default() -> PhaseLines {
        PhaseLines {
            tracker: ImageTracker::new(),
            phase: PhaseType::Submitted,
        }
    }
}

impl PhaseLines {
    fn line(&mut self, line: &str) {
        let entered = line
            .strip_prefix("[Container] ")
            .and_then(|l| l.split_once(" Entering phase "))
            .and_then(|(_, p)| serde_json::from_value(Value::String(p.trim().to_owned())).ok());
        match entered {
            Some(p) => self.phase = p,
            None => self.tracker.line(self.phase, line),
        }
    }
}

fn files_under(root: &std::path::Path, limit: usize) -> Vec<(String, u64)> {
    let mut out = vec![];
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.is_file()
                && let Ok(rel) = e.path().strip_prefix(root)
            {
                out.push((rel.to_string_lossy().into_owned(), meta.len()));
                if out.len() >= limit {
                    return out;
                }
            }
        }
    }
    out.sort();
    out
}

async fn build_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(id): Path<String>,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let Some(build) = state.builds.record(&id) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message_page(
                Some(&v),
                "No such build",
                &format!("There is no build {id}."),
            ),
        );
    };
    // A long log shows its last lines (the raw log has them all); numbers stay true.
    let read = build.clone();
    let (lines, first, offset, images) = tokio::task::spawn_blocking(move || page_log(&read))
        .await
        .unwrap_or_default();
    let dir = build_dir(&build);
    let reports: Vec<Value> = dir
        .as_ref()
        .map(|d| files_under(&d.join("reports"), 50))
        .unwrap_or_default()
        .into_iter()
        .filter(|(f, _)| f.ends_with(".json") && !f.contains('/'))
        .filter_map(|(f, _)| {
            let d = dir.as_ref()?.join("reports").join(f);
            serde_json::from_slice(&std::fs::read(d).ok()?).ok()
        })
        .collect();
    let artifacts = dir
        .map(|d| files_under(&d.join("artifacts"), 200))
        .unwrap_or_default();
    let page = pages::BuildPage {
        images: &images,
        build: &build,
        lines: &lines,
        first,
        offset,
        reports: &reports,
        artifacts: &artifacts,
        now: pipeline::now(),
    };
    html(StatusCode::OK, pages::build(&v, &page))
}

async fn build_log(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(id): Path<String>,
) -> Response {
    viewer_or_login!(state, headers, uri.to_string());
    match state.builds.log_path(&id) {
        // Streamed from the file, never read whole.
        Some(path) => {
            let body = match tokio::fs::File::open(&path).await {
                Ok(f) => axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(f)),
                Err(_) => axum::body::Body::empty(),
            };
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
        }
        None => (StatusCode::NOT_FOUND, format!("no build {id}\n")).into_response(),
    }
}

#[derive(Deserialize)]
struct TailQuery {
    offset: Option<u64>,
    line: Option<usize>,
}

/// Where a log stream stands.
struct Tail {
    state: Arc<AppState>,
    id: String,
    path: PathBuf,
    offset: u64,
    line: usize,
    done: bool,
}

impl Tail {
    /// The next event: new lines, else the end once the build is over.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Tail)> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        if self.done {
            return None;
        }
        loop {
            let complete = self
                .state
                .builds
                .record(&self.id)
                .is_none_or(|b| b.build_complete);
            let mut bytes = vec![];
            if let Ok(mut f) = tokio::fs::File::open(&self.path).await
                && f.seek(std::io::SeekFrom::Start(self.offset)).await.is_ok()
            {
                let _ = f.take(TAIL_CHUNK).read_to_end(&mut bytes).await;
            }
            // A full chunk may end inside a line: only an end of file ends the last line.
            // A chunk without any newline is one over-long line: it goes as it is.
            let at_end = (bytes.len() as u64) < TAIL_CHUNK;
            let overlong = !at_end && !bytes.contains(&b'\n');
            let (lines, used) = complete_lines(&bytes, (complete && at_end) || overlong);
            if !lines.is_empty() {
                let html: Vec<String> = lines
                    .iter()
                    .enumerate()
                    .map(|(i, l)| pages::log_line(self.line + i + 1, l).into_string())
                    .collect();
                self.offset += used as u64;
                self.line += lines.len();
                let event = Event::default()
                    .event("lines")
                    .id(format!("{}:{}", self.offset, self.line))
                    .data(html.join("\n"));
                return Some((Ok(event), self));
            }
            if complete && at_end {
                self.done = true;
                return Some((Ok(Event::default().event("end").data("end")), self));
            }
            tokio::time::sleep(TAIL_EVERY).await;
        }
    }
}

async fn build_log_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(id): Path<String>,
    Query(q): Query<TailQuery>,
) -> Response {
    viewer_or_login!(state, headers, uri.to_string());
    let Some(path) = state.builds.log_path(&id) else {
        return (StatusCode::NOT_FOUND, format!("no build {id}\n")).into_response();
    };
    // A reconnecting EventSource says where it was.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(':'))
        .and_then(|(o, l)| Some((o.parse().ok()?, l.parse().ok()?)));
    let (offset, line) = resume.unwrap_or((q.offset.unwrap_or(0), q.line.unwrap_or(0)));
    let tail = Tail {
        state,
        id,
        path,
        offset,
        line,
        done: false,
    };
    Sse::new(futures_util::stream::unfold(tail, Tail::next))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn artifact(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path((id, path)): Path<(String, String)>,
) -> Response {
    viewer_or_login!(state, headers, uri.to_string());
    let rel = std::path::Path::new(&path);
    let file = state
        .builds
        .record(&id)
        .and_then(|b| build_dir(&b))
        .and_then(|d| {
            localbuild_confine::Root::new(d.join("artifacts"))
                .confined("artifact path", &path)
                .ok()
        });
    match file {
        Some(f) if f.is_file() => match tokio::fs::read(&f).await {
            Ok(bytes) => {
                let name = rel
                    .file_name()
                    .map(|n| n.to_string_lossy().replace('"', ""))
                    .unwrap_or_default();
                (
                    [
                        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"{name}\""),
                        ),
                    ],
                    bytes,
                )
                    .into_response()
            }
            Err(e) => (StatusCode::NOT_FOUND, format!("cannot read: {e}\n")).into_response(),
        },
        _ => (StatusCode::NOT_FOUND, "no such artifact\n").into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Projects and batches

async fn projects_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let names = state
        .projects
        .list(localbuild_service::projects::ProjectSort::Name, false)
        .unwrap_or_default();
    let projects: Vec<Value> = state
        .projects
        .get_many(&names)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    html(StatusCode::OK, pages::projects(&v, &projects))
}

/// IAM's roles as the stand-in keeps them (what `aws iam list-roles` answers; not enforced).
async fn roles_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let roles = state.aws.iam.roles(None).unwrap_or_default();
    html(StatusCode::OK, pages::roles(&v, &state.account_id, &roles))
}

async fn batches_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let ids = call(
        &state,
        false,
        "ListBuildBatches",
        &json!({"maxResults": 100}),
    )
    .await
    .ok()
    .and_then(|o| o["ids"].as_array().cloned())
    .unwrap_or_default();
    let batches: Vec<BuildBatch> = ids
        .iter()
        .filter_map(Value::as_str)
        .filter_map(|id| state.builds.batch_record(id))
        .collect();
    html(
        StatusCode::OK,
        pages::batches(&v, &batches, pipeline::now()),
    )
}

async fn batch_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(id): Path<String>,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    // Its record as the engine keeps it (ids may be ARNs, as in the API).
    let id = id
        .split_once(":build-batch/")
        .map_or(id.as_str(), |(_, i)| i)
        .to_owned();
    let batch = state.builds.batch_record(&id);
    match batch {
        Some(b) => html(StatusCode::OK, pages::batch(&v, &b, pipeline::now())),
        None => html(
            StatusCode::NOT_FOUND,
            pages::message_page(
                Some(&v),
                "No such batch",
                &format!("There is no batch {id}."),
            ),
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Pipelines

async fn pipelines_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let names: Vec<String> = call(&state, true, "ListPipelines", &json!({}))
        .await
        .ok()
        .and_then(|o| o["pipelines"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p["name"].as_str().map(str::to_owned))
        .collect();
    let mut rows = vec![];
    for name in names {
        let latest = call(
            &state,
            true,
            "ListPipelineExecutions",
            &json!({"pipelineName": name, "maxResults": 1}),
        )
        .await
        .ok()
        .map(|o| o["pipelineExecutionSummaries"][0].clone())
        .unwrap_or(Value::Null);
        rows.push((name, latest));
    }
    html(StatusCode::OK, pages::pipelines(&v, &rows, pipeline::now()))
}

/// The ECS services, read as DescribeServices reads them (the records and whether each task
/// runs now).
async fn ecs_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    use crate::ecs::services;
    let v = viewer_or_login!(state, headers, uri.to_string());
    let mut views = vec![];
    for s in services::all_services(state.history.db()).unwrap_or_default() {
        views.push(services::view(state.runtime.as_ref(), s).await);
    }
    html(StatusCode::OK, pages::ecs_services(&v, &views))
}

async fn pipeline_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(name): Path<String>,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let declaration = match call(&state, true, "GetPipeline", &json!({"name": name})).await {
        Ok(o) => o["pipeline"].clone(),
        Err(e) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message_page(Some(&v), "No such pipeline", &e.to_string()),
            );
        }
    };
    let pipeline_state = call(&state, true, "GetPipelineState", &json!({"name": name}))
        .await
        .unwrap_or(Value::Null);
    let executions = call(
        &state,
        true,
        "ListPipelineExecutions",
        &json!({"pipelineName": name, "maxResults": 20}),
    )
    .await
    .ok()
    .and_then(|o| o["pipelineExecutionSummaries"].as_array().cloned())
    .unwrap_or_default();
    let page = pages::PipelinePage {
        name: &name,
        declaration: &declaration,
        state: &pipeline_state,
        executions: &executions,
        now: pipeline::now(),
    };
    html(StatusCode::OK, pages::pipeline(&v, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn buttons_map_to_api_operations() {
        let c = action_call(&form(&[("op", "StopBuild"), ("id", "p:1")])).unwrap();
        assert_eq!(
            (c.pipeline, c.op, c.body),
            (false, "StopBuild", json!({"id": "p:1"}))
        );
        let c = action_call(&form(&[
            ("op", "PutApprovalResult"),
            ("pipelineName", "p"),
            ("stageName", "Approve"),
            ("actionName", "Manual"),
            ("token", "t"),
            ("status", "Approved"),
        ]))
        .unwrap();
        assert_eq!(c.body["result"]["status"], "Approved");
        assert!(c.pipeline);
        assert!(
            action_call(&form(&[("op", "StopBuild")]))
                .unwrap_err()
                .contains("id")
        );
        assert!(action_call(&form(&[("op", "DeleteProject"), ("id", "x")])).is_err());
        let bad = form(&[
            ("op", "PutApprovalResult"),
            ("pipelineName", "p"),
            ("stageName", "s"),
            ("actionName", "a"),
            ("token", "t"),
            ("status", "Maybe"),
        ]);
        assert!(action_call(&bad).is_err());
    }

    #[test]
    fn posts_from_other_sites_are_refused() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            m
        };
        assert!(same_origin(&h(&[("host", "127.0.0.1:4599")])));
        assert!(same_origin(&h(&[
            ("host", "127.0.0.1:4599"),
            ("origin", "http://127.0.0.1:4599")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:4599"),
            ("origin", "http://evil.example")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:4599"),
            ("origin", "null")
        ])));
        assert!(!same_origin(&h(&[
            ("host", "127.0.0.1:4599"),
            ("sec-fetch-site", "cross-site")
        ])));
    }

    #[test]
    fn only_local_paths_are_followed_back() {
        assert_eq!(local_path(Some("/pipelines/p")), "/pipelines/p");
        assert_eq!(local_path(Some("//evil.example/")), "/builds");
        assert_eq!(local_path(Some("http://evil.example/")), "/builds");
        assert_eq!(local_path(None), "/builds");
    }

    #[test]
    fn images_are_read_back_from_the_log_by_phase() {
        let log = "[Container] 2026/11/28 02:22:48.123456 Entering phase BUILD\n\
            Successfully tagged app:1f3c\n\
            [Container] 2026/11/28 02:22:50.000000 Entering phase POST_BUILD\n\
            The push refers to repository [127.0.0.1:5000/web/app]\n\
            1f3c: digest: sha256:"
            .to_owned()
            + &"a".repeat(64)
            + " size: 528\n";
        let images = images_in_log(&log);
        assert_eq!(images.len(), 2, "{images:?}");
        assert_eq!(images[0].phase, PhaseType::Build);
        assert_eq!(images[0].built, vec!["app:1f3c".to_owned()]);
        assert_eq!(images[1].phase, PhaseType::PostBuild);
        assert_eq!(images[1].pushed.len(), 1);
        assert!(images_in_log("nothing here\n").is_empty());
    }

    /// A log and its index as the hub writes them.
    fn indexed(dir: &std::path::Path, text: &[u8]) -> LogIndex {
        let path = dir.join("build.log");
        let mut entries = vec![];
        localbuild_engine::logindex::Lines::default().entries(0, text, &mut entries);
        std::fs::write(&path, text).unwrap();
        std::fs::write(localbuild_engine::logindex::path_for(&path), entries).unwrap();
        LogIndex::open(&path, true).unwrap()
    }

    #[test]
    fn a_long_log_shows_its_last_lines_within_a_bound() {
        let dir = tempfile::tempdir().unwrap();
        let text: String = (0..12_000).map(|i| format!("line {i}\n")).collect();
        let (lines, first, offset, _) =
            page_of(&indexed(dir.path(), text.as_bytes()), true).unwrap();
        assert_eq!((lines.len(), first), (5000, 7000));
        assert_eq!((lines[0].as_str(), offset), ("line 7000", text.len()));
        // Long lines: only what fits in the byte bound, whole lines.
        let long = "y".repeat(1 << 20);
        let text: String = (0..10).map(|i| format!("{i}{long}\n")).collect();
        let (lines, first, _, _) = page_of(&indexed(dir.path(), text.as_bytes()), true).unwrap();
        assert_eq!((lines.len(), first), (3, 7));
        // A running build's unfinished last line waits for the stream.
        let (lines, first, offset, _) =
            page_of(&indexed(dir.path(), b"a\nb\npart"), false).unwrap();
        assert_eq!(
            (lines, first, offset),
            (vec!["a".to_owned(), "b".to_owned()], 0, 4)
        );
        let images = page_of(&indexed(dir.path(), b"[Container] 2026/11/28 02:22:48.123456 Entering phase BUILD\nSuccessfully tagged app:1\n"), true).unwrap().3;
        assert_eq!(images.len(), 1);
    }

    #[test]
    fn log_lines_wait_for_their_newline_until_the_build_ends() {
        assert_eq!(
            complete_lines(b"a\nb\r\nc", false),
            (vec!["a".into(), "b".into()], 5)
        );
        assert_eq!(
            complete_lines(b"a\nb\r\nc", true),
            (vec!["a".into(), "b".into(), "c".into()], 6)
        );
        assert_eq!(complete_lines(b"", true), (vec![], 0));
    }
}
