//! A located problem in a buildspec, rendered like a compiler diagnostic.

/// Error or warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
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
    ///
    /// The column counts characters; a line that is not valid UTF-8 is shown lossily.
    pub fn render(&self, file: &str, source: &[u8]) -> String {
        let mut out = format!(
            "{file}:{}:{}: {}: {}\n",
            self.line,
            self.column,
            self.severity.as_str(),
            self.message
        );
        if self.line == 0 {
            return out;
        }
        let Some(raw) = source.split(|b| *b == b'\n').nth(self.line - 1) else {
            return out;
        };
        let text = String::from_utf8_lossy(raw);
        let text = text.trim_end_matches('\r').trim_start_matches('\u{feff}');
        // Keep very long lines readable: at most 200 characters around the column.
        let chars: Vec<char> = text.chars().collect();
        let col = self.column.max(1) - 1;
        let start = col.saturating_sub(100);
        let end = (start + 200).min(chars.len());
        let shown: String = chars[start.min(end)..end]
            .iter()
            .map(|c| {
                if c.is_control() && *c != '\t' {
                    ' '
                } else {
                    *c
                }
            })
            .collect();
        let pad: String = chars[start.min(end)..col.min(end)]
            .iter()
            .map(|c| if *c == '\t' { '\t' } else { ' ' })
            .collect();
        let gutter = self.line.to_string().len();
        out.push_str(&format!("{:gutter$} |\n", ""));
        out.push_str(&format!("{} | {shown}\n", self.line));
        out.push_str(&format!("{:gutter$} | {pad}^\n", ""));
        out
    }
}

/// 1-based line and column just after `prefix` (the position of the next character).
pub fn line_col(prefix: &[u8]) -> (usize, usize) {
    let line = prefix.iter().filter(|b| **b == b'\n').count() + 1;
    let last = prefix
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(prefix, |i| &prefix[i + 1..]);
    let column = String::from_utf8_lossy(last).chars().count() + 1;
    (line, column)
}
