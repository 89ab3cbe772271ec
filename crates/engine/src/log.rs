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

/// How many bytes of a line [`agent_time`] looks at: `[Container] ` and the timestamp.
pub const AGENT_PREFIX: usize = 38;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The time of an agent line (its first [`AGENT_PREFIX`] bytes suffice), in ms since the epoch.
pub fn agent_time(line: &[u8]) -> Option<i64> {
    let ts = line.strip_prefix(b"[Container] ")?.get(..26)?;
    let sep_ok =
        ts[4] == b'/' && ts[7] == b'/' && ts[10] == b' ' && ts[13] == b':' && ts[16] == b':';
    if !sep_ok || ts[19] != b'.' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let digits = ts.get(r)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let days = days_from_civil(n(0..4)?, n(5..7)?, n(8..10)?);
    let secs = days * 86_400 + n(11..13)? * 3600 + n(14..16)? * 60 + n(17..19)?;
    Some(secs * 1000 + n(20..26)? / 1000)
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
    fn agent_lines_carry_their_time() {
        let line = agent_line(
            OffsetDateTime::from_unix_timestamp_nanos(1_796_063_520_123_456_000).unwrap(),
            "Entering phase BUILD",
        );
        assert_eq!(agent_time(line.as_bytes()), Some(1_796_063_520_123));
        assert_eq!(
            agent_time(&line.as_bytes()[..AGENT_PREFIX]),
            Some(1_796_063_520_123)
        );
        assert_eq!(agent_time(b"hello"), None);
        assert_eq!(agent_time(b"[Container] 2026/11/30 18:32:00.12345x"), None);
    }

    #[test]
    fn empty_context_has_two_spaces_and_a_trailing_space() {
        assert_eq!(
            context_message("", ""),
            "Phase context status code:  Message: "
        );
    }
}
