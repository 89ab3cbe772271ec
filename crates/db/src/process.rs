//! Process liveness helpers (Linux `/proc`).
//!
//! A pid alone does not identify a process because pids are reused. Builds
//! therefore record `(pid, start token)`, where the token is the process
//! start time in clock ticks since boot (field 22 of `/proc/<pid>/stat`).
//! A process is alive when `/proc/<pid>/stat` exists, is not a zombie, and
//! reports the same start token.
//!
//! On platforms without `/proc` the token is `0` and [`process_alive`]
//! conservatively answers `true` (builds are never reported as orphans).

/// Pid and start token of the current process.
pub fn this_process() -> (u32, u64) {
    let pid = std::process::id();
    (pid, process_start_token(pid).unwrap_or(0))
}

/// Start token of `pid`, or `None` if no such (non-zombie) process exists or
/// `/proc` is unavailable.
pub fn process_start_token(pid: u32) -> Option<u64> {
    match read_stat(pid) {
        Stat::Running(start) => Some(start),
        Stat::Gone | Stat::Unknown => None,
    }
}

/// True if process `pid` exists, is not a zombie, and its start token equals
/// `start` (i.e. it is the same process that recorded the token).
pub fn process_alive(pid: u32, start: u64) -> bool {
    match read_stat(pid) {
        Stat::Running(actual) => actual == start,
        Stat::Gone => false,
        // Cannot tell (no /proc, permission problem, unexpected format):
        // assume alive so that a live build is never reaped by mistake.
        Stat::Unknown => true,
    }
}

enum Stat {
    Running(u64),
    Gone,
    Unknown,
}

fn read_stat(pid: u32) -> Stat {
    if pid == 0 {
        return Stat::Gone;
    }
    if !std::path::Path::new("/proc/self/stat").exists() {
        return Stat::Unknown;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => match parse_stat(&text) {
            Some((state, _)) if state == 'Z' || state == 'X' => Stat::Gone,
            Some((_, start)) => Stat::Running(start),
            None => Stat::Unknown,
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stat::Gone,
        // ESRCH: the process vanished between open and read.
        Err(e) if e.raw_os_error() == Some(3) => Stat::Gone,
        Err(_) => Stat::Unknown,
    }
}

/// Parses `(state, starttime)` from the text of `/proc/<pid>/stat`. The
/// command name (field 2) is in parentheses and may itself contain spaces or
/// parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // Field 3 is the state; field 22 is the start time (19 fields later).
    let state = fields.next()?.chars().next()?;
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_handles_odd_comm() {
        let line = "1234 (we ird) (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    1 2 0 0 20 0 1 0 987654 12345678 100 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 987654)));
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn self_is_alive() {
        let (pid, start) = this_process();
        assert_eq!(pid, std::process::id());
        assert!(start > 0);
        assert!(process_alive(pid, start));
        assert!(
            !process_alive(pid, start + 1),
            "token mismatch = other process"
        );
        assert!(!process_alive(0, start));
        assert_eq!(process_start_token(pid), Some(start));
    }
}
