//! `localbuild validate FILE...`: check buildspecs and print compiler-style diagnostics.
//!
//! Exit 0 when every file is valid, 1 when any is not (or cannot be read). Problems go to
//! stderr as `FILE:LINE:COLUMN: error: message` plus the source line and a caret; `FILE: ok`
//! goes to stdout for each valid file. Warnings never change the exit code.

use super::error::CliError;
use super::exit;
use localbuild_buildspec::{self as buildspec, Diagnostic};
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn run(files: &[PathBuf]) -> Result<u8, CliError> {
    let mut code = exit::SUCCESS;
    for file in files {
        if !check(file)? {
            code = exit::FAILURE;
        }
    }
    Ok(code)
}

/// Validate one file, print its diagnostics; true when it is valid.
fn check(path: &Path) -> Result<bool, CliError> {
    let name = path.display().to_string();
    let source = match std::fs::read(path) {
        Ok(s) => s,
        Err(e) => {
            // One file's problem; the others are still checked.
            let _ = writeln!(std::io::stderr(), "{name}: error: {e}");
            return Ok(false);
        }
    };
    match buildspec::parse(&source) {
        Ok(parsed) => {
            print_all(&name, &source, &parsed.warnings);
            super::out::print(format!("{name}: ok\n"))?;
            Ok(true)
        }
        Err(invalid) => {
            let mut all: Vec<&Diagnostic> = invalid
                .errors
                .iter()
                .chain(invalid.warnings.iter())
                .collect();
            all.sort_by_key(|d| (d.line, d.column));
            print_all(&name, &source, all);
            Ok(false)
        }
    }
}

/// Print diagnostics to stderr in source order.
pub fn print_all<'a>(
    name: &str,
    source: &[u8],
    diagnostics: impl IntoIterator<Item = &'a Diagnostic>,
) {
    let stderr = std::io::stderr();
    let mut err = stderr.lock();
    for d in diagnostics {
        let _ = err.write_all(d.render(name, source).as_bytes());
    }
}
