//! The console's sessions: logins with one of `--credentials`' keys (throttled per client
//! address, [`throttle`]), the session token its cookie carries (HttpOnly, SameSite=Strict),
//! the CSRF token every form carries and the same-origin rule every `POST` passes. Pure state
//! and rules: the server reads cookies and headers and passes their values in, with the time.

use crate::pages::Viewer;
use crate::{encode, throttle};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a console session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The session cookie's name.
pub const COOKIE: &str = "localbuild_session";

/// The console's logged-in sessions and the token of its forms without credentials.
pub struct Sessions {
    anonymous_csrf: String,
    map: Mutex<HashMap<String, Session>>,
    logins: Mutex<throttle::LoginThrottle>,
}

struct Session {
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

/// What a login attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// Logged in: the new session's token (the cookie's value).
    Accepted(String),
    /// Unknown access key id or wrong secret.
    Refused,
    /// Too many failures from this address; try again after the wait (whole seconds, ≥ 1).
    Throttled { secs: u64, message: String },
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Sessions {
    /// Who is looking: `None` when a login is needed first. `login_required`: the server has
    /// `--credentials`; `token`: the session cookie's value.
    pub fn viewer(
        &self,
        login_required: bool,
        token: Option<&str>,
        now: Instant,
    ) -> Option<Viewer> {
        if !login_required {
            return Some(Viewer {
                user: None,
                csrf: self.anonymous_csrf.clone(),
            });
        }
        let token = token?;
        let mut map = lock(&self.map);
        map.retain(|_, s| now.saturating_duration_since(s.created) < SESSION_TTL);
        map.get(token).map(|s| Viewer {
            user: Some(s.user.clone()),
            csrf: s.csrf.clone(),
        })
    }

    /// A login of `user` from `who` at `now`; `verify` checks the key and secret, and is not
    /// asked while `who` is throttled (a right secret is refused then too).
    pub fn login(
        &self,
        who: IpAddr,
        now: Instant,
        user: &str,
        verify: impl FnOnce() -> bool,
    ) -> Login {
        if let Some(wait) = lock(&self.logins).check(who, now) {
            let secs = wait.as_secs().max(1);
            let message = format!(
                "Too many failed logins from {who}: {} in the last minute. Try again in {secs} s.",
                throttle::MAX_FAILURES
            );
            return Login::Throttled { secs, message };
        }
        if !verify() {
            lock(&self.logins).failed(who, now);
            return Login::Refused;
        }
        lock(&self.logins).succeeded(who);
        let token = random_token();
        lock(&self.map).insert(
            token.clone(),
            Session {
                user: user.to_owned(),
                csrf: random_token(),
                created: now,
            },
        );
        Login::Accepted(token)
    }

    /// The session of `token` ends.
    pub fn logout(&self, token: &str) {
        lock(&self.map).remove(token);
    }
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The `Set-Cookie` value of a new session.
pub fn session_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that ends the session cookie.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie_value<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<String> {
    headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// Equal strings, compared in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The headers of a `POST` that say where it comes from.
#[derive(Debug, Default, Clone, Copy)]
pub struct Provenance<'a> {
    pub sec_fetch_site: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// A `POST` from a page of this server: not cross-site by `Sec-Fetch-Site`, and an `Origin`
/// (when sent) naming this host.
pub fn same_origin(p: Provenance<'_>) -> bool {
    if let Some(site) = p.sec_fetch_site
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (p.origin, p.host) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin == format!("http://{host}"),
        (Some(_), None) => false,
    }
}

/// A local path to go back to (never another site).
pub fn local_path(p: Option<&str>) -> String {
    match p {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_owned(),
        _ => "/builds".to_owned(),
    }
}

/// The login page's address, coming back to `uri` afterwards.
pub fn login_path(uri: &str) -> String {
    format!("/login?next={}", encode(uri))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_from_other_sites_are_refused() {
        let host = Some("127.0.0.1:4599");
        let p = |sec_fetch_site, origin| Provenance {
            sec_fetch_site,
            origin,
            host,
        };
        assert!(same_origin(p(None, None)));
        assert!(same_origin(p(None, Some("http://127.0.0.1:4599"))));
        assert!(same_origin(p(Some("same-origin"), None)));
        assert!(!same_origin(p(None, Some("http://evil.example"))));
        assert!(!same_origin(p(None, Some("null"))));
        assert!(!same_origin(p(Some("cross-site"), None)));
        assert!(!same_origin(Provenance {
            origin: Some("http://127.0.0.1:4599"),
            ..Provenance::default()
        }));
    }

    #[test]
    fn only_local_paths_are_followed_back() {
        assert_eq!(local_path(Some("/pipelines/p")), "/pipelines/p");
        assert_eq!(local_path(Some("//evil.example/")), "/builds");
        assert_eq!(local_path(Some("http://evil.example/")), "/builds");
        assert_eq!(local_path(Some("/\\evil.example")), "/builds");
        assert_eq!(local_path(None), "/builds");
        assert_eq!(login_path("/builds?x=1"), "/login?next=%2Fbuilds%3Fx%3D1");
    }

    #[test]
    fn cookies_are_found_by_name_among_headers() {
        let headers = ["a=1; localbuild_session=tok", "b=2"];
        assert_eq!(cookie_value(headers, COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie_value(headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie_value(headers, "c"), None);
    }

    #[test]
    fn a_session_is_made_by_a_right_login_and_ends_by_logout_or_age() {
        let s = Sessions::default();
        let me: IpAddr = [127, 0, 0, 1].into();
        let now = Instant::now();
        // Without credentials everyone views, with the server's own token.
        let anon = s.viewer(false, None, now).unwrap();
        assert_eq!(anon.user, None);
        assert_eq!(anon.csrf.len(), 64);
        assert!(s.viewer(true, None, now).is_none());
        assert_eq!(s.login(me, now, "AKID", || false), Login::Refused);
        let Login::Accepted(token) = s.login(me, now, "AKID", || true) else {
            panic!("a right login is accepted");
        };
        let v = s.viewer(true, Some(&token), now).unwrap();
        assert_eq!(v.user.as_deref(), Some("AKID"));
        assert_ne!(v.csrf, anon.csrf);
        assert!(s.viewer(true, Some("forged"), now).is_none());
        assert!(s.viewer(true, Some(&token), now + SESSION_TTL).is_none());
        let Login::Accepted(token) = s.login(me, now, "AKID", || true) else {
            panic!("a right login is accepted");
        };
        s.logout(&token);
        assert!(s.viewer(true, Some(&token), now).is_none());
    }

    #[test]
    fn a_throttled_address_is_refused_without_checking_its_secret() {
        let s = Sessions::default();
        let me: IpAddr = [10, 0, 0, 9].into();
        let now = Instant::now();
        for _ in 0..throttle::MAX_FAILURES {
            assert_eq!(s.login(me, now, "AKID", || false), Login::Refused);
        }
        let later = now + Duration::from_millis(1500);
        match s.login(me, later, "AKID", || panic!("not asked while throttled")) {
            Login::Throttled { secs, message } => {
                assert_eq!(secs, 58);
                assert!(
                    message.contains("Too many failed logins from 10.0.0.9: 5"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            s.login(me, now + throttle::WINDOW, "AKID", || true),
            Login::Accepted(_)
        ));
    }
}
