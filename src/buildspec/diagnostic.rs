//! A located problem in a buildspec, rendered like a compiler diagnostic.

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem: 1-based line and column (0 when unknown) and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    /// `FILE:LINE:COLUMN: error: message`, the source line and a caret under the column.
    pub fn render(&self, file: &str, source: &[u8]) -> String {
        let _ = (file, source);
        todo!("issue 2")
    }
}
