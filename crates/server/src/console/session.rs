//! The console's sessions: login and logout with one of `--credentials`' keys, the session
//! cookie (HttpOnly, SameSite=Strict), the CSRF token every form carries and the same-origin
//! check every `POST` passes.

use super::{COOKIE, SESSION_TTL, encode, forbidden, html, pages, throttle};
use crate::{AppState, lock};
use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use pages::Viewer;
use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The console's logged-in sessions and the token of its forms without credentials.
pub(crate) struct Sessions {
    anonymous_csrf: String,
    map: Mutex<HashMap<String, Session>>,
    logins: Mutex<throttle::LoginThrottle>,
}

pub(super) struct Session {
    user: String,
    csrf: String,
    created: Instant,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            anonymous_csrf: random_token(),
            map: Mutex::default(),
            logins: Mutex::default(),
        }
    }
}

pub(super) fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub(super) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Who is looking: `None` when a login is needed first.
pub(super) fn viewer(state: &AppState, headers: &HeaderMap) -> Option<Viewer> {
    if state.credentials.is_none() {
        return Some(Viewer {
            user: None,
            csrf: state.console.anonymous_csrf.clone(),
        });
    }
    let token = cookie_value(headers, COOKIE)?;
    let mut map = lock(&state.console.map);
    map.retain(|_, s| s.created.elapsed() < SESSION_TTL);
    map.get(&token).map(|s| Viewer {
        user: Some(s.user.clone()),
        csrf: s.csrf.clone(),
    })
}

/// Equal strings, compared in time independent of where they differ.
pub(super) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// A `POST` from a page of this server: not cross-site by `Sec-Fetch-Site`, and an `Origin`
/// (when sent) naming this host.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |n: header::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    if let Some(site) = get(header::HeaderName::from_static("sec-fetch-site"))
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (get(header::ORIGIN), get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin == format!("http://{host}"),
        (Some(_), None) => false,
    }
}

/// A local path to go back to (never another site).
pub(super) fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/builds".to_owned(),
    }
}

pub(super) fn login_redirect(uri: &str) -> Response {
    Redirect::to(&format!("/login?next={}", encode(uri))).into_response()
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

pub(super) async fn login_page(
    State(state): State<Arc<AppState>>,
    Query(q): Query<NextQuery>,
) -> Response {
    let next = local_path(q.next.as_deref());
    if state.credentials.is_none() {
        return Redirect::to(&next).into_response();
    }
    html(StatusCode::OK, pages::login(&next, None))
}

#[derive(Deserialize)]
pub(super) struct LoginForm {
    access_key_id: String,
    secret_access_key: String,
    next: Option<String>,
}

pub(super) async fn login(
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
    let who = peer.ip();
    let now = Instant::now();
    if let Some(wait) = lock(&state.console.logins).check(who, now) {
        let secs = wait.as_secs().max(1);
        let message = format!(
            "Too many failed logins from {who}: {} in the last minute. Try again in {secs} s.",
            throttle::MAX_FAILURES
        );
        let mut response = html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::login(&next, Some(&message)),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        return response;
    }
    let ok = creds
        .secret(form.access_key_id.trim())
        .is_some_and(|s| same_secret(s, form.secret_access_key.trim()));
    if !ok {
        lock(&state.console.logins).failed(who, now);
        return html(
            StatusCode::UNAUTHORIZED,
            pages::login(&next, Some("Unknown access key id or wrong secret.")),
        );
    }
    lock(&state.console.logins).succeeded(who);
    let token = random_token();
    lock(&state.console.map).insert(
        token.clone(),
        Session {
            user: form.access_key_id.trim().to_owned(),
            csrf: random_token(),
            created: Instant::now(),
        },
    );
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"),
            ),
            (header::LOCATION, next),
        ],
    )
        .into_response()
}

pub(super) async fn logout(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return forbidden("This form was posted from another site.");
    }
    if let Some(token) = cookie_value(&headers, COOKIE) {
        lock(&state.console.map).remove(&token);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (
                header::SET_COOKIE,
                format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
            ),
            (header::LOCATION, "/login".to_owned()),
        ],
    )
        .into_response()
}
