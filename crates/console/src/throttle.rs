//! Login throttling for the console (with `--credentials`): a client address that failed
//! [`MAX_FAILURES`] logins within [`WINDOW`] is refused (429) until its oldest failure in the
//! window is older than that, whatever it sends, a right secret included. Pure: the caller
//! passes the time, so the rule is tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failed logins a client address may have within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (the oldest are forgotten first when over).
const MAX_CLIENTS: usize = 10_000;

/// Recent failed logins per client address.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

impl LoginThrottle {
    /// `None`: `who` may try a login now; `Some(wait)`: refused, try again after `wait`.
    pub fn check(&mut self, who: IpAddr, now: Instant) -> Option<Duration> {
        let recent = self.recent(who, now)?;
        if recent.len() < MAX_FAILURES {
            return None;
        }
        let oldest = *recent.front()?;
        Some((oldest + WINDOW).saturating_duration_since(now))
    }

    /// `who` gave a wrong key or secret at `now`.
    pub fn failed(&mut self, who: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_CLIENTS {
            self.failures.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < WINDOW)
            });
        }
        if self.failures.len() < MAX_CLIENTS || self.failures.contains_key(&who) {
            self.failures.entry(who).or_default().push_back(now);
        }
    }

    /// `who` logged in: its failures are forgiven.
    pub fn succeeded(&mut self, who: IpAddr) {
        self.failures.remove(&who);
    }

    /// `who`'s failures within the window before `now` (older ones are dropped).
    fn recent(&mut self, who: IpAddr, now: Instant) -> Option<&VecDeque<Instant>> {
        let times = self.failures.get_mut(&who)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(&who);
            return None;
        }
        self.failures.get(&who)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_a_minute_then_refused_until_the_first_is_a_minute_old() {
        let mut t = LoginThrottle::default();
        let me: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        for i in 0..5 {
            assert_eq!(t.check(me, at(i)), None, "attempt {}", i + 1);
            t.failed(me, at(i));
        }
        // The sixth attempt, a second after the fifth failure: wait until the first is 60 s old.
        assert_eq!(t.check(me, at(5)), Some(Duration::from_secs(55)));
        assert_eq!(t.check(me, at(59)), Some(Duration::from_secs(1)));
        // Another address is not affected.
        assert_eq!(t.check(other, at(5)), None);
        // At 60 s the first failure leaves the window: one more try.
        assert_eq!(t.check(me, at(60)), None);
        t.failed(me, at(60));
        assert_eq!(t.check(me, at(60)), Some(Duration::from_secs(1)));
        assert_eq!(t.check(me, at(61)), None);
        // A success forgives.
        t.succeeded(me);
        assert_eq!(t.check(me, at(62)), None);
        for i in 0..4 {
            t.failed(me, at(70 + i));
        }
        assert_eq!(t.check(me, at(75)), None);
    }

    #[test]
    fn old_failures_are_forgotten() {
        let mut t = LoginThrottle::default();
        let start = Instant::now();
        for i in 0..MAX_CLIENTS as u32 {
            t.failed(IpAddr::from(i.to_be_bytes()), start);
        }
        let later = start + WINDOW;
        t.failed([127, 0, 0, 1].into(), later);
        assert_eq!(t.failures.len(), 1);
    }
}
