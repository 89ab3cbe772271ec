//! Integration tests: one module per area; each runs the real `localbuild` or the library.

mod artifacts;
mod cli_plan;
mod cli_validate;
mod corpus;
mod hostile;
mod registry;
mod util;
