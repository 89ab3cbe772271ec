//! The HTTP side of the web console of `localbuild serve` (what the console *is*, its pages,
//! sessions, buttons and reads, is `localbuild_console`): routes on the API's port (`GET`; the
//! API is `POST /`), cookies and headers turned into that crate's inputs, its markup turned
//! into responses, the log streamed as Server-Sent Events.
//!
//! * Pages: `/builds` (paged from the history, newest first, one SQLite page per request),
//!   `/builds/{id}` (phase timeline, log, variables, reports, artifacts, Stop / Retry),
//!   `/builds/{id}/log` (the raw log), `/builds/{id}/log/events` (the log's new lines as
//!   Server-Sent Events while the build runs), `/builds/{id}/artifacts/{path}` (downloads),
//!   `/projects`, `/batches`, `/batches/{id}`, `/pipelines`, `/pipelines/{name}`, `/roles`,
//!   `/ecs`.
//! * Data comes from where the API's answers come from: builds and batches from the build
//!   service and the history ([`localbuild_console::reads`]), pipelines from the functions
//!   behind CodePipeline's answers ([`pipeline::pipelines_in`], [`pipeline::executions_in`],
//!   [`pipeline::pipeline_state_in`]), ECS services as DescribeServices reads them; so a page
//!   shows what `aws` would. Buttons are forms posting to `/console/action`, read into one
//!   typed [`Action`] and carried out as the console by [`run`] with the functions the API's
//!   handlers use (no JSON inside the process).
//! * Sessions ([`localbuild_console::session`]): with `--credentials` every page needs a
//!   login; the session cookie is HttpOnly and SameSite=Strict; failed logins are throttled
//!   per client address (5 a minute, then 429). Every form carries a CSRF token and every
//!   `POST` must come from this origin (`Origin`, `Sec-Fetch-Site`).

use crate::error::ApiError;
use crate::{AppState, Ctx, batch, codebuild, pipeline};
use axum::Router;
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use localbuild_console::action::{Action, STOP_REASON};
use localbuild_console::pages::{self, EcsService, RoleView, Viewer};
use localbuild_console::session::{self, Login, Provenance, local_path, login_path};
use localbuild_console::{Markup, reads};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub(crate) use localbuild_console::session::Sessions;

/// The most a log stream reads at once.
const TAIL_CHUNK: u64 = 1 << 20;
/// Executions the pipeline page lists (the newest).
const PIPELINE_EXECUTIONS_SHOWN: usize = 20;

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
pub(crate) fn build_url(addr: SocketAddr, id: &str) -> String {
    localbuild_console::build_url(addr, id)
}

fn html(status: StatusCode, markup: Markup) -> Response {
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

/// The request's headers that say where a `POST` comes from.
fn provenance(headers: &HeaderMap) -> Provenance<'_> {
    let get = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    Provenance {
        sec_fetch_site: get(header::HeaderName::from_static("sec-fetch-site")),
        origin: get(header::ORIGIN),
        host: get(header::HOST),
    }
}

/// A `POST` from a page of this server ([`session::same_origin`] over the request's headers).
fn same_origin(headers: &HeaderMap) -> bool {
    session::same_origin(provenance(headers))
}

/// The session cookie's value.
fn session_token(headers: &HeaderMap) -> Option<String> {
    let values = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    session::cookie_value(values, session::COOKIE)
}

/// Who is looking: `None` when a login is needed first.
fn viewer(state: &AppState, headers: &HeaderMap) -> Option<Viewer> {
    let token = session_token(headers);
    state.console.viewer(
        state.credentials.is_some(),
        token.as_deref(),
        Instant::now(),
    )
}

fn login_redirect(uri: &str) -> Response {
    Redirect::to(&login_path(uri)).into_response()
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
    match localbuild_console::asset(&name) {
        Some((kind, body)) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "max-age=300"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

// ---------------------------------------------------------------------------------------
// Sessions

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(State(state): State<Arc<AppState>>, Query(q): Query<NextQuery>) -> Response {
    let next = local_path(q.next.as_deref());
    if state.credentials.is_none() {
        return Redirect::to(&next).into_response();
    }
    html(StatusCode::OK, pages::login(&next, None))
}

#[derive(Deserialize)]
struct LoginForm {
    access_key_id: String,
    secret_access_key: String,
    next: Option<String>,
}

async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = local_path(form.next.as_deref());
    let Some(creds) = &state.credentials else {
        return Redirect::to(&next).into_response();
    };
    if !same_origin(&headers) {
        return forbidden("This form was posted from another site.");
    }
    let user = form.access_key_id.trim();
    let verify = || {
        creds
            .secret(user)
            .is_some_and(|s| session::same_secret(s, form.secret_access_key.trim()))
    };
    match state.console.login(peer.ip(), Instant::now(), user, verify) {
        Login::Throttled { secs, message } => {
            let mut response = html(
                StatusCode::TOO_MANY_REQUESTS,
                pages::login(&next, Some(&message)),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
            response
        }
        Login::Refused => html(
            StatusCode::UNAUTHORIZED,
            pages::login(&next, Some("Unknown access key id or wrong secret.")),
        ),
        Login::Accepted(token) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, session::session_cookie(&token)),
                (header::LOCATION, next),
            ],
        )
            .into_response(),
    }
}

async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return forbidden("This form was posted from another site.");
    }
    if let Some(token) = session_token(&headers) {
        state.console.logout(&token);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, session::cleared_cookie()),
            (header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// Buttons: one API operation each, run as the console (the server's own region)

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
    if !form
        .get("csrf")
        .is_some_and(|t| session::same_secret(t, &v.csrf))
    {
        return forbidden("The form's token is missing or stale: reload the page and try again.");
    }
    let action = match Action::from_form(&form) {
        Ok(a) => a,
        Err(e) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::message_page(Some(&v), "Cannot do that", &e),
            );
        }
    };
    let ctx = Ctx {
        state: state.clone(),
        region: state.region.clone(),
    };
    match run(&ctx, &action).await {
        Ok(started) => Redirect::to(&action.page_after(started.as_deref(), back)).into_response(),
        Err(e) => html(
            StatusCode::CONFLICT,
            pages::message_page(
                Some(&v),
                &format!("{} failed", action.operation()),
                &format!("{}: {e}", e.aws_type()),
            ),
        ),
    }
}

/// Carry out a button's action as the console, with the functions the API's handlers use
/// (typed; no JSON inside the process): the id of the build or batch a retry started.
async fn run(ctx: &Ctx, action: &Action) -> Result<Option<String>, ApiError> {
    match action {
        Action::StopBuild { id } => codebuild::stop(ctx, id).await.map(|_| None),
        Action::RetryBuild { id } => {
            codebuild::retry(ctx, id, None).map(|s| Some(s.ticket.id().to_owned()))
        }
        Action::StopBuildBatch { id } => batch::stop_batch(ctx, id).await.map(|_| None),
        Action::RetryBuildBatch { id } => {
            // A batch is retried under its own id.
            let kind = localbuild_engine::RetryType::FailedBuilds;
            batch::retry_batch(ctx, id, None, kind).await?;
            Ok(Some(batch::batch_id(id)))
        }
        Action::StartPipelineExecution { pipeline } => {
            pipeline::start_execution(ctx, pipeline, vec![]).map(|_| None)
        }
        Action::StopPipelineExecution {
            pipeline,
            execution,
            abandon,
        } => pipeline::stop_execution(
            ctx,
            pipeline,
            execution,
            *abandon,
            Some(STOP_REASON.to_owned()),
        )
        .map(|_| None),
        Action::PutApprovalResult {
            pipeline,
            stage,
            action,
            token,
            approved,
            summary,
        } => pipeline::put_approval(ctx, pipeline, stage, action, token, *approved, summary)
            .map(|_| None),
        Action::SetTransition {
            pipeline,
            stage,
            enable,
            reason,
        } => pipeline::set_transition(
            ctx,
            pipeline,
            stage,
            "Inbound",
            (!enable).then_some(reason.as_str()),
        )
        .map(|_| None),
    }
}

// ---------------------------------------------------------------------------------------
// Builds

async fn builds_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Query(q): Query<reads::BuildsQuery>,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let began = Instant::now();
    match reads::builds_listing(&state.history, &state.builds, &state.projects, &q) {
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
    let files = tokio::task::spawn_blocking(move || reads::build_files(&read))
        .await
        .unwrap_or_default();
    let page = pages::BuildPage {
        images: &files.images,
        build: &build,
        lines: &files.lines,
        first: files.first,
        offset: files.offset,
        reports: &files.reports,
        artifacts: &files.artifacts,
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
    /// What wakes the stream when the log has nothing new (see [`Tail::wait`]).
    wake: Wake,
    /// The build, followed through the build service.
    ticket: localbuild_service::BuildTicket,
}

/// What a log stream waits on for new lines: the build's events once it runs (every line is
/// in the file before its event is published), else the end of the build.
enum Wake {
    /// Not asked yet: the build may still be queued.
    Unknown,
    Events(localbuild_engine::handle::Subscription),
    /// The build's events are over (or it never ran): only its end is left to wait for.
    End,
    /// The build has ended: what the file holds now is the whole log.
    Over,
}

impl Tail {
    /// The next event: new lines, else the end once the build is over.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Tail)> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        if self.done {
            return None;
        }
        loop {
            let complete = matches!(self.wake, Wake::Over)
                || self
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
            let (lines, used) = reads::complete_lines(&bytes, (complete && at_end) || overlong);
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
            if at_end {
                self.wait().await;
            }
        }
    }

    /// Wait until the log may have grown: the build's next event (the first wait for a queued
    /// build is for it to start), or its end. No polling.
    async fn wait(&mut self) {
        let ticket = &self.ticket;
        if matches!(self.wake, Wake::Unknown) {
            self.wake = match ticket.handle().await {
                Some(h) => Wake::Events(h.subscribe()),
                None => Wake::End,
            };
            return;
        }
        match &mut self.wake {
            Wake::Events(events) => {
                if events.next().await.is_none() {
                    self.wake = Wake::End;
                }
            }
            Wake::End | Wake::Unknown => {
                ticket.finished().await;
                self.wake = Wake::Over;
            }
            Wake::Over => {}
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
    let ticket = state.builds.ticket(&id);
    let tail = Tail {
        state,
        id,
        path,
        offset,
        line,
        done: false,
        wake: Wake::Unknown,
        ticket,
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
    match reads::artifact_file(&state.builds, &id, &path) {
        Some(f) if f.is_file() => match tokio::fs::read(&f).await {
            Ok(bytes) => {
                let name = std::path::Path::new(&path)
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
// Projects, roles and batches

async fn projects_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    html(
        StatusCode::OK,
        pages::projects(&v, &reads::projects(&state.projects)),
    )
}

/// IAM's roles as the stand-in keeps them (what `aws iam list-roles` answers; not enforced).
async fn roles_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let roles: Vec<RoleView> = state
        .aws
        .iam
        .roles(None)
        .unwrap_or_default()
        .into_iter()
        .map(|r| RoleView {
            arn: r.arn(&state.account_id),
            inline: r.inline.into_keys().collect(),
            name: r.name,
            assume_role_policy: r.assume_role_policy,
            attached: r.attached,
            created: r.created,
        })
        .collect();
    html(StatusCode::OK, pages::roles(&v, &roles))
}

async fn batches_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let batches = reads::batches(&state.history, &state.builds);
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
    let id = reads::batch_id(&id);
    match state.builds.batch_record(id) {
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
// Pipelines and ECS

async fn pipelines_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let db = state.history.db();
    let rows: Vec<(String, Value)> = pipeline::pipelines_in(db)
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .map(|name| {
            let latest = pipeline::executions_in(db, &state.account_id, name)
                .ok()
                .and_then(|all| all.into_iter().next())
                .unwrap_or(Value::Null);
            (name.to_owned(), latest)
        })
        .collect();
    html(StatusCode::OK, pages::pipelines(&v, &rows, pipeline::now()))
}

async fn pipeline_page(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(name): Path<String>,
) -> Response {
    let v = viewer_or_login!(state, headers, uri.to_string());
    let db = state.history.db();
    let declaration = match pipeline::load(db, &name) {
        Ok(Some(stored)) => stored.pipeline,
        Ok(None) => {
            let e = pipeline::not_found(&state.account_id, &name);
            return html(
                StatusCode::NOT_FOUND,
                pages::message_page(Some(&v), "No such pipeline", &e.to_string()),
            );
        }
        Err(e) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message_page(Some(&v), "No such pipeline", &e.to_string()),
            );
        }
    };
    let pipeline_state =
        pipeline::pipeline_state_in(db, &state.account_id, &name).unwrap_or(Value::Null);
    let executions: Vec<Value> = pipeline::executions_in(db, &state.account_id, &name)
        .map(|all| all.into_iter().take(PIPELINE_EXECUTIONS_SHOWN).collect())
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
        views.push(ecs_service(services::view(state.runtime.as_ref(), s).await));
    }
    html(StatusCode::OK, pages::ecs_services(&v, &views))
}

/// A service as the console's ECS page shows it.
fn ecs_service(view: crate::ecs::services::ServiceView) -> EcsService {
    let s = view.service;
    EcsService {
        image: s.task.as_ref().map(|t| t.image.clone()).unwrap_or_default(),
        address: s.task.as_ref().and_then(|t| t.address()),
        latest_event: s.events.first().map(|e| (e.created_at, e.message.clone())),
        inactive: s.status == crate::ecs::services::Status::Inactive,
        running: view.running,
        desired_count: s.desired_count,
        cluster: s.cluster,
        name: s.name,
        task_definition: s.task_definition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn the_session_cookie_is_read_among_others() {
        let mut m = HeaderMap::new();
        m.append(header::COOKIE, "theme=dark".parse().unwrap());
        m.append(
            header::COOKIE,
            "a=1; localbuild_session=tok".parse().unwrap(),
        );
        assert_eq!(session_token(&m).as_deref(), Some("tok"));
        assert_eq!(session_token(&HeaderMap::new()), None);
    }
}
