//! The build queue, as pure bookkeeping: a FIFO of waiting builds in front of the engine, a
//! server-wide slot count (`--max-concurrent-builds`) and per-project limits (a project's
//! `concurrentBuildLimit`). The server asks [`Queue::admit`] which builds may start now, and
//! calls [`Queue::finished`] when a running build ends; what starting means is its business.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, PartialEq, Eq)]
struct Waiting {
    id: String,
    project: String,
    limit: Option<usize>,
}

/// Waiting and running builds.
#[derive(Debug, Default)]
pub struct Queue {
    max: usize,
    waiting: VecDeque<Waiting>,
    /// Running build id → project.
    running: HashMap<String, String>,
}

impl Queue {
    /// A queue that runs at most `max` builds at once (at least one).
    pub fn new(max: usize) -> Queue {
        Queue {
            max: max.max(1),
            ..Queue::default()
        }
    }

    /// Add a build at the end of the queue.
    pub fn push(&mut self, id: &str, project: &str, limit: Option<usize>) {
        self.waiting.push_back(Waiting {
            id: id.to_owned(),
            project: project.to_owned(),
            limit,
        });
    }

    fn running_in(&self, project: &str) -> usize {
        self.running.values().filter(|p| *p == project).count()
    }

    /// The builds that may start now, in queue order; they count as running from here on.
    /// A build whose project is at its limit waits without holding up other projects.
    pub fn admit(&mut self) -> Vec<String> {
        let mut started = vec![];
        let mut i = 0;
        while i < self.waiting.len() && self.running.len() < self.max {
            let w = &self.waiting[i];
            if w.limit
                .is_some_and(|l| self.running_in(&w.project) >= l.max(1))
            {
                i += 1;
                continue;
            }
            if let Some(w) = self.waiting.remove(i) {
                self.running.insert(w.id.clone(), w.project);
                started.push(w.id);
            }
        }
        started
    }

    /// A running build ended: its slot is free.
    pub fn finished(&mut self, id: &str) {
        self.running.remove(id);
    }

    /// Take a waiting build out of the queue (it was stopped); false if it was not waiting.
    pub fn cancel(&mut self, id: &str) -> bool {
        let before = self.waiting.len();
        self.waiting.retain(|w| w.id != id);
        self.waiting.len() != before
    }

    pub fn is_waiting(&self, id: &str) -> bool {
        self.waiting.iter().any(|w| w.id == id)
    }

    /// Every waiting build's id.
    pub fn waiting(&self) -> Vec<String> {
        self.waiting.iter().map(|w| w.id.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_limit_holds_builds_back_in_order() {
        let mut q = Queue::new(1);
        q.push("a:1", "a", None);
        q.push("a:2", "a", None);
        assert_eq!(q.admit(), ["a:1"]);
        assert_eq!(q.admit(), Vec::<String>::new());
        assert!(q.is_waiting("a:2"));
        q.finished("a:1");
        assert_eq!(q.admit(), ["a:2"]);
        assert!(!q.is_waiting("a:2"));
    }

    #[test]
    fn a_project_limit_does_not_block_other_projects() {
        let mut q = Queue::new(4);
        q.push("a:1", "a", Some(1));
        q.push("a:2", "a", Some(1));
        q.push("b:1", "b", None);
        assert_eq!(q.admit(), ["a:1", "b:1"]);
        q.finished("b:1");
        assert!(q.admit().is_empty());
        q.finished("a:1");
        assert_eq!(q.admit(), ["a:2"]);
    }

    #[test]
    fn a_cancelled_build_never_starts() {
        let mut q = Queue::new(1);
        q.push("a:1", "a", None);
        q.push("a:2", "a", None);
        assert_eq!(q.admit(), ["a:1"]);
        assert!(q.cancel("a:2"));
        assert!(!q.cancel("a:2"));
        q.finished("a:1");
        assert!(q.admit().is_empty());
        assert_eq!(Queue::new(0).max, 1);
    }
}
