//! The pure state machine of one pipeline execution: stages run in sequence, the actions of a
//! stage by `runOrder` (actions with the same `runOrder` run in parallel), a failed action
//! fails its stage and the execution, and an execution can be stopped or superseded. No I/O:
//! the executor tells the machine what happened and starts what the machine answers.

use serde::{Deserialize, Serialize};

/// `PipelineExecution.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecStatus {
    InProgress,
    Stopping,
    Stopped,
    Succeeded,
    Failed,
    Superseded,
}

impl ExecStatus {
    pub fn is_final(self) -> bool {
        !matches!(self, ExecStatus::InProgress | ExecStatus::Stopping)
    }
}

/// An action's state in one execution (`ActionExecution.status`, plus not started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActionStatus {
    NotStarted,
    InProgress,
    Succeeded,
    Failed,
    Abandoned,
}

/// One action: (stage index, action index in its stage).
pub type ActionRef = (usize, usize);

/// The machine of one execution. `run_orders[s][a]` is the `runOrder` of action `a` of stage
/// `s`.
#[derive(Debug, Clone)]
pub struct Machine {
    run_orders: Vec<Vec<u32>>,
    actions: Vec<Vec<ActionStatus>>,
    stage: usize,
    status: ExecStatus,
    /// A stop or an action failure: start nothing more; end when nothing runs.
    ending: Option<ExecStatus>,
}

impl Machine {
    pub fn new(run_orders: Vec<Vec<u32>>) -> Machine {
        let actions = run_orders
            .iter()
            .map(|s| vec![ActionStatus::NotStarted; s.len()])
            .collect();
        Machine {
            run_orders,
            actions,
            stage: 0,
            status: ExecStatus::InProgress,
            ending: None,
        }
    }

    pub fn status(&self) -> ExecStatus {
        self.status
    }

    /// The stage being run (or the last one run).
    pub fn stage(&self) -> usize {
        self.stage
    }

    pub fn action(&self, a: ActionRef) -> ActionStatus {
        self.actions
            .get(a.0)
            .and_then(|s| s.get(a.1))
            .copied()
            .unwrap_or(ActionStatus::NotStarted)
    }

    /// Begin: the first actions to start.
    pub fn start(&mut self) -> Vec<ActionRef> {
        self.advance()
    }

    /// An action ended; the actions to start now.
    pub fn finished(&mut self, a: ActionRef, succeeded: bool) -> Vec<ActionRef> {
        if self.status.is_final() || self.action(a) != ActionStatus::InProgress {
            return vec![];
        }
        self.actions[a.0][a.1] = if succeeded {
            ActionStatus::Succeeded
        } else {
            ActionStatus::Failed
        };
        if !succeeded && self.ending.is_none() {
            self.ending = Some(ExecStatus::Failed);
        }
        self.advance()
    }

    /// StopPipelineExecution: start nothing more; with `abandon`, end at once (running actions
    /// are abandoned), else once the running actions have ended.
    pub fn stop(&mut self, abandon: bool) {
        if self.status.is_final() {
            return;
        }
        self.ending = Some(ExecStatus::Stopped);
        if abandon {
            self.abandon_running();
            self.status = ExecStatus::Stopped;
        } else if self.running() == 0 {
            self.status = ExecStatus::Stopped;
        } else {
            self.status = ExecStatus::Stopping;
        }
    }

    /// A newer execution supersedes this one: only while it is still in its first (source)
    /// stage. Returns whether it was superseded.
    pub fn supersede(&mut self) -> bool {
        if self.status != ExecStatus::InProgress || self.stage != 0 {
            return false;
        }
        self.abandon_running();
        self.status = ExecStatus::Superseded;
        true
    }

    fn abandon_running(&mut self) {
        for s in &mut self.actions {
            for a in s.iter_mut() {
                if *a == ActionStatus::InProgress {
                    *a = ActionStatus::Abandoned;
                }
            }
        }
    }

    fn running(&self) -> usize {
        self.actions
            .iter()
            .flatten()
            .filter(|a| **a == ActionStatus::InProgress)
            .count()
    }

    fn advance(&mut self) -> Vec<ActionRef> {
        loop {
            if self.running() > 0 {
                return vec![];
            }
            if let Some(end) = self.ending {
                self.status = end;
                return vec![];
            }
            let Some(stage) = self.actions.get(self.stage) else {
                self.status = ExecStatus::Succeeded;
                return vec![];
            };
            // The lowest runOrder with actions not yet started.
            let next = stage
                .iter()
                .zip(&self.run_orders[self.stage])
                .filter(|(s, _)| **s == ActionStatus::NotStarted)
                .map(|(_, o)| *o)
                .min();
            match next {
                Some(order) => {
                    let stage_index = self.stage;
                    let starts: Vec<ActionRef> = self.run_orders[stage_index]
                        .iter()
                        .enumerate()
                        .filter(|(i, o)| {
                            **o == order
                                && self.actions[stage_index][*i] == ActionStatus::NotStarted
                        })
                        .map(|(i, _)| (stage_index, i))
                        .collect();
                    for &(s, a) in &starts {
                        self.actions[s][a] = ActionStatus::InProgress;
                    }
                    return starts;
                }
                None if self.stage + 1 < self.actions.len() => self.stage += 1,
                None => {
                    self.status = ExecStatus::Succeeded;
                    return vec![];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_run_in_sequence_and_equal_run_orders_in_parallel() {
        let mut m = Machine::new(vec![vec![1], vec![1, 2, 1], vec![1]]);
        assert_eq!(m.start(), vec![(0, 0)]);
        assert_eq!(m.finished((0, 0), true), vec![(1, 0), (1, 2)]);
        assert_eq!(m.stage(), 1);
        assert_eq!(m.finished((1, 2), true), vec![]);
        assert_eq!(m.finished((1, 0), true), vec![(1, 1)]);
        assert_eq!(m.finished((1, 1), true), vec![(2, 0)]);
        assert_eq!(m.status(), ExecStatus::InProgress);
        assert_eq!(m.finished((2, 0), true), vec![]);
        assert_eq!(m.status(), ExecStatus::Succeeded);
    }

    #[test]
    fn a_failed_action_fails_its_stage_and_the_execution() {
        let mut m = Machine::new(vec![vec![1], vec![1, 1, 2], vec![1]]);
        m.start();
        assert_eq!(m.finished((0, 0), true), vec![(1, 0), (1, 1)]);
        assert_eq!(m.finished((1, 0), false), vec![]);
        // The parallel action still runs; the execution ends when it does.
        assert_eq!(m.status(), ExecStatus::InProgress);
        assert_eq!(m.finished((1, 1), true), vec![]);
        assert_eq!(m.status(), ExecStatus::Failed);
        assert_eq!(m.action((1, 2)), ActionStatus::NotStarted);
        assert_eq!(m.action((2, 0)), ActionStatus::NotStarted);
        // Late reports change nothing.
        assert_eq!(m.finished((1, 2), true), vec![]);
        assert_eq!(m.status(), ExecStatus::Failed);
    }

    #[test]
    fn stop_waits_for_running_actions_unless_abandoned() {
        let mut m = Machine::new(vec![vec![1], vec![1]]);
        m.start();
        m.stop(false);
        assert_eq!(m.status(), ExecStatus::Stopping);
        assert_eq!(m.finished((0, 0), true), vec![]);
        assert_eq!(m.status(), ExecStatus::Stopped);

        let mut m = Machine::new(vec![vec![1], vec![1]]);
        m.start();
        m.stop(true);
        assert_eq!(m.status(), ExecStatus::Stopped);
        assert_eq!(m.action((0, 0)), ActionStatus::Abandoned);
    }

    #[test]
    fn only_an_execution_in_its_source_stage_is_superseded() {
        let mut m = Machine::new(vec![vec![1], vec![1]]);
        m.start();
        assert!(m.supersede());
        assert_eq!(m.status(), ExecStatus::Superseded);
        assert_eq!(m.action((0, 0)), ActionStatus::Abandoned);

        let mut m = Machine::new(vec![vec![1], vec![1]]);
        m.start();
        m.finished((0, 0), true);
        assert!(!m.supersede());
        assert_eq!(m.status(), ExecStatus::InProgress);
    }

    #[test]
    fn empty_pipelines_succeed_at_once() {
        let mut m = Machine::new(vec![]);
        assert_eq!(m.start(), vec![]);
        assert_eq!(m.status(), ExecStatus::Succeeded);
    }
}
