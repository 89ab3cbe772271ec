//! The pure state machine of one pipeline execution: stages run in sequence, the actions of a
//! stage by `runOrder` (actions with the same `runOrder` run in parallel), a failed action
//! fails its stage and the execution, and an execution can be stopped or superseded. A
//! disabled inbound transition holds the execution before that stage until it is enabled; a
//! failed or stopped stage can be retried (its failed actions, or all of them). No I/O: the
//! executor tells the machine what happened and starts what the machine answers.

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
    /// `gates[s]`: the transition into stage `s` is enabled.
    gates: Vec<bool>,
    /// Held before stage `stage + 1` by a disabled transition.
    waiting: bool,
}

impl Machine {
    pub fn new(run_orders: Vec<Vec<u32>>) -> Machine {
        let actions = run_orders
            .iter()
            .map(|s| vec![ActionStatus::NotStarted; s.len()])
            .collect();
        let gates = vec![true; run_orders.len()];
        Machine {
            run_orders,
            actions,
            stage: 0,
            status: ExecStatus::InProgress,
            ending: None,
            gates,
            waiting: false,
        }
    }

    /// A machine at the point a recorded execution ended (for a retry): the actions' statuses
    /// and the stage it was in.
    pub fn resume(
        run_orders: Vec<Vec<u32>>,
        actions: Vec<Vec<ActionStatus>>,
        stage: usize,
        status: ExecStatus,
    ) -> Machine {
        let mut m = Machine::new(run_orders);
        for (s, stage_actions) in actions.into_iter().enumerate() {
            for (a, st) in stage_actions.into_iter().enumerate() {
                if let Some(slot) = m.actions.get_mut(s).and_then(|x| x.get_mut(a)) {
                    *slot = st;
                }
            }
        }
        m.stage = stage;
        m.status = status;
        m
    }

    /// The enabled state of each stage's inbound transition; an execution held before a
    /// stage whose transition is now enabled goes on (the actions to start).
    pub fn set_gates(&mut self, gates: Vec<bool>) -> Vec<ActionRef> {
        self.gates = gates;
        if self.waiting && self.status == ExecStatus::InProgress {
            self.advance()
        } else {
            vec![]
        }
    }

    /// The stage whose disabled transition holds the execution.
    pub fn waiting_at(&self) -> Option<usize> {
        self.waiting.then_some(self.stage + 1)
    }

    /// RetryStageExecution: run stage `stage` again (its failed and abandoned actions, or with
    /// `all` every action), then the stages after it. Only an execution that ended Failed or
    /// Stopped in that stage can be retried.
    pub fn retry(&mut self, stage: usize, all: bool) -> Result<Vec<ActionRef>, &'static str> {
        if !matches!(self.status, ExecStatus::Failed | ExecStatus::Stopped) {
            return Err("the execution is not Failed or Stopped");
        }
        let Some(actions) = self.actions.get(stage) else {
            return Err("no such stage");
        };
        let failed = |a: &ActionStatus| matches!(a, ActionStatus::Failed | ActionStatus::Abandoned);
        if stage != self.stage || !actions.iter().any(failed) {
            return Err("the stage has no failed actions in this execution");
        }
        for a in self.actions[stage].iter_mut() {
            if all || failed(a) {
                *a = ActionStatus::NotStarted;
            }
        }
        for later in self.actions.iter_mut().skip(stage + 1) {
            later.fill(ActionStatus::NotStarted);
        }
        self.status = ExecStatus::InProgress;
        self.ending = None;
        self.waiting = false;
        Ok(self.advance())
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
    /// stage or held by a disabled transition. Returns whether it was superseded.
    pub fn supersede(&mut self) -> bool {
        if self.status != ExecStatus::InProgress || (self.stage != 0 && !self.waiting) {
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
                None if self.stage + 1 < self.actions.len() => {
                    if !self.gates.get(self.stage + 1).copied().unwrap_or(true) {
                        self.waiting = true;
                        return vec![];
                    }
                    self.waiting = false;
                    self.stage += 1;
                }
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
    fn a_disabled_transition_holds_the_execution_until_enabled() {
        let mut m = Machine::new(vec![vec![1], vec![1], vec![1]]);
        m.start();
        m.set_gates(vec![true, true, false]);
        assert_eq!(m.finished((0, 0), true), vec![(1, 0)]);
        assert_eq!(m.finished((1, 0), true), vec![]);
        assert_eq!(m.status(), ExecStatus::InProgress);
        assert_eq!(m.waiting_at(), Some(2));
        assert_eq!(m.set_gates(vec![true, true, true]), vec![(2, 0)]);
        assert_eq!(m.waiting_at(), None);
        m.finished((2, 0), true);
        assert_eq!(m.status(), ExecStatus::Succeeded);
    }

    #[test]
    fn an_execution_held_by_a_transition_is_superseded() {
        let mut m = Machine::new(vec![vec![1], vec![1]]);
        m.start();
        m.set_gates(vec![true, false]);
        m.finished((0, 0), true);
        assert!(m.supersede());
        assert_eq!(m.status(), ExecStatus::Superseded);
    }

    #[test]
    fn a_failed_stage_is_retried_with_its_failed_or_all_actions() {
        let orders = vec![vec![1], vec![1, 1, 2], vec![1]];
        let mut m = Machine::new(orders.clone());
        m.start();
        m.finished((0, 0), true);
        m.finished((1, 0), true);
        m.finished((1, 1), false);
        assert_eq!(m.status(), ExecStatus::Failed);
        assert_eq!(
            m.retry(0, false),
            Err("the stage has no failed actions in this execution")
        );
        let mut again = m.clone();
        assert_eq!(m.retry(1, false), Ok(vec![(1, 1)]));
        assert_eq!(m.action((1, 0)), ActionStatus::Succeeded);
        assert_eq!(m.finished((1, 1), true), vec![(1, 2)]);
        assert_eq!(m.finished((1, 2), true), vec![(2, 0)]);
        m.finished((2, 0), true);
        assert_eq!(m.status(), ExecStatus::Succeeded);
        assert_eq!(
            m.retry(1, false),
            Err("the execution is not Failed or Stopped")
        );

        assert_eq!(again.retry(1, true), Ok(vec![(1, 0), (1, 1)]));

        // A machine rebuilt from a record retries the same way.
        let mut r = Machine::resume(
            orders,
            vec![
                vec![ActionStatus::Succeeded],
                vec![
                    ActionStatus::Succeeded,
                    ActionStatus::Abandoned,
                    ActionStatus::NotStarted,
                ],
                vec![ActionStatus::NotStarted],
            ],
            1,
            ExecStatus::Stopped,
        );
        assert_eq!(r.retry(1, false), Ok(vec![(1, 1)]));
        assert_eq!(r.status(), ExecStatus::InProgress);
    }

    #[test]
    fn empty_pipelines_succeed_at_once() {
        let mut m = Machine::new(vec![]);
        assert_eq!(m.start(), vec![]);
        assert_eq!(m.status(), ExecStatus::Succeeded);
    }
}
