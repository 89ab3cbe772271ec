//! A person's shell inside a build: `localbuild attach BUILD` (a paused build), `localbuild
//! shell BUILD` (a kept container), and the shell `run` opens itself on an interactive
//! terminal (at a breakpoint when asked, after a failed command with `--shell-on-failure`).
//!
//! The shell is [`localbuild_engine::shell::ATTACH`] run with a TTY through
//! [`Docker::start_tty`]: the build's saved variables and working directory, bash when the
//! image has it. This side puts the local terminal in raw mode (restored on drop, also on an
//! early return), copies keys in and output out, and follows the window's size (SIGWINCH).
//! Ctrl-C is a key like any other: it reaches the shell's foreground child in the container.
//!
//! Keys come from one [`Keys`] reader per process, so a prompt and later shells share stdin
//! without a stray blocked read taking a line meant for another.

use super::error::CliError;
use super::exit;
use futures_util::StreamExt;
use localbuild_docker::{Docker, Tty};
use localbuild_engine::runtime::Runtime;
use localbuild_engine::shell::attach_command;
use std::io::{IsTerminal, Read, Write};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Which command opened the shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `localbuild attach`: the build must be paused.
    Attach,
    /// `localbuild shell`: the build's container must still run (kept, or paused).
    Shell,
}

/// `localbuild attach BUILD` / `localbuild shell BUILD`.
pub fn run(which: &str, mode: Mode) -> Result<u8, CliError> {
    let store = super::history()?;
    let build = super::builds::find(&store, which)?;
    if !interactive() {
        return Err(CliError::Usage(
            "a shell needs an interactive terminal (stdin and stdout)".into(),
        ));
    }
    super::with_docker(|docker| async move {
        let Some(container) = docker.build_container(&build.id).await? else {
            return Err(CliError::Failed(match mode {
                Mode::Attach => format!(
                    "build {} has no running container: it is not paused",
                    build.id
                ),
                Mode::Shell => format!(
                    "build {} kept no container (run it with --keep-container)",
                    build.id
                ),
            }));
        };
        if mode == Mode::Attach && !is_paused(&docker, &container).await {
            return Err(CliError::Failed(format!(
                "build {} is not paused (its log says `localbuild attach` when it is)",
                build.id
            )));
        }
        let mut keys = Keys::start();
        let code = shell(&docker, &container, &mut keys)
            .await
            .map_err(CliError::Fault)?;
        Ok(u8::try_from(code).unwrap_or(exit::FAILURE))
    })
}

/// Are stdin and stdout a terminal a person types into?
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Does the build in `container` wait for `codebuild-resume`?
pub async fn is_paused(docker: &Docker, container: &str) -> bool {
    let fifo = format!("{}/debug/resume", docker.layout().tmp_dir());
    matches!(
        docker
            .exec_status(container, vec!["test".into(), "-p".into(), fifo])
            .await,
        Ok(0)
    )
}

/// Everything typed on stdin, in chunks, from one reader thread for the whole process.
pub struct Keys {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl Keys {
    pub fn start() -> Keys {
        let (tx, rx) = mpsc::channel(64);
        std::thread::spawn(move || {
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 4096];
            loop {
                match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.blocking_send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Keys { rx }
    }

    /// The next chunk typed (a whole line while the terminal is not raw); `None` at the end
    /// of stdin.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }
}

/// The local terminal in raw mode for as long as this lives.
struct Raw;

impl Raw {
    fn enable() -> std::io::Result<Raw> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(Raw)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Run the build's interactive shell in `container` on this terminal until it exits (or the
/// container goes away); its exit status.
pub async fn shell(docker: &Docker, container: &str, keys: &mut Keys) -> Result<i64, String> {
    let size = crossterm::terminal::size().unwrap_or((80, 24));
    let term = std::env::var("TERM")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "xterm".to_owned());
    let tty = docker
        .start_tty(
            container,
            attach_command(&docker.layout().tmp_dir()),
            &[format!("TERM={term}")],
            size,
        )
        .await
        .map_err(|e| e.to_string())?;
    let Tty {
        mut input,
        mut output,
        exec_id,
    } = tty;
    let raw = Raw::enable().map_err(|e| format!("cannot put the terminal in raw mode: {e}"))?;
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut keys_open = true;
    let mut out = std::io::stdout();
    loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                Some(Ok(bytes)) => {
                    let _ = out.write_all(&bytes);
                    let _ = out.flush();
                }
                _ => break,
            },
            key = keys.next(), if keys_open => match key {
                Some(k) => {
                    if input.write_all(&k).await.is_err() || input.flush().await.is_err() {
                        keys_open = false;
                    }
                }
                None => {
                    keys_open = false;
                    let _ = input.shutdown().await;
                }
            },
            Some(()) = async { match winch.as_mut() { Some(w) => w.recv().await, None => None } } => {
                if let Ok((cols, rows)) = crossterm::terminal::size() {
                    let _ = docker.resize_tty(&exec_id, cols, rows).await;
                }
            }
        }
    }
    drop(raw);
    if !docker.is_running(container).await {
        eprintln!(
            "\nThe build's container is gone (the build ended or was stopped): the shell ended with it."
        );
    }
    Ok(docker.exec_exit_code(&exec_id).await.unwrap_or(0))
}
