//! `localbuild serve` driven by the real `aws` CLI: a real server process on a free port, a
//! temporary `LOCALBUILD_HOME`, real Docker builds on the busybox test image (the client is
//! `crate::api`). Conditions are awaited by bounded polling of the API, never by sleeping.
//! One module per concept: builds, batches, sources, and the API's errors and shapes.

mod batches;
mod builds;
mod errors;
mod sources;

pub(crate) use crate::api::{IMAGE, Serve, no_source, phase, phases};
pub(crate) use crate::harness::eventually;
pub(crate) use crate::util::{containers_of, git};
pub(crate) use serde_json::{Value, json};
pub(crate) use std::io::{Read, Write};
pub(crate) use std::process::Command;
pub(crate) use std::time::Duration;
