//! localbuild: run AWS CodeBuild buildspecs on your own machine, with CodeBuild's semantics.
//!
//! The library is the engine; the `localbuild` binary is its first consumer. See
//! `ARCHITECTURE.md` for the map. In short: [`buildspec`] turns YAML into a validated model,
//! [`plan`] describes what a build would do, [`engine`] runs a build from a request and reports
//! through events into a record, and [`docker`] is the only module that talks to Docker.
#![forbid(unsafe_code)]

pub mod artifacts;
pub mod buildspec;
pub mod docker;
pub mod engine;
pub mod plan;
pub mod reports;
pub mod secrets;
