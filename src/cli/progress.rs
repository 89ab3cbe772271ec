//! localbuild's own progress on stderr, and the friendly first-run messages.
//!
//! [`Progress`] shows long work (making or pulling an image) as an indicatif spinner with the
//! current step, only when stderr is a terminal and `--quiet` is off; piped, every step is a
//! plain line as before; with `--quiet`, steps print nothing (warnings and errors still do).
//! [`docker_unreachable`] is what a first run needs to hear (the engine says when it builds an
//! image):
//! the exact command that starts Docker on this system, and that the default image is being
//! built and roughly how long that takes.

use indicatif::{ProgressBar, ProgressStyle};
use localbuild_docker::DockerError;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A spinner on a terminal.
    Spinner,
    /// Plain lines (stderr is not a terminal).
    Plain,
    /// Nothing but warnings and errors.
    Quiet,
}

impl Mode {
    /// Spinner only when stderr is a terminal that can draw one and not `--quiet`.
    pub fn detect(quiet: bool) -> Mode {
        if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal()
            && std::env::var("TERM").map_or(true, |t| t != "dumb")
        {
            Mode::Spinner
        } else {
            Mode::Plain
        }
    }
}

/// Whether a progress line is a warning or an error (shown even with `--quiet`).
pub fn is_warning(line: &str) -> bool {
    line.starts_with("warning:") || line.starts_with("error:")
}

/// The stderr side of a command: steps of long work, and lines to keep.
pub struct Progress {
    mode: Mode,
    bar: Option<(ProgressBar, Instant)>,
    last: String,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        Progress {
            mode,
            bar: None,
            last: String::new(),
        }
    }

    /// A step of long work: the spinner's message on a terminal, a plain line when piped,
    /// nothing with `--quiet`.
    pub fn step(&mut self, line: &str) {
        if is_warning(line) {
            return self.line(line);
        }
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => eprintln!("{line}"),
            Mode::Spinner => {
                let (bar, _) = self.bar.get_or_insert_with(|| {
                    let bar = ProgressBar::new_spinner();
                    bar.set_style(
                        ProgressStyle::with_template("{spinner:.cyan} [{elapsed}] {wide_msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    (bar, Instant::now())
                });
                bar.set_message(line.trim().to_owned());
                line.trim().clone_into(&mut self.last);
            }
        }
    }

    /// A line to keep (a note, a warning): above the spinner, or plain; with `--quiet` only
    /// warnings and errors.
    pub fn line(&mut self, line: &str) {
        match (&self.bar, self.mode) {
            (_, Mode::Quiet) if !is_warning(line) => {}
            (Some((bar, _)), _) => bar.println(line),
            _ => eprintln!("{line}"),
        }
    }

    /// Stop the spinner; a long one leaves its last step and how long it all took.
    pub fn finish(&mut self) {
        if let Some((bar, started)) = self.bar.take() {
            bar.finish_and_clear();
            let took = started.elapsed();
            if took >= Duration::from_secs(2) && !self.last.is_empty() {
                eprintln!("{} ({}s)", self.last, took.as_secs());
            }
            self.last.clear();
        }
    }

    /// Run `f` (which writes to stdout) without the spinner drawing over it.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some((bar, _)) => bar.suspend(f),
            None => f(),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some((bar, _)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The error for a daemon that does not answer, with the exact command that starts Docker
/// here (or installs it), instead of the library's generic wording.
pub fn docker_error(e: &DockerError) -> String {
    match e {
        DockerError::Unreachable { endpoint, reason } => {
            docker_unreachable(endpoint, reason, &Host::detect())
        }
        e => format!("error: {e}"),
    }
}

/// What this machine has, for the start command.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// systemd is the init system (`/run/systemd/system` exists) and `systemctl` is on PATH.
    pub systemd: bool,
    /// `dockerd` is installed.
    pub dockerd: bool,
    pub root: bool,
    /// `DOCKER_HOST` is set.
    pub docker_host: bool,
    /// This repository's setup script, when localbuild runs from a checkout of it.
    pub setup_script: Option<PathBuf>,
}

impl Host {
    pub fn detect() -> Host {
        let setup = [
            PathBuf::from("scripts/setup.sh"),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup.sh"),
        ]
        .into_iter()
        .find(|p| p.is_file());
        Host {
            systemd: Path::new("/run/systemd/system").is_dir() && on_path("systemctl"),
            dockerd: on_path("dockerd"),
            root: std::fs::metadata("/proc/self").is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt as _;
                m.uid() == 0
            }),
            docker_host: std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty()),
            setup_script: setup,
        }
    }
}

fn on_path(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .any(|d| d.join(name).is_file())
}

/// One message: what failed, and the one command to run on this system.
pub fn docker_unreachable(endpoint: &str, reason: &str, host: &Host) -> String {
    let sudo = if host.root { "" } else { "sudo " };
    let mut s = format!(
        "error: cannot connect to the Docker daemon at {endpoint} ({reason})\nIs Docker running? "
    );
    if host.docker_host {
        s.push_str(&format!(
            "DOCKER_HOST is set: start the daemon it names, or unset DOCKER_HOST to use the local one{}\n",
            if host.dockerd { "" } else { " (not installed here)" }
        ));
    } else if !host.dockerd {
        s.push_str(&format!(
            "Docker is not installed. Install and start it with:\n\n    {sudo}apt-get install -y docker.io && {}\n",
            start_command(host)
        ));
    } else {
        s.push_str(&format!(
            "Docker is not running. Start it with:\n\n    {}\n",
            start_command(host)
        ));
    }
    if let Some(script) = &host.setup_script {
        s.push_str(&format!(
            "\n(or run {} from this repository: it installs and starts Docker and builds the test images)\n",
            script.display()
        ));
    }
    s
}

fn start_command(host: &Host) -> String {
    let sudo = if host.root { "" } else { "sudo " };
    if host.systemd {
        format!("{sudo}systemctl start docker")
    } else {
        format!("{sudo}dockerd > /var/log/dockerd.log 2>&1 &")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_command_fits_the_system() {
        let mut h = Host {
            dockerd: true,
            ..Host::default()
        };
        let m = docker_unreachable("unix:///var/run/docker.sock", "no such file", &h);
        assert!(
            m.contains("\n    sudo dockerd > /var/log/dockerd.log 2>&1 &\n"),
            "{m}"
        );
        h.systemd = true;
        h.root = true;
        let m = docker_unreachable("unix:///var/run/docker.sock", "refused", &h);
        assert!(m.contains("\n    systemctl start docker\n"), "{m}");
        assert!(!m.contains("setup.sh"));
        h.dockerd = false;
        h.setup_script = Some("scripts/setup.sh".into());
        let m = docker_unreachable("unix:///var/run/docker.sock", "refused", &h);
        assert!(
            m.contains("apt-get install -y docker.io && systemctl start docker"),
            "{m}"
        );
        assert!(m.contains("scripts/setup.sh"), "{m}");
    }

    #[test]
    fn quiet_keeps_warnings() {
        assert!(is_warning("warning: x"));
        assert!(!is_warning("Pulling image x"));
    }
}
