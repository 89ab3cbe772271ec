//! The build engine: runs one build from a request, reports through events, ends in a record.

pub mod log;
pub mod machine;
pub mod record;
pub mod shell;
