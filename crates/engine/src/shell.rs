//! Running buildspec commands with CodeBuild 0.2's shell semantics (reference §3, decision U6).
//!
//! One long-lived *driver* (`/bin/sh`) per user runs in the container with its stdin attached.
//! For each command the engine sends a complete script (3 preamble lines, the command from line
//! 4) followed by a marker line; the driver writes it to `/codebuild/output/tmp/script.sh`, runs
//! it with the build's shell in a clean environment (`env -i`), and prints `<marker>:<status>`
//! on stdout and on stderr. The engine knows a command ended when both streams carried the
//! marker, so no output is lost or attributed to the wrong command, and no `docker exec` is paid
//! per command.
//!
//! The driver's own variables are prefixed `_lb_` and never exported, so that a build variable
//! of any other name (`T`, `M`, `D`, …) reaches the commands unchanged.
//!
//! State between commands lives in the container: line 1 restores `env.sh` (every variable,
//! exported) and the saved working directory, line 3 installs an `EXIT` trap that saves them
//! again with `set -a` on, so plain assignments persist too. `exit N` ends only that command.

use crate::runtime::{Chunk, RuntimeError as DockerError, Session};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// Agent-owned files live here, as in CodeBuild.
pub const TMP_DIR: &str = "/codebuild/output/tmp";

/// The driver, run as `sh -c DRIVER sh <tmp dir> <marker> <shell> <first working directory>
/// <debug> <shard>` (`<debug>` non-empty: session debugging is on, see [`HELPER`];
/// `<shard>`: `NUMBER COUNT` for a build of a build-fanout, else empty). On its first start
/// in a container it installs the [`HELPERS`] (`@INSTALL@`, see [`install_helpers`]).
pub const DRIVER: &str = r##"_lb_t="$1"; _lb_m="$2"; _lb_sh="$3"; _lb_d="$4"
mkdir -p "$_lb_t" 2>/dev/null
if [ ! -f "$_lb_t/env0.sh" ]; then
  export -p > "$_lb_t/env0.sh"; cp "$_lb_t/env0.sh" "$_lb_t/env.sh"; printf '%s\n' "$_lb_d" > "$_lb_t/dir"; : > "$_lb_t/script.sh"
  mkdir -p "$_lb_t/debug"; [ -n "$5" ] && : > "$_lb_t/debug/enabled"
  [ -n "$6" ] && printf '%s\n' "$6" > "$_lb_t/shard"
@INSTALL@
  chmod 777 "$_lb_t" "$_lb_t/debug"
  chmod 666 "$_lb_t/env0.sh" "$_lb_t/env.sh" "$_lb_t/dir" "$_lb_t/script.sh"
fi
_lb_shp=$(command -v "$_lb_sh") || _lb_shp="$_lb_sh"
while :; do
  _lb_ok=
  { while IFS= read -r _lb_l; do if [ "$_lb_l" = "$_lb_m" ]; then _lb_ok=1; break; fi; printf '%s\n' "$_lb_l"; done; } > "$_lb_t/script.sh"
  [ -n "$_lb_ok" ] || exit 0
  env -i "$_lb_shp" "$_lb_t/script.sh" < /dev/null
  _lb_rc=$?
  printf '%s:%s\n' "$_lb_m" "$_lb_rc"
  printf '%s:%s\n' "$_lb_m" "$_lb_rc" >&2
done
"##;

/// A command CodeBuild's images provide, installed in every build container.
#[derive(Debug, Clone, Copy)]
pub struct Helper {
    pub name: &'static str,
    /// Other names of the same script (it may look at `$0`).
    pub aliases: &'static [&'static str],
    /// The script's body, run by `/bin/sh` with `_lb_t` (the agent's tmp dir) and `_lb_d`
    /// (`<tmp>/debug`) set.
    pub script: &'static str,
}

/// The container's helper commands: session debugging's pause ([`HELPER`]) and parallel test
/// splitting's ([`crate::testsplit`]). The one place that says what a build container gets.
pub const HELPERS: &[Helper] = &[
    Helper {
        name: BREAKPOINT,
        aliases: &["codebuild-resume"],
        script: HELPER,
    },
    Helper {
        name: "codebuild-tests-run",
        aliases: &[],
        script: crate::testsplit::TESTS_RUN,
    },
    Helper {
        name: "codebuild-glob-search",
        aliases: &[],
        script: crate::testsplit::GLOB_SEARCH,
    },
];

/// Shell that installs the [`HELPERS`] in `$_lb_t/bin` (or, run alone, `$1/bin`) and links
/// them into `/usr/local/bin` (on the images' `PATH`) where the image has no command of that
/// name, only in a container laid out as CodeBuild's (`/codebuild/...`): never on a machine
/// whose processes play the container, as in the engine's tests.
pub fn install_helpers() -> String {
    let mut out = String::from("  _lb_t=\"${_lb_t:-$1}\"; mkdir -p \"$_lb_t/bin\"\n");
    let mut names = Vec::new();
    for h in HELPERS {
        out.push_str(&format!(
            "  {{ printf '#!/bin/sh\\n_lb_t=%s; _lb_d=%s/debug\\n' \"$_lb_t\" \"$_lb_t\"; cat <<'_LB_HELPER_'\n{}\n_LB_HELPER_\n  }} > \"$_lb_t/bin/{n}\"; chmod 755 \"$_lb_t/bin/{n}\"\n",
            h.script,
            n = h.name
        ));
        for a in h.aliases {
            out.push_str(&format!("  ln -s {} \"$_lb_t/bin/{a}\"\n", h.name));
        }
        names.push(h.name);
        names.extend(h.aliases);
    }
    out.push_str(&format!(
        "  case \"$_lb_t\" in /codebuild/*)\n    mkdir -p /usr/local/bin 2>/dev/null\n    for _lb_n in {}; do\n      [ -e \"/usr/local/bin/$_lb_n\" ] || ln -s \"$_lb_t/bin/$_lb_n\" \"/usr/local/bin/$_lb_n\" 2>/dev/null\n    done ;;\n  esac",
        names.join(" ")
    ));
    out
}

/// `codebuild-breakpoint` and `codebuild-resume` (one script, by the name it is called by),
/// one of the [`HELPERS`].
///
/// A pause is a command that waits. `--prepare` saves the variables and working directory it
/// sees (`debug/env.sh`, `debug/dir`: with `set -a` in the preamble every variable of the
/// command is exported, so a breakpoint inside a script sees them too) and makes the FIFO
/// `debug/resume`; `--wait` reads one line from it, which `codebuild-resume` writes (`go`, or
/// `retry`). Without session debugging (no `debug/enabled`) `--prepare` makes no FIFO, so
/// nothing waits. `--failed` (after a failed command, `--shell-on-failure`, run with the
/// preamble of the next command: the failed command's state and the agent's variables as the
/// next command gets them) does the same whatever the setting and marks `debug/failed`; its
/// `--wait` exits [`RESUME_RETRY`] for `codebuild-resume --retry`. With no
/// argument (a breakpoint inside a script) it prepares and waits. The engine sends the two
/// steps as two scripts, so that it announces the pause only once the FIFO exists.
pub const HELPER: &str = r##"case "${0##*/}" in
codebuild-resume)
  _lb_r=go; [ "$1" = --retry ] && _lb_r=retry
  if [ ! -p "$_lb_d/resume" ]; then echo "codebuild-resume: the build is not paused" >&2; exit 1; fi
  printf '%s\n' "$_lb_r" > "$_lb_d/resume"
  rm -f "$_lb_d/resume" "$_lb_d/failed"
  echo "codebuild-resume: the build goes on"
  exit 0 ;;
esac
case "$1" in
--prepare|--failed|"")
  [ "$1" = --failed ] || [ -f "$_lb_d/enabled" ] || exit 0
  export -p > "$_lb_d/env.sh"; pwd > "$_lb_d/dir"
  rm -f "$_lb_d/resume" "$_lb_d/failed"; mkfifo -m 600 "$_lb_d/resume" || exit 0
  [ "$1" = --failed ] && echo "$$" > "$_lb_d/failed"
  [ -n "$1" ] && exit 0 ;;
esac
[ -p "$_lb_d/resume" ] || exit 0
_lb_f=; [ -f "$_lb_d/failed" ] && _lb_f=1
read -r _lb_r < "$_lb_d/resume"
rm -f "$_lb_d/resume" "$_lb_d/env.sh" "$_lb_d/dir" "$_lb_d/failed"
if [ -n "$_lb_f" ] && [ "$_lb_r" = retry ]; then exit 100; fi
exit 0"##;

/// The exit status of `codebuild-breakpoint --wait` after a failed command when the shell
/// said `codebuild-resume --retry`.
pub const RESUME_RETRY: i64 = 100;

/// The buildspec command that pauses a build (CodeBuild's).
pub const BREAKPOINT: &str = "codebuild-breakpoint";

/// The helper's full path (it works whatever the image's `PATH`).
pub fn helper_path(tmp: &str) -> String {
    format!("{tmp}/bin/{BREAKPOINT}")
}

/// A script that runs the helper with `arg` (`--prepare`, `--failed`, `--wait`) and nothing
/// else: no preamble, so the saved state stays as the build's last command left it.
pub fn helper_script(tmp: &str, arg: &str) -> String {
    format!("exec {} {arg}\n", helper_path(tmp))
}

/// The script a parked driver runs when the container is kept after the build: it never
/// returns, so the driver never reads its (closed) input again and the container stays up.
pub const PARK: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; \
trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done\n";

/// The interactive shell of `localbuild attach` / `localbuild shell`, run with a TTY as
/// `sh -c ATTACH sh <tmp dir>`: the variables and working directory the next command would
/// see (those a breakpoint saved, else those the last command left), in a clean environment
/// plus `TERM`; bash when the image has it, else `sh`. Leaving a shell opened after a failed
/// command goes on with the failure (as `codebuild-resume` would), if that pause (the
/// helper's pid in `debug/failed`) still waits.
pub const ATTACH: &str = r##"_lb_t="$1"; _lb_d="$_lb_t/debug"
if [ -f "$_lb_d/env.sh" ]; then _lb_e="$_lb_d/env.sh"; _lb_w="$_lb_d/dir"; else _lb_e="$_lb_t/env.sh"; _lb_w="$_lb_t/dir"; fi
_lb_p=$(cat "$_lb_d/failed" 2>/dev/null)
_lb_sh=$(command -v bash 2>/dev/null) || _lb_sh=$(command -v sh)
env -i TERM="${TERM:-xterm}" "$_lb_sh" -c '. "$1"; cd "$(cat "$2")"; set +a; if [ -n "${BASH_VERSION:-}" ]; then exec "$0" --norc --noprofile -i; fi; exec "$0" -i' "$_lb_sh" "$_lb_e" "$_lb_w"
_lb_rc=$?
if [ -n "$_lb_p" ] && [ "$(cat "$_lb_d/failed" 2>/dev/null)" = "$_lb_p" ] && [ -p "$_lb_d/resume" ]; then
  "$_lb_t/bin/codebuild-resume" >/dev/null 2>&1
fi
exit $_lb_rc
"##;

/// The command that opens the interactive shell (see [`ATTACH`]).
pub fn attach_command(tmp: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        ATTACH.into(),
        "sh".into(),
        tmp.into(),
    ]
}

/// How state carries over between commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Buildspec 0.2: variables and working directory carry over.
    Carry,
    /// Buildspec 0.1: every command starts from the initial environment in the source directory.
    Fresh,
}

/// Values the agent sets before every command (decision U6).
#[derive(Debug, Clone, Copy)]
pub struct AgentVars {
    pub succeeding: bool,
    pub last_exit: i64,
}

/// The text of `script.sh` for one command: three preamble lines, the command from line 4.
pub fn compose_script(
    tmp: &str,
    src_dir: &str,
    persistence: Persistence,
    vars: AgentVars,
    command: &str,
) -> String {
    let agent = format!(
        "export CODEBUILD_BUILD_SUCCEEDING={} CODEBUILD_LAST_EXIT={}",
        u8::from(vars.succeeding),
        vars.last_exit
    );
    match persistence {
        Persistence::Carry => format!(
            ". {tmp}/env.sh; cd \"$(cat {tmp}/dir)\"\n\
             {agent}\n\
             trap 'set -- $?; set +e +a; [ -n \"${{BASH_VERSION:-}}\" ] && set -o posix; \
             export -p > {tmp}/env.sh; pwd > {tmp}/dir; exit $1' EXIT; set -a\n\
             {command}\n"
        ),
        Persistence::Fresh => format!(". {tmp}/env0.sh; cd {src_dir}\n{agent}\n:\n{command}\n"),
    }
}

/// Why a command produced no exit status.
#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    /// The driver's streams ended (the user does not exist, or the container died).
    #[error("the command shell ended unexpectedly")]
    Ended { output: Bytes },
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error("cannot send the command to the build container: {0}")]
    Io(#[from] std::io::Error),
}

/// A driver session: send scripts, receive output and exit statuses.
pub struct Driver {
    session: Session,
    marker: String,
    out: StreamState,
    err: StreamState,
}

#[derive(Default)]
struct StreamState {
    buf: BytesMut,
    status: Option<i64>,
}

/// Retained partial lines longer than this are passed on without waiting for their newline.
const MAX_PARTIAL: usize = 1 << 20;

impl StreamState {
    /// Take in `chunk`; return the complete lines that are now known to be output.
    fn feed(&mut self, chunk: &[u8], marker: &[u8]) -> Bytes {
        self.buf.extend_from_slice(chunk);
        self.drain(marker)
    }

    fn drain(&mut self, marker: &[u8]) -> Bytes {
        if self.status.is_some() {
            return Bytes::new();
        }
        if let Some(pos) = memchr::memmem::find(&self.buf, marker) {
            let rest = &self.buf[pos + marker.len()..];
            if let Some(nl) = memchr::memchr(b'\n', rest) {
                let code = std::str::from_utf8(&rest[1..nl])
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(-1);
                self.status = Some(code);
                let mut out = self.buf.split_to(pos);
                let _ = self.buf.split_to(marker.len() + nl + 1);
                if !out.is_empty() && !out.ends_with(b"\n") {
                    out.extend_from_slice(b"\n");
                }
                return out.freeze();
            }
            // The marker line is not complete yet: everything before it is output.
            return self.split_lines(pos);
        }
        let end = self.buf.len().saturating_sub(marker.len() + 24);
        if self.buf.len() > MAX_PARTIAL {
            return self.buf.split_to(end).freeze();
        }
        let upto = memchr::memrchr(b'\n', &self.buf).map_or(0, |i| i + 1);
        self.split_lines(upto)
    }

    fn split_lines(&mut self, limit: usize) -> Bytes {
        let upto = memchr::memrchr(b'\n', &self.buf[..limit]).map_or(0, |i| i + 1);
        self.buf.split_to(upto).freeze()
    }
}

impl Driver {
    /// Wrap a session started with [`driver_command`].
    pub fn new(session: Session, marker: String) -> Driver {
        Driver {
            session,
            marker,
            out: StreamState::default(),
            err: StreamState::default(),
        }
    }

    /// Run one script; `output` receives complete lines (stdout and stderr, in arrival order).
    pub async fn run(
        &mut self,
        script: &str,
        output: &mut (dyn FnMut(Bytes) + Send),
    ) -> Result<i64, ShellError> {
        let mut msg = String::with_capacity(script.len() + self.marker.len() + 2);
        msg.push_str(script);
        if !msg.ends_with('\n') {
            msg.push('\n');
        }
        msg.push_str(&self.marker);
        msg.push('\n');
        self.session.input.write_all(msg.as_bytes()).await?;
        self.session.input.flush().await?;

        let marker = self.marker.as_bytes().to_vec();
        // Output left over from a previous command (e.g. a background job) belongs to this one.
        for state in [&mut self.out, &mut self.err] {
            state.status = None;
            let lines = state.drain(&marker);
            if !lines.is_empty() {
                output(lines);
            }
        }
        while self.out.status.is_none() || self.err.status.is_none() {
            match self.session.output.next().await {
                Some(Ok(Chunk::Stdout(b))) => {
                    let lines = self.out.feed(&b, &marker);
                    if !lines.is_empty() {
                        output(lines);
                    }
                }
                Some(Ok(Chunk::Stderr(b))) => {
                    let lines = self.err.feed(&b, &marker);
                    if !lines.is_empty() {
                        output(lines);
                    }
                }
                Some(Err(e)) => return Err(e.into()),
                None => {
                    let mut rest = BytesMut::new();
                    for state in [&mut self.out, &mut self.err] {
                        rest.extend_from_slice(&std::mem::take(&mut state.buf));
                        if !rest.is_empty() && !rest.ends_with(b"\n") {
                            rest.extend_from_slice(b"\n");
                        }
                    }
                    return Err(ShellError::Ended {
                        output: rest.freeze(),
                    });
                }
            }
        }
        Ok(self.out.status.unwrap_or(-1))
    }

    /// The Docker exec id of the driver, if it runs in a container.
    pub fn exec_id(&self) -> Option<&str> {
        self.session.exec_id.as_deref()
    }

    /// Leave the driver running [`PARK`] (for a kept container) and let go of it.
    pub async fn park(mut self) {
        let msg = format!("{PARK}{}\n", self.marker);
        let _ = self.session.input.write_all(msg.as_bytes()).await;
        let _ = self.session.input.flush().await;
    }

    /// Close the driver's stdin; it exits after the current command.
    pub async fn close(mut self) {
        let _ = self.session.input.shutdown().await;
    }
}

/// The command that starts a driver (`debug`: session debugging is on; `shard`: the build's
/// place in a build-fanout, for `codebuild-tests-run`).
pub fn driver_command(
    tmp: &str,
    marker: &str,
    shell: &str,
    workdir: &str,
    debug: bool,
    shard: Option<crate::buildspec::batch::Shard>,
) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        DRIVER.replace("@INSTALL@", &install_helpers()),
        "sh".into(),
        tmp.into(),
        marker.into(),
        shell.into(),
        workdir.into(),
        if debug { "1".into() } else { String::new() },
        shard
            .map(|s| format!("{} {}", s.number, s.count))
            .unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;

    /// A driver running on this machine's /bin/sh: the protocol and the preamble are pure
    /// shell, so they are tested without Docker.
    async fn local_driver(tmp: &std::path::Path, shell: &str) -> Driver {
        let marker = "__lb_test_marker_7f3a__".to_owned();
        let cmd = driver_command(
            tmp.to_str().unwrap(),
            &marker,
            shell,
            tmp.to_str().unwrap(),
            true,
            None,
        );
        let mut child = tokio::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .current_dir(tmp)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", "/root")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let out = tokio_util::io::ReaderStream::new(child.stdout.take().unwrap())
            .map(|b| Ok(Chunk::Stdout(b.unwrap())));
        let err = tokio_util::io::ReaderStream::new(child.stderr.take().unwrap())
            .map(|b| Ok(Chunk::Stderr(b.unwrap())));
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Driver::new(
            Session {
                input: Box::pin(input),
                output: Box::pin(stream::select(out, err)),
                exec_id: None,
            },
            marker,
        )
    }

    async fn run(d: &mut Driver, tmp: &std::path::Path, cmd: &str) -> (i64, String) {
        let script = compose_script(
            tmp.to_str().unwrap(),
            tmp.to_str().unwrap(),
            Persistence::Carry,
            AgentVars {
                succeeding: true,
                last_exit: 0,
            },
            cmd,
        );
        let mut text = Vec::new();
        let code = d
            .run(&script, &mut |b| text.extend_from_slice(&b))
            .await
            .unwrap();
        (code, String::from_utf8(text).unwrap())
    }

    #[tokio::test]
    async fn cwd_and_variables_carry_over_and_exit_ends_only_one_command() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = local_driver(tmp.path(), "sh").await;
        let t = tmp.path();
        assert_eq!(run(&mut d, t, "mkdir -p sub && cd sub").await.0, 0);
        assert_eq!(run(&mut d, t, "X=plain; export Y=exported").await.0, 0);
        assert_eq!(run(&mut d, t, "exit 3").await.0, 3);
        let (code, out) = run(
            &mut d,
            t,
            "echo \"$X $Y\"; basename \"$PWD\"; sh -c 'echo child:$X'",
        )
        .await;
        assert_eq!(code, 0);
        assert_eq!(out, "plain exported\nsub\nchild:plain\n");
        assert_eq!(run(&mut d, t, "unset X").await.0, 0);
        assert_eq!(run(&mut d, t, "echo \"[${X:-gone}]\"").await.1, "[gone]\n");
    }

    #[tokio::test]
    async fn partial_lines_stderr_and_multi_line_commands() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = local_driver(tmp.path(), "sh").await;
        let t = tmp.path();
        let (code, out) = run(&mut d, t, "printf 'no newline'; echo err >&2").await;
        assert_eq!(code, 0);
        let mut lines: Vec<_> = out.lines().collect();
        lines.sort();
        assert_eq!(lines, ["err", "no newline"]);
        // A multi-line block is one command whose status is its last statement's.
        let (code, _) = run(&mut d, t, "false\ntrue").await;
        assert_eq!(code, 0);
        let (code, _) = run(&mut d, t, "set -e\nfalse\ntrue").await;
        assert_eq!(code, 1);
        // set -e does not persist into the next command.
        assert_eq!(
            run(&mut d, t, "false; echo after").await,
            (0, "after\n".into())
        );
        // Commands cannot read the driver's stdin.
        assert_eq!(run(&mut d, t, "cat; echo done").await, (0, "done\n".into()));
    }

    #[tokio::test]
    async fn command_text_starts_on_line_4() {
        let tmp = tempfile::tempdir().unwrap();
        let mut d = local_driver(tmp.path(), "sh").await;
        let (code, out) = run(&mut d, tmp.path(), "no_such_command_xyz").await;
        assert_eq!(code, 127);
        assert!(
            out.contains("script.sh: 4: no_such_command_xyz: not found"),
            "{out}"
        );
    }

    #[test]
    fn marker_split_across_chunks_is_found() {
        let marker = b"__m__";
        let mut s = StreamState::default();
        assert_eq!(&s.feed(b"line1\nparti", marker)[..], b"line1\n");
        assert_eq!(&s.feed(b"al__m", marker)[..], b"");
        assert_eq!(&s.feed(b"__:7\nnext", marker)[..], b"partial\n");
        assert_eq!(s.status, Some(7));
        assert_eq!(&s.buf[..], b"next");
    }
}
