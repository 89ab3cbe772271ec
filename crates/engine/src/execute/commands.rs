//! The buildspec phases: each command through the user's shell driver (see [`crate::shell`]),
//! with live output, `CODEBUILD_BUILD_SUCCEEDING` / `CODEBUILD_LAST_EXIT`, and the exported
//! variables at the end; pauses (`codebuild-breakpoint` with session debugging,
//! `--shell-on-failure`) as commands that wait in the container, announced as
//! [`Event::Paused`] / [`Event::Resumed`].

use super::*;
use crate::buildspec::Version;
use crate::event::Pause;
use crate::runtime::RuntimeError;
use crate::shell::{
    AgentVars, BREAKPOINT, Persistence, RESUME_RETRY, ShellError, compose_script, driver_command,
    helper_path, helper_script,
};
use tokio::sync::mpsc;

impl BuildExecution {
    /// The `script.sh` text for `cmd` at this point of the build.
    pub(super) fn script(&self, spec: &Buildspec, cmd: &str) -> String {
        let persistence = match spec.version {
            Version::V0_1 => Persistence::Fresh,
            Version::V0_2 => Persistence::Carry,
        };
        let vars = AgentVars {
            succeeding: self.succeeding,
            last_exit: self.last_exit,
        };
        compose_script(
            &self.layout.tmp_dir(),
            &self.src_dir,
            persistence,
            vars,
            cmd,
        )
    }

    /// Run `cmd` with the build's shell semantics as the default user, without logging it;
    /// returns its exit status and its output (stdout and stderr). `None` if the shell died.
    pub(super) async fn capture(&mut self, spec: &Buildspec, cmd: &str) -> Option<(i64, Vec<u8>)> {
        self.driver(None).await.ok()?;
        let script = self.script(spec, cmd);
        let mut driver = self.take_driver(None)?;
        let mut out = Vec::new();
        let result = self
            .guard(driver.run(&script, &mut |b| out.extend_from_slice(&b)))
            .await;
        match result {
            Ok(Ok(code)) => {
                self.drivers.insert(None, std::sync::Mutex::new(driver));
                Some((code, out))
            }
            Ok(Err(ShellError::Ended { output })) => {
                out.extend_from_slice(&output);
                Some((self.ended_status(driver.exec_id(), 127).await, out))
            }
            _ => None,
        }
    }

    /// `env.exported-variables`: their values as the last command left them, into the record.
    pub(super) async fn export_variables(&mut self, spec: &Buildspec) {
        let names: Vec<&String> = spec
            .env
            .exported_variables
            .iter()
            .filter(|n| crate::secrets::is_variable_name(n))
            .collect();
        if names.is_empty() || self.container.is_none() {
            return;
        }
        let cmd: String = names
            .iter()
            .map(|n| format!("printf '%s\\0' \"${{{n}-}}\"; "))
            .collect();
        let Some((0, out)) = self.capture(spec, &cmd).await else {
            return;
        };
        let values = out.split(|b| *b == 0);
        self.build.exported_environment_variables = names
            .iter()
            .zip(values)
            .map(|(n, v)| EnvironmentVariable {
                name: (*n).clone(),
                value: self.hub.mask(&String::from_utf8_lossy(v)),
                kind: None,
            })
            .collect();
    }

    /// Take `user`'s driver out of the map while a command uses it.
    pub(super) fn take_driver(&mut self, user: Option<&str>) -> Option<Driver> {
        let driver = self.drivers.remove(&user.map(str::to_owned))?;
        Some(driver.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// The exit status of a driver that ended: Docker's for an exec (126 for a missing
    /// `run-as` user), else `fallback`. (Takes the id, not the `Driver`, which is not `Sync`.)
    pub(super) async fn ended_status(&self, exec_id: Option<&str>, fallback: i64) -> i64 {
        match exec_id {
            Some(id) => self.runtime.exec_exit_code(id).await.unwrap_or(fallback),
            None => fallback,
        }
    }

    /// Make sure a driver runs for `user`.
    pub(super) async fn driver(&mut self, user: Option<&str>) -> Result<(), RuntimeError> {
        let key = user.map(str::to_owned);
        if !self.drivers.contains_key(&key) {
            let driver = self.open_driver(user).await?;
            self.drivers.insert(key, std::sync::Mutex::new(driver));
        }
        Ok(())
    }

    /// Start a driver for `user` (it works from `/`; scripts `cd` where they run).
    pub(super) async fn open_driver(&self, user: Option<&str>) -> Result<Driver, RuntimeError> {
        let shell = &self.shell;
        let container = self.container.clone().unwrap_or_default();
        let session = self
            .runtime
            .start_session(
                &container,
                driver_command(
                    &self.layout.tmp_dir(),
                    &self.marker,
                    shell,
                    &self.src_dir,
                    self.req.debug.session,
                    self.req.batch.as_ref().and_then(|b| b.shard),
                ),
                user,
                "/",
                &self.driver_env,
            )
            .await?;
        Ok(Driver::new(session, self.marker.clone()))
    }

    /// One attempt at a buildspec phase: its commands until one fails, then its `finally`
    /// commands until one fails (decision U5).
    pub(super) async fn run_phase(
        &mut self,
        spec: &Buildspec,
        phase: &buildspec::Phase,
    ) -> Attempt {
        let user = phase.run_as.clone().or_else(|| spec.run_as.clone());
        let mut failure: Option<Attempt> = None;
        for list in [&phase.commands, &phase.finally] {
            for cmd in list {
                match self.run_command(spec, user.as_deref(), cmd).await {
                    CommandEnd::Ok => {}
                    CommandEnd::Failed { code, output } => {
                        if failure.is_none() {
                            failure = Some(Attempt {
                                output,
                                code,
                                ..Attempt::with(
                                    Ended::Failed,
                                    PhaseContext::new(
                                        "COMMAND_EXECUTION_ERROR",
                                        format!(
                                            "Error while executing command: {cmd}. Reason: exit status {code}"
                                        ),
                                    ),
                                )
                            });
                        }
                        break;
                    }
                    CommandEnd::Interrupted(i) => return Attempt::interrupted(i),
                    CommandEnd::Fault(m) => {
                        return Attempt::with(
                            Ended::Fault,
                            PhaseContext::new("SINGLE_BUILD_CONTAINER_DEAD", m),
                        );
                    }
                }
            }
        }
        failure.unwrap_or_else(Attempt::succeeded)
    }

    /// Run one buildspec command: log it, run it, and with `--shell-on-failure` pause after
    /// a failure (`codebuild-resume --retry` runs it again). `codebuild-breakpoint` pauses
    /// the build with session debugging on, and does nothing without it.
    pub(super) async fn run_command(
        &mut self,
        spec: &Buildspec,
        user: Option<&str>,
        cmd: &str,
    ) -> CommandEnd {
        let breakpoint = cmd.trim() == BREAKPOINT;
        if breakpoint && !self.req.debug.session {
            if let Some(i) = self.interrupted() {
                return CommandEnd::Interrupted(i);
            }
            self.agent(&format!("Running command {cmd}"));
            self.agent(
                "Session debugging is not enabled for this build: codebuild-breakpoint is ignored",
            );
            self.last_exit = 0;
            return CommandEnd::Ok;
        }
        let succeeding = self.succeeding;
        loop {
            let end = self.run_once(spec, user, cmd, breakpoint).await;
            if !(self.req.debug.on_failure && matches!(end, CommandEnd::Failed { .. })) {
                return end;
            }
            match self.pause_after_failure(spec, user, cmd).await {
                Ok(true) => {
                    self.succeeding = succeeding;
                    self.agent(&format!(
                        "Retrying command {cmd} (codebuild-resume --retry)"
                    ));
                }
                Ok(false) => return end,
                Err(e) => return e,
            }
        }
    }

    /// Tell every consumer that the build waits in its container, and how to get in.
    fn pause(&self, why: Pause, cmd: &str) {
        let target = self
            .build
            .debug_session
            .as_ref()
            .and_then(|d| d.session_target.clone())
            .unwrap_or_default();
        let id = &self.build_id;
        match why {
            Pause::Breakpoint => self.agent(&format!(
                "Build paused at codebuild-breakpoint: run `localbuild attach {id}` for a shell in the build, then codebuild-resume there to go on"
            )),
            Pause::Failure => self.agent(&format!(
                "Build paused after the failed command: run `localbuild attach {id}` for a shell at its state; leave the shell to go on, or run codebuild-resume --retry there to run the command again"
            )),
        }
        // The log line first: a consumer that acts on the event has printed it.
        self.emit(Event::Paused {
            at: OffsetDateTime::now_utc(),
            why,
            target,
            command: cmd.to_owned(),
        });
    }

    fn resumed(&self, retry: bool) {
        self.emit(Event::Resumed {
            at: OffsetDateTime::now_utc(),
            retry,
        });
        self.agent("Build resumed");
    }

    /// `--shell-on-failure`: wait in the container until the shell resumes; `Ok(true)` to run
    /// the failed command again.
    async fn pause_after_failure(
        &mut self,
        spec: &Buildspec,
        user: Option<&str>,
        cmd: &str,
    ) -> Result<bool, CommandEnd> {
        let tmp = self.layout.tmp_dir();
        let prepare = self.script(spec, &format!("{} --failed", helper_path(&tmp)));
        self.drive(user, &prepare).await?;
        self.pause(Pause::Failure, cmd);
        let (code, _) = self.drive(user, &helper_script(&tmp, "--wait")).await?;
        let retry = code == RESUME_RETRY;
        self.resumed(retry);
        Ok(retry)
    }

    async fn run_once(
        &mut self,
        spec: &Buildspec,
        user: Option<&str>,
        cmd: &str,
        breakpoint: bool,
    ) -> CommandEnd {
        if let Some(i) = self.interrupted() {
            return CommandEnd::Interrupted(i);
        }
        self.agent(&format!("Running command {cmd}"));
        if let Err(e) = self.driver(user).await {
            return CommandEnd::Fault(e.to_string());
        }
        let tmp = self.layout.tmp_dir();
        let script = if breakpoint {
            // Saves the command's state and makes the FIFO the pause waits on.
            self.script(spec, &format!("{} --prepare", helper_path(&tmp)))
        } else {
            self.script(spec, cmd)
        };
        let driven = self.drive(user, &script).await;
        if breakpoint && matches!(driven, Ok((0, _))) {
            self.pause(Pause::Breakpoint, cmd);
            if let Err(end) = self.drive(user, &helper_script(&tmp, "--wait")).await {
                return end;
            }
            self.resumed(false);
        }
        let (code, captured) = match driven {
            Ok(r) => r,
            Err(end) => return end,
        };
        self.emit(Event::Output(Bytes::from_static(b"\n")));
        self.last_exit = code;
        if code == 0 {
            CommandEnd::Ok
        } else {
            self.succeeding = false;
            self.agent(&format!(
                "Command did not exit successfully {cmd} exit status {code}"
            ));
            CommandEnd::Failed {
                code,
                output: Bytes::from(captured),
            }
        }
    }

    /// Send `script` to `user`'s driver (which must run) and wait for its status, with live
    /// output; stop and timeout apply. Returns the status and the output (its first MiB).
    async fn drive(
        &mut self,
        user: Option<&str>,
        script: &str,
    ) -> Result<(i64, Vec<u8>), CommandEnd> {
        let key = user.map(str::to_owned);
        let Some(mut driver) = self.take_driver(user) else {
            return Err(CommandEnd::Fault("no command shell".into()));
        };
        // Output flows through a channel so that the log and events see it live.
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let mut captured = Vec::new();
        let cancel = self.cancel.clone();
        let broken = self.broken.clone();
        let deadline = self.deadline;
        let result = {
            let run = async {
                let mut sink = |b: Bytes| {
                    let _ = tx.send(b);
                };
                let r = driver.run(script, &mut sink).await;
                drop(tx);
                r
            };
            let pump = async {
                while let Some(b) = rx.recv().await {
                    if captured.len() < 1 << 20 {
                        captured.extend_from_slice(&b);
                    }
                    self.output(b);
                }
            };
            // `guard` would borrow `self`, which `pump` holds.
            interruptible(&cancel, &broken, deadline, async {
                tokio::join!(run, pump).0
            })
            .await
        };
        let code = match result {
            Err(i) => return Err(CommandEnd::Interrupted(i)),
            Ok(Ok(code)) => {
                self.drivers.insert(key, std::sync::Mutex::new(driver));
                code
            }
            Ok(Err(ShellError::Ended { output })) => {
                // The driver ended: a missing run-as user (exit 126), or the container died.
                if !output.is_empty() {
                    captured.extend_from_slice(&output);
                    self.output(output);
                }
                let container = self.container.clone().unwrap_or_default();
                if !self.runtime.is_running(&container).await {
                    return Err(CommandEnd::Fault(
                        "Build container found dead before completing the build".into(),
                    ));
                }
                self.ended_status(driver.exec_id(), 126).await
            }
            Ok(Err(e)) => return Err(CommandEnd::Fault(e.to_string())),
        };
        Ok((code, captured))
    }
}

pub(super) enum CommandEnd {
    Ok,
    Failed { code: i64, output: Bytes },
    Interrupted(Interrupt),
    Fault(String),
}
