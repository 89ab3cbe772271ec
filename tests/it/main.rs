//! Integration tests: one module per area; each runs the real `localbuild` or the library.

mod artifacts;
mod batch;
mod cli_completions;
mod cli_config;
mod cli_list;
mod cli_output;
mod cli_plan;
mod cli_validate;
mod console;
mod corpus;
mod debug;
mod docker_push;
mod engine_api;
mod env_secrets;
mod full_disk;
mod git_sources;
mod harness;
mod history;
mod hostile;
mod pipeline;
mod registry;
mod run_build;
mod runtimes;
mod serve;
mod util;
