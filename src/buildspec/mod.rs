//! Buildspec parsing and validation: YAML bytes → [`Buildspec`] plus located diagnostics.
//!
//! Owns the raw serde structs (`raw`), the rules that turn them into the validated model
//! (`model`), and the compiler-style rendering of problems (`diagnostic`). Pure: no I/O,
//! no Docker. Errors use CodeBuild's own wording where CodeBuild has one.

mod diagnostic;
pub mod model;

pub use diagnostic::{Diagnostic, Severity};
pub use model::*;

/// A buildspec that passed validation, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub buildspec: Buildspec,
    pub warnings: Vec<Diagnostic>,
}

/// A buildspec that did not pass: at least one error, plus any warnings.
#[derive(Debug, Clone)]
pub struct Invalid {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Invalid {
    /// The first error's message, as CodeBuild puts it in a `YAML_FILE_ERROR` context.
    pub fn message(&self) -> &str {
        self.errors
            .first()
            .map_or("invalid buildspec", |d| d.message.as_str())
    }
}

/// Parse and validate a buildspec. Never panics; every error carries a line and column.
pub fn parse(source: &[u8]) -> Result<Parsed, Invalid> {
    let _ = source;
    todo!("issue 2: buildspec parser")
}
