//! Buildspec parsing and validation: YAML bytes → [`Buildspec`] plus located diagnostics, and
//! the dry-run [`plan`] of what a build would do.
//!
//! Owns the located YAML tree (`raw`), the rules (`validate`) that turn it into the validated
//! model (`model`), the compiler-style rendering of problems (`diagnostic`), the plan (`plan`),
//! the batch section's expansion (`batch`), the identifier rules (`names`) and the selection of
//! `runtime-versions` (`runtimes`, with the cloud images' data in `cloud`).
//! Pure: no I/O, no Docker. Errors use CodeBuild's own wording where CodeBuild has one.
#![forbid(unsafe_code)]

pub mod batch;
pub mod cloud;
mod diagnostic;
pub mod model;
pub mod names;
pub mod plan;
pub mod raw;
pub mod runtimes;
#[cfg(test)]
mod tests;
mod validate;

pub use diagnostic::{Diagnostic, Severity};
pub use model::*;
pub use validate::{on_failure as parse_on_failure, secret_ref as parse_secret_ref};

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

/// Largest buildspec accepted (CodeBuild's own limit for inline buildspecs is far smaller).
pub const MAX_SIZE: usize = 4 * 1024 * 1024;

/// Parse and validate a buildspec. Never panics; every error carries a line and column.
///
/// Syntax errors (invalid UTF-8, YAML, duplicate keys, budget breaches) stop at the first;
/// semantic errors are collected.
pub fn parse(source: &[u8]) -> Result<Parsed, Invalid> {
    let fail = |line: usize, column: usize, message: String| Invalid {
        errors: vec![Diagnostic {
            severity: Severity::Error,
            line: line.max(1),
            column: column.max(1),
            message,
        }],
        warnings: Vec::new(),
    };
    if source.len() > MAX_SIZE {
        return Err(fail(
            1,
            1,
            format!(
                "buildspec is too large: {} bytes (at most {MAX_SIZE})",
                source.len()
            ),
        ));
    }
    let text = match std::str::from_utf8(source) {
        Ok(t) => t,
        Err(e) => {
            let good = &source[..e.valid_up_to()];
            let (line, column) = diagnostic::line_col(good);
            let byte = source.get(e.valid_up_to()).copied().unwrap_or(0);
            return Err(fail(
                line,
                column,
                format!("invalid UTF-8: byte 0x{byte:02X} is not valid UTF-8 text"),
            ));
        }
    };
    let root = raw::load(text).map_err(|e| fail(e.line, e.column, e.message))?;
    let mut ctx = validate::Ctx::default();
    let spec = validate::buildspec(&mut ctx, &root);
    match spec {
        Some(buildspec) if ctx.errors.is_empty() => Ok(Parsed {
            buildspec,
            warnings: ctx.warnings,
        }),
        _ => {
            let mut errors = ctx.errors;
            if errors.is_empty() {
                errors.push(Diagnostic {
                    severity: Severity::Error,
                    line: 1,
                    column: 1,
                    message: "invalid buildspec".to_owned(),
                });
            }
            Err(Invalid {
                errors,
                warnings: ctx.warnings,
            })
        }
    }
}
