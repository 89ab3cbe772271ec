//! A [`Runtime`] without a container daemon, for tests (cargo feature `local-runtime`).
//!
//! A "container" is a folder of this machine and its processes are `/bin/sh` children: whole
//! builds run through the engine (every phase, the shell protocol, pauses, stop and timeout)
//! with no Docker, so the engine's and the server's tests can run builds anywhere. Not an
//! isolation boundary: commands run as this process's user, in its file system. The one image
//! it has is [`LocalRuntime::IMAGE`]; any other is unavailable (a provisioning fault). A build's
//! network is the loopback interface (its local AWS endpoint listens on 127.0.0.1).
//!
//! Invariant: every process it starts is a child of a container, killed when the container is
//! removed (and when the runtime's build resources are removed).

use crate::runtime::{
    Chunk, ContainerSpec, Layout, Removed, Runtime, RuntimeError, Session, StandIn, TarStream,
};
use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

/// Processes of this machine as build containers, rooted in a temporary folder.
pub struct LocalRuntime {
    root: tempfile::TempDir,
    children: Mutex<HashMap<String, Vec<u32>>>,
}

impl LocalRuntime {
    /// The one image this runtime has.
    pub const IMAGE: &str = "local";

    /// A runtime whose containers live under a new temporary folder (removed on drop).
    pub fn new() -> std::io::Result<LocalRuntime> {
        Ok(LocalRuntime {
            root: tempfile::tempdir()?,
            children: Mutex::default(),
        })
    }

    /// The folder the containers' files live in.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    fn children(&self) -> MutexGuard<'_, HashMap<String, Vec<u32>>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Start `cmd` with its standard streams attached, as a session of `container`.
    fn spawn(
        &self,
        container: &str,
        cmd: &[String],
        env: &[String],
        dir: &Path,
    ) -> Result<Session, RuntimeError> {
        let Some((program, args)) = cmd.split_first() else {
            return Err(no_command());
        };
        let mut command = tokio::process::Command::new(program);
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for kv in env {
            if let Some((k, v)) = kv.split_once('=') {
                command.env(k, v);
            }
        }
        let mut child = command.spawn().map_err(|e| RuntimeError::Api {
            action: "start a local process",
            reason: e.to_string(),
        })?;
        let pid = child.id().unwrap_or(0);
        self.children()
            .entry(container.to_owned())
            .or_default()
            .push(pid);
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout =
            tokio_util::io::ReaderStream::new(child.stdout.take().expect("stdout is piped"))
                .map(|b| Ok(Chunk::Stdout(b.unwrap_or_default())));
        let stderr =
            tokio_util::io::ReaderStream::new(child.stderr.take().expect("stderr is piped"))
                .map(|b| Ok(Chunk::Stderr(b.unwrap_or_default())));
        tokio::spawn(async move {
            let _ = child.wait().await;
        });
        Ok(Session {
            input: Box::pin(stdin),
            output: Box::pin(stdout.merge(stderr)),
            exec_id: None,
        })
    }

    fn kill(&self, container: &str) {
        for pid in self.children().remove(container).unwrap_or_default() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }

    fn alive(&self, container: &str) -> bool {
        let children = self.children();
        children.get(container).is_some_and(|pids| {
            pids.first()
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
        })
    }
}

#[async_trait]
impl Runtime for LocalRuntime {
    fn layout(&self) -> Layout {
        Layout {
            output_dir: self
                .root
                .path()
                .join("codebuild/output")
                .display()
                .to_string(),
        }
    }

    async fn ensure_image(
        &self,
        image: &str,
        _progress: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<Option<StandIn>, RuntimeError> {
        match image {
            LocalRuntime::IMAGE => Ok(None),
            _ => Err(RuntimeError::ImageUnavailable {
                image: image.to_owned(),
                reason: "no such local image".to_owned(),
            }),
        }
    }

    async fn image_entrypoint(&self, _image: &str) -> Result<Vec<String>, RuntimeError> {
        Ok(vec![])
    }

    async fn start_container(
        &self,
        spec: &ContainerSpec,
    ) -> Result<(String, Option<Session>), RuntimeError> {
        let id = spec.name.clone();
        let main = spec.main.clone().unwrap_or_default();
        let session = self.spawn(&id, &main, &spec.env, self.root.path())?;
        Ok((id, Some(session)))
    }

    async fn start_session(
        &self,
        container: &str,
        cmd: Vec<String>,
        _user: Option<&str>,
        _working_dir: &str,
        env: &[String],
    ) -> Result<Session, RuntimeError> {
        self.spawn(container, &cmd, env, self.root.path())
    }

    async fn exec_status(&self, _container: &str, cmd: Vec<String>) -> Result<i64, RuntimeError> {
        let Some((program, args)) = cmd.split_first() else {
            return Err(no_command());
        };
        let status = tokio::process::Command::new(program)
            .args(args)
            .status()
            .await
            .map_err(|e| RuntimeError::Api {
                action: "run a local process",
                reason: e.to_string(),
            })?;
        Ok(status.code().unwrap_or(-1).into())
    }

    async fn exec_exit_code(&self, _exec_id: &str) -> Option<i64> {
        None
    }

    async fn is_running(&self, container: &str) -> bool {
        self.alive(container)
    }

    async fn wait_stopped(&self, container: &str, limit: Duration) -> bool {
        let until = tokio::time::Instant::now() + limit;
        while self.alive(container) && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        !self.alive(container)
    }

    async fn upload_tar(&self, _container: &str, tar: TarStream) -> Result<(), RuntimeError> {
        let mut bytes = Vec::new();
        let mut tar = tar;
        while let Some(chunk) = tar.next().await {
            bytes.extend_from_slice(&chunk.map_err(|e| RuntimeError::Api {
                action: "read a tar stream",
                reason: e.to_string(),
            })?);
        }
        // Entry names are the full paths under the layout's root, without the leading `/`.
        tar::Archive::new(bytes.as_slice())
            .unpack("/")
            .map_err(|e| RuntimeError::Api {
                action: "unpack a tar stream",
                reason: e.to_string(),
            })
    }

    fn download_tar(&self, _container: &str, path: &str) -> TarStream {
        let path = PathBuf::from(path);
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        std::thread::spawn(move || {
            let mut builder = tar::Builder::new(Vec::new());
            builder.follow_symlinks(false);
            let name = path.file_name().unwrap_or_default().to_owned();
            let built = builder
                .append_dir_all(name, &path)
                .and_then(|()| builder.into_inner());
            let _ = tx.blocking_send(built.map(Bytes::from));
        });
        Box::pin(ReceiverStream::new(rx))
    }

    /// The build's processes run on this machine: its "network" is the loopback interface,
    /// where the build's local AWS endpoint listens.
    async fn gateway(&self) -> Result<std::net::IpAddr, RuntimeError> {
        Ok(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    }

    async fn remove_container(&self, container: &str) -> Result<(), RuntimeError> {
        self.kill(container);
        Ok(())
    }

    async fn remove_build_resources(
        &self,
        build_id: Option<&str>,
    ) -> Result<Removed, RuntimeError> {
        // One runtime per test build: everything it started belongs to that build.
        let _ = build_id;
        let names: Vec<String> = self.children().keys().cloned().collect();
        names.iter().for_each(|n| self.kill(n));
        Ok(Removed::default())
    }
}

fn no_command() -> RuntimeError {
    RuntimeError::Api {
        action: "start a local process",
        reason: "no command given".to_owned(),
    }
}
