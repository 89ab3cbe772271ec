//! The primary source: streamed into the container as a tar (never fully in memory), and its
//! git revision when it is a git work tree.

use bytes::Bytes;
use std::io::Write;
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// A `Write` that hands 64 KiB chunks to an async channel (used from a blocking thread).
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "upload ended"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// A tar stream of `dir`'s contents under `prefix` (a path without leading `/`), built on a
/// blocking thread. Symlinks are stored as links, never followed. The host directory is only read.
pub fn tar_stream(dir: PathBuf, prefix: String) -> ReceiverStream<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        let mut builder = tar::Builder::new(ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        });
        builder.follow_symlinks(false);
        // Docker cannot extract GNU sparse entries (type S).
        builder.sparse(false);
        let result = builder
            .append_dir_all(&prefix, &dir)
            .and_then(|()| builder.into_inner())
            .and_then(|mut w| w.flush());
        if let Err(e) = result {
            let _ = err_tx.blocking_send(Err(std::io::Error::new(
                e.kind(),
                format!("reading the source directory {}: {e}", dir.display()),
            )));
        }
    });
    ReceiverStream::new(rx)
}

/// The commit checked out in `dir`, if it is a git work tree and `git` is installed.
pub fn git_head(dir: &Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "-q", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (sha.len() == 40).then_some(sha)
}
