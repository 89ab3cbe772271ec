//! The dry-run plan: what a build of a validated buildspec would do, without Docker.
//!
//! Pure: built from a [`Buildspec`] and rendered as text or JSON by the CLI. Secret sources
//! appear by reference, never by value.

use crate::buildspec::Buildspec;

/// What a build would do (issue 2 fills this in).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {}

pub fn plan(buildspec: &Buildspec) -> Plan {
    let _ = buildspec;
    Plan {}
}
