//! The runtime seam: everything the engine asks of a container runtime.
//!
//! The engine owns the build lifecycle and never names Docker; it talks to containers through
//! [`Runtime`], which `localbuild-docker` implements over the Docker Engine API (local socket,
//! `DOCKER_HOST=tcp://` or `ssh://`, Podman's compatible socket). A Kubernetes executor would be
//! another implementation. Tests run builds without Docker on [`crate::local_runtime`] (cargo
//! feature `local-runtime`): a "container" is a folder of this machine and a session is a
//! `/bin/sh` child process.
//!
//! Invariant: every resource a runtime creates for a build carries that build's id (Docker: the
//! label [`BUILD_LABEL`]), so that [`Runtime::remove_build_resources`] finds whatever is left,
//! whatever happened to the process that created it.

use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::time::Duration;
use tokio::io::AsyncWrite;

/// The label on everything a runtime creates for a build; its value is the build id.
pub const BUILD_LABEL: &str = "localbuild.build-id";

/// The label naming the process that created a resource, `<pid> <start token>` (the start
/// time of `/proc/<pid>/stat`, so a reused pid is another process): `localbuild gc` leaves
/// alone what a live process still owns. Set by the runtime of a process that says who it is
/// (`localbuild-docker`'s `Docker::owned_by`).
pub const OWNER_LABEL: &str = "localbuild.owner";

/// A stream of tar bytes (never held whole in memory).
pub type TarStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A runtime failure, phrased for the user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error(
        "cannot connect to the Docker daemon at {endpoint}: {reason}\n\
         Is Docker running? Start it (`sudo systemctl start docker`, or `sudo dockerd &` on a machine \
         without systemd), or set DOCKER_HOST to a daemon that is running."
    )]
    Unreachable { endpoint: String, reason: String },
    #[error("image {image} is not available locally and could not be pulled: {reason}")]
    ImageUnavailable { image: String, reason: String },
    #[error("Docker error while trying to {action}: {reason}")]
    Api {
        action: &'static str,
        reason: String,
    },
}

impl RuntimeError {
    /// The runtime could not start a privileged container (e.g. a daemon that itself runs
    /// without all capabilities: runc's `unable to apply caps: operation not permitted`).
    pub fn is_privilege_denied(&self) -> bool {
        matches!(self, RuntimeError::Api { reason, .. }
            if reason.contains("unable to apply caps") || reason.contains("operation not permitted"))
    }
}

/// What the build container looks like.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub build_id: String,
    /// `KEY=VALUE` entries for the container environment.
    pub env: Vec<String>,
    /// `host_path:container_path[:ro]` bind mounts.
    pub binds: Vec<String>,
    pub privileged: bool,
    /// What the build gets at `/var/run/docker.sock`.
    pub docker: DockerAccess,
    /// Keep the image's entrypoint (e.g. `dockerd-entrypoint.sh`) instead of overriding it.
    pub keep_entrypoint: bool,
    /// The main process, run with stdin, stdout and stderr attached (ignored with
    /// `keep_entrypoint`); `None` = a process that only keeps the container alive.
    pub main: Option<Vec<String>>,
}

/// The container daemon a build sees at `/var/run/docker.sock`.
#[derive(Debug, Clone, Default)]
pub enum DockerAccess {
    /// None (not privileged, or an image that starts its own daemon).
    #[default]
    None,
    /// This machine's daemon itself (`--docker-host-access`): the build is root on the host.
    Host,
    /// A guarded Docker API: the runtime's filter in front of its daemon, which refuses what
    /// would reach the host (bind mounts of host paths, privileged containers, host
    /// namespaces, devices), labels what the build creates, and shows the build's own source
    /// where a command mounts it.
    Guarded(GuardedDocker),
}

/// How a build's guarded Docker API is set up.
#[derive(Debug, Clone)]
pub struct GuardedDocker {
    /// The host path of the socket file to listen on (in the build's folder), bind-mounted at
    /// `/var/run/docker.sock`.
    pub socket: std::path::PathBuf,
    /// The build's source folders in the container, each with the host folder that holds it
    /// (`Some` when the build bind-mounts its sources) or `None` (the runtime backs it with a
    /// volume of the build's).
    pub sources: Vec<(String, Option<std::path::PathBuf>)>,
    /// Says a refused call in the build's log.
    pub notify: Notify,
}

/// A callback that writes a line in the build's log.
#[derive(Clone)]
pub struct Notify(pub std::sync::Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Notify")
    }
}

/// One chunk of a session's output.
#[derive(Debug, Clone)]
pub enum Chunk {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// A process running in the container with its stdin, stdout and stderr attached.
pub struct Session {
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
    pub output: Pin<Box<dyn Stream<Item = Result<Chunk, RuntimeError>> + Send>>,
    /// The exec id, when the session is a separate process started in a running container
    /// (for its exit code).
    pub exec_id: Option<String>,
}

/// What [`Runtime::remove_build_resources`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Removed {
    pub containers: Vec<String>,
    pub volumes: Vec<String>,
    pub networks: Vec<String>,
}

/// Where the agent's files live inside the build container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// CodeBuild's `/codebuild/output`: `tmp/` (the agent's files) and `src<N>/` (sources).
    pub output_dir: String,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            output_dir: "/codebuild/output".to_owned(),
        }
    }
}

impl Layout {
    /// The agent's own files (`script.sh`, `env.sh`), as in CodeBuild.
    pub fn tmp_dir(&self) -> String {
        format!("{}/tmp", self.output_dir)
    }
}

/// An image that runs a build in place of the one asked for (its name stays the build's
/// `CODEBUILD_BUILD_IMAGE` and the record's image).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandIn {
    /// The image the container is made from.
    pub image: String,
    /// The build log's line saying which image stands in for which, and how to use the real one.
    pub note: String,
}

/// The label of the containers a pipeline's ECS deploy action runs: `<cluster>/<service>`.
pub const SERVICE_LABEL: &str = "localbuild.ecs-service";

/// A service container that runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceContainer {
    pub id: String,
    /// (container port as `80/tcp`, host port on 127.0.0.1).
    pub ports: Vec<(String, u16)>,
}

/// A container runtime, as the engine needs it. One value per process, shared by every build.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Where the agent's files live in this runtime's containers.
    fn layout(&self) -> Layout {
        Layout::default()
    }

    /// Make sure `image` is present: pull it (one tag), or make it when the runtime knows its
    /// recipe (the default image). `Some` when another image runs the build instead (a local
    /// stand-in for an image that cannot be pulled, such as AWS's CodeBuild images).
    /// `progress` receives one-line progress messages.
    async fn ensure_image(
        &self,
        image: &str,
        progress: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<Option<StandIn>, RuntimeError>;

    /// Pull `from` from a registry with `auth` (user, password) and tag it `name`; the image to
    /// run: `name`, or `from` itself when `from` names a digest (a digest cannot be re-tagged).
    /// Builds and the ECS deploy action use it for ECR references served by the local registry.
    async fn pull_as(
        &self,
        from: &str,
        auth: Option<(&str, &str)>,
        name: &str,
        progress: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<String, RuntimeError> {
        let _ = (auth, name, progress);
        Err(RuntimeError::ImageUnavailable {
            image: from.to_owned(),
            reason: "this runtime cannot pull from a registry".to_owned(),
        })
    }

    /// The image's entrypoint, if it has one.
    async fn image_entrypoint(&self, image: &str) -> Result<Vec<String>, RuntimeError>;

    /// Create and start the build container; with `spec.main`, also the attached session of its
    /// main process (attached before the start, so no output is lost). Returns the container id.
    async fn start_container(
        &self,
        spec: &ContainerSpec,
    ) -> Result<(String, Option<Session>), RuntimeError>;

    /// Start `cmd` in the container with stdin, stdout and stderr attached (no TTY).
    async fn start_session(
        &self,
        container: &str,
        cmd: Vec<String>,
        user: Option<&str>,
        working_dir: &str,
        env: &[String],
    ) -> Result<Session, RuntimeError>;

    /// Run `cmd` in the container to completion, output discarded; its exit code.
    async fn exec_status(&self, container: &str, cmd: Vec<String>) -> Result<i64, RuntimeError>;

    /// The exit code of a finished session, if known.
    async fn exec_exit_code(&self, exec_id: &str) -> Option<i64>;

    /// Is the container still running?
    async fn is_running(&self, container: &str) -> bool;

    /// Wait (at most `limit`) until the container has stopped; `false` if it has not.
    async fn wait_stopped(&self, container: &str, limit: Duration) -> bool;

    /// Extract a tar stream at `/` in the container (entries carry their full paths).
    async fn upload_tar(&self, container: &str, tar: TarStream) -> Result<(), RuntimeError>;

    /// A tar stream of `path` in the container: entries are named after the last component of
    /// `path`; symlinks are entries, not followed.
    fn download_tar(&self, container: &str, path: &str) -> TarStream;

    /// Force-remove a container and its anonymous volumes. A missing container is not an error.
    async fn remove_container(&self, container: &str) -> Result<(), RuntimeError>;

    /// The host's own address on the network build containers run on (where a build's local
    /// AWS endpoint listens). A runtime without networks says so.
    async fn gateway(&self) -> Result<std::net::IpAddr, RuntimeError> {
        Err(RuntimeError::Api {
            action: "find the build network's gateway",
            reason: "this runtime has no networks".to_owned(),
        })
    }

    /// Run `image` as a long-lived service container (its own entrypoint and command) named
    /// `name` and labelled [`SERVICE_LABEL`]` = service`, every port the image exposes published
    /// on `127.0.0.1` at an ephemeral host port; once it runs, remove every other container of
    /// that service. The pipeline's ECS deploy action uses it.
    async fn run_service(
        &self,
        image: &str,
        name: &str,
        service: &str,
    ) -> Result<ServiceContainer, RuntimeError> {
        let _ = (image, name, service);
        Err(RuntimeError::Api {
            action: "run a service container",
            reason: "this runtime cannot run service containers".to_owned(),
        })
    }

    /// Remove everything created for one build (`Some(build_id)`), or for every build (`None`,
    /// for `localbuild gc`).
    async fn remove_build_resources(&self, build_id: Option<&str>)
    -> Result<Removed, RuntimeError>;
}
