//! What `localbuild serve`'s web console is, apart from HTTP: its pages, its logins, its
//! buttons and the reads behind its pages. The server's `console` module is the HTTP side
//! (routes, cookies and headers in, responses out) and calls this crate.
//!
//! * [`pages`]: the HTML (maud, pure: values in, markup out); [`ansi`] a log line's SGR
//!   escapes as spans; [`asset`] the stylesheet and script compiled in.
//! * [`session`]: the logins, session tokens and CSRF tokens, the same-origin rule every
//!   `POST` passes; [`throttle`]: failed logins per client address (pure, times passed in).
//! * [`action`]: a button's form read into one typed API operation ([`action::Action`], a
//!   whitelist), so a button can do nothing the API cannot.
//! * [`reads`]: the data of the build pages, straight from the build service and the history
//!   (one SQLite page of builds, the end of a log through its index, reports, artifacts).
//!
//! No axum, bollard, clap or rusqlite here.

pub mod action;
pub mod ansi;
pub mod pages;
pub mod reads;
pub mod session;
pub mod throttle;

pub use maud::Markup;

/// What a path segment or query value keeps as is: letters, digits and `-_.~`.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment (or query value), percent-encoded.
pub fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// The console page of a build, as a path (`/builds/<id>`).
pub fn build_path(id: &str) -> String {
    format!("/builds/{}", encode(id))
}

/// The console page of a build, as an absolute address on `addr` (`Build.logs.deepLink`, a
/// pipeline action's `externalExecutionUrl`).
pub fn build_url(addr: std::net::SocketAddr, id: &str) -> String {
    format!("http://{addr}{}", build_path(id))
}

/// The console page of a batch, as a path.
pub fn batch_path(id: &str) -> String {
    format!("/batches/{}", encode(id))
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// A compiled-in asset by name: its content type and body.
pub fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "console.css" => Some(("text/css; charset=utf-8", CSS)),
        "console.js" => Some(("text/javascript; charset=utf-8", JS)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_encode_their_ids() {
        assert_eq!(build_path("web:1"), "/builds/web%3A1");
        assert_eq!(
            build_url("127.0.0.1:4599".parse().unwrap(), "a b/c"),
            "http://127.0.0.1:4599/builds/a%20b%2Fc"
        );
        assert_eq!(batch_path("web:x"), "/batches/web%3Ax");
        assert!(asset("console.js").is_some());
        assert!(asset("../Cargo.toml").is_none());
    }
}
