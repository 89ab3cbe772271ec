//! The agent's log line format: `[Container] 2026/11/24 02:22:48.123456 <message>` (UTC).

use time::OffsetDateTime;
use time::macros::format_description;

/// Format one agent line at `at`.
pub fn agent_line(at: OffsetDateTime, message: &str) -> String {
    let fmt =
        format_description!("[year]/[month]/[day] [hour]:[minute]:[second].[subsecond digits:6]");
    let ts = at
        .to_offset(time::UtcOffset::UTC)
        .format(&fmt)
        .unwrap_or_default();
    format!("[Container] {ts} {message}")
}

/// `Phase context status code: <code> Message: <msg>` (two spaces when the code is empty).
pub fn context_message(code: &str, message: &str) -> String {
    format!("Phase context status code: {code} Message: {message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_lines_use_the_go_layout_with_microseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_795_832_568_123_456_789).unwrap();
        assert_eq!(
            agent_line(at, "Entering phase BUILD"),
            "[Container] 2026/11/28 02:22:48.123456 Entering phase BUILD"
        );
    }

    #[test]
    fn empty_context_has_two_spaces_and_a_trailing_space() {
        assert_eq!(
            context_message("", ""),
            "Phase context status code:  Message: "
        );
    }
}
