//! The sources: streamed into the container as a tar (never fully in memory, never following
//! symlinks), whole or only the files git does not ignore ([`tar_stream_files`]), and the git
//! revision of a work tree.

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
    tar_stream_of(dir, prefix, None)
}

/// A tar of one empty folder, `prefix`: the source folder of a build without a source
/// (`NO_SOURCE`), which CodeBuild still creates and runs the commands in.
pub fn empty_dir_tar(prefix: &str) -> ReceiverStream<std::io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(1);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o755);
    header.set_size(0);
    let mut builder = tar::Builder::new(Vec::new());
    let bytes = builder
        .append_data(
            &mut header,
            format!("{}/", prefix.trim_end_matches('/')),
            std::io::empty(),
        )
        .and_then(|()| builder.into_inner());
    let _ = tx.try_send(bytes.map(Bytes::from));
    ReceiverStream::new(rx)
}

/// Like [`tar_stream`], but only `files` (paths relative to `dir`, e.g. from
/// `localbuild_sources::work_tree_files`) and `dir/.git`, with their parent folders. A listed
/// folder (a submodule, a nested repository) and `.git` go in whole; nothing is followed.
pub fn tar_stream_files(
    dir: PathBuf,
    prefix: String,
    files: Vec<PathBuf>,
) -> ReceiverStream<std::io::Result<Bytes>> {
    tar_stream_of(dir, prefix, Some(files))
}

fn tar_stream_of(
    dir: PathBuf,
    prefix: String,
    files: Option<Vec<PathBuf>>,
) -> ReceiverStream<std::io::Result<Bytes>> {
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
        let appended = match files {
            None => builder.append_dir_all(&prefix, &dir),
            Some(files) => append_listed(&mut builder, &dir, Path::new(&prefix), files),
        };
        let result = appended
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

/// Append `dir` itself, `.git`, and each listed entry with its parent folders (once each).
fn append_listed<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &Path,
    mut files: Vec<PathBuf>,
) -> std::io::Result<()> {
    builder.append_dir(prefix, dir)?;
    if dir.join(".git").symlink_metadata().is_ok() {
        files.push(PathBuf::from(".git"));
    }
    files.sort();
    files.dedup();
    // Parent folders already written (true) or found to be symlinks (false: never followed).
    let mut folders = std::collections::HashMap::new();
    'files: for rel in files {
        // Only plain relative names: never `..`, never absolute.
        if !rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            continue;
        }
        let mut parent = PathBuf::new();
        let parents: Vec<_> = rel.components().collect();
        for c in &parents[..parents.len().saturating_sub(1)] {
            parent.push(c);
            let ok = match folders.get(&parent) {
                Some(&ok) => ok,
                None => {
                    let on_host = dir.join(&parent);
                    let ok = match on_host.symlink_metadata() {
                        Ok(m) => m.is_dir(),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
                        Err(e) => return Err(e),
                    };
                    if ok {
                        builder.append_dir(prefix.join(&parent), on_host)?;
                    }
                    folders.insert(parent.clone(), ok);
                    ok
                }
            };
            if !ok {
                continue 'files;
            }
        }
        let on_host = dir.join(&rel);
        let meta = match on_host.symlink_metadata() {
            Ok(m) => m,
            // Gone since it was listed.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if meta.is_dir() {
            folders.insert(rel.clone(), true);
            builder.append_dir_all(prefix.join(&rel), &on_host)?;
        } else {
            builder.append_path_with_name(&on_host, prefix.join(&rel))?;
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    /// The entries of a tar stream: name, and link target for symlinks.
    async fn entries(stream: ReceiverStream<std::io::Result<Bytes>>) -> Vec<(String, String)> {
        let chunks: Vec<_> = stream.collect().await;
        let bytes: Vec<u8> = chunks.into_iter().flat_map(|c| c.unwrap()).collect();
        let mut archive = tar::Archive::new(&bytes[..]);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.display().to_string())
                    .unwrap_or_default();
                (e.path().unwrap().display().to_string(), link)
            })
            .collect()
    }

    #[tokio::test]
    async fn listed_files_come_with_their_folders_and_git_and_links_stay_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join(".git/refs")).unwrap();
        std::fs::write(d.join(".git/HEAD"), "ref").unwrap();
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/b/c.txt"), "c").unwrap();
        std::fs::write(d.join("ignored.txt"), "i").unwrap();
        std::fs::create_dir_all(d.join("real")).unwrap();
        std::fs::write(d.join("real/secret"), "s").unwrap();
        std::os::unix::fs::symlink("real", d.join("via")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", d.join("link")).unwrap();
        let files = ["a/b/c.txt", "link", "via/secret", "../x", "gone.txt"]
            .map(PathBuf::from)
            .to_vec();
        let got = entries(tar_stream_files(d.to_owned(), "src".into(), files)).await;
        let names: Vec<_> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "src",
                "src/.git/",
                "src/.git/HEAD",
                "src/.git/refs",
                "src/a",
                "src/a/b",
                "src/a/b/c.txt",
                "src/link",
            ]
        );
        assert_eq!(got[7].1, "/etc/hostname");
    }
}
