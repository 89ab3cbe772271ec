//! Talks to Docker (bollard) and nowhere else.
//!
//! Owns the connection to the daemon (respecting `DOCKER_HOST`), images (inspect, pull, and
//! localbuild's image recipes in [`image`]), the build container's lifecycle, tar uploads and
//! downloads, attached exec sessions, and a person's shell with a TTY (`localbuild attach`,
//! `localbuild shell`), and [`guard`], the privileged builds' filtering proxy of the Engine
//! API (hyper, to the daemon's socket). Every other module speaks this module's types only;
//! no bollard type crosses its boundary except `&bollard::Docker` inside `docker::*`.
//!
//! Invariant: every container, volume and network created here carries the label
//! [`BUILD_LABEL`]` = <build id>`, so that [`Docker::remove_build_resources`] (and `localbuild gc`)
//! can find and remove it whatever happened to the process that created it. A `Docker` that
//! knows its process ([`Docker::owned_by`]) also labels them [`OWNER_LABEL`], so that
//! `localbuild gc` ([`Docker::remove_abandoned_resources`]) leaves alone what a live process
//! still runs.

pub mod guard;
pub mod image;

use bollard::container::{AttachContainerResults, LogOutput};
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ExecConfig, HostConfig, HostConfigLogConfig, PortBinding,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use localbuild_engine::runtime::Runtime;
use localbuild_engine::runtime::{DockerAccess, GuardedDocker};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use localbuild_engine::runtime::{
    BUILD_LABEL, Chunk, ContainerSpec, OWNER_LABEL, Removed, RuntimeError as DockerError,
    SERVICE_LABEL, ServiceContainer, Session, StandIn, TarStream,
};

/// The first 12 letters and digits of a build id's uuid, for resource names.
fn short_id(build_id: &str) -> String {
    build_id
        .rsplit(':')
        .next()
        .unwrap_or(build_id)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect()
}

fn api(action: &'static str) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    move |e| DockerError::Api {
        action,
        reason: e.to_string(),
    }
}

/// An interactive process with a TTY in a container ([`Docker::start_tty`]).
pub struct Tty {
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    pub output: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = Result<bytes::Bytes, DockerError>> + Send>,
    >,
    pub exec_id: String,
}

/// A connected Docker daemon: the [`Runtime`] of every build in this process (cheap to clone).
#[derive(Clone)]
pub struct Docker {
    api: bollard::Docker,
    endpoint: String,
    /// The value of [`OWNER_LABEL`] on what this client creates (`None`: no such label).
    owner: Option<String>,
    /// The guarded Docker APIs of running builds, by build id (dropped: stopped).
    guards: Arc<Mutex<HashMap<String, guard::Running>>>,
    /// Where a build's Docker commands find registries this machine runs (ECR).
    registry: Option<Arc<dyn guard::policy::RegistryMap>>,
}

/// What `localbuild gc` found: removed (or, for a dry run, would remove) and left alone.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sweep {
    pub removed: Removed,
    /// Containers left alone because a live process runs their build: (name, build id).
    pub kept: Vec<(String, String)>,
}

/// Says whether a labelled resource belongs to a build a live process still runs, from its
/// build id and its owner label (if it has one).
pub type Running<'a> = &'a (dyn Fn(&str, Option<&str>) -> bool + Sync);

/// The daemon's address as the user configured it: `DOCKER_HOST`, or the default socket.
pub fn endpoint() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h,
        _ => "unix:///var/run/docker.sock".to_owned(),
    }
}

impl Docker {
    /// Connect and check that the daemon answers (within a few seconds).
    pub async fn connect() -> Result<Docker, DockerError> {
        let endpoint = endpoint();
        let unreachable = |reason: String| DockerError::Unreachable {
            endpoint: endpoint.clone(),
            reason,
        };
        let api = bollard::Docker::connect_with_host(&endpoint)
            .map_err(|e| unreachable(e.to_string()))?
            .with_timeout(Duration::from_secs(3600));
        match tokio::time::timeout(Duration::from_secs(10), api.ping()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(unreachable(root_cause(&e))),
            Err(_) => return Err(unreachable("no answer within 10 s".to_owned())),
        }
        Ok(Docker {
            api,
            endpoint,
            owner: None,
            guards: Arc::default(),
            registry: None,
        })
    }

    /// Label everything created from now on [`OWNER_LABEL`]` = owner` (the process's
    /// `<pid> <start token>`), so that `localbuild gc` can tell whether its owner still runs.
    pub fn owned_by(mut self, owner: String) -> Docker {
        self.owner = Some(owner);
        self
    }

    /// Map registry hosts in the image references of builds' Docker commands (through their
    /// guarded Docker API) to registries this machine runs: ECR's
    /// `ACCOUNT.dkr.ecr.REGION.amazonaws.com` to a local registry's `127.0.0.1:PORT`.
    pub fn with_registry_map(mut self, map: Arc<dyn guard::policy::RegistryMap>) -> Docker {
        self.registry = Some(map);
        self
    }

    /// A build's guarded Docker API: the volume that holds its copied source (mounted into
    /// `binds`), the proxy on `g.socket`. The socket's host path.
    async fn start_guard(
        &self,
        spec: &ContainerSpec,
        g: &GuardedDocker,
        binds: &mut Vec<String>,
    ) -> Result<std::path::PathBuf, DockerError> {
        let refuse = |reason: String| DockerError::Api {
            action: "give the build its guarded Docker API",
            reason,
        };
        let upstream = self.socket_path().ok_or_else(|| {
            refuse(format!(
                "the daemon is not on a Unix socket of this machine ({}); run with --docker-host-access to give the build that daemon itself",
                self.endpoint
            ))
        })?;
        let mut sources = vec![];
        for (path, host) in &g.sources {
            let backing = match host {
                Some(host) => guard::policy::Backing::Host(host.clone()),
                None => {
                    let name = format!(
                        "localbuild-{}-src-{}",
                        short_id(&spec.build_id),
                        &uuid::Uuid::new_v4().simple().to_string()[..8]
                    );
                    self.api
                        .create_volume(bollard::models::VolumeCreateRequest {
                            name: Some(name.clone()),
                            labels: Some(self.labels(spec.build_id.clone())),
                            ..Default::default()
                        })
                        .await
                        .map_err(api("create the build's source volume"))?;
                    binds.push(format!("{name}:{path}"));
                    guard::policy::Backing::Volume(name)
                }
            };
            sources.push((path.clone(), backing));
        }
        sources.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let policy = guard::policy::Policy {
            labels: self.labels(spec.build_id.clone()),
            sources,
            registry: self.registry.clone(),
        };
        let socket = std::path::absolute(&g.socket).map_err(|e| refuse(e.to_string()))?;
        let running = guard::start(
            &socket,
            std::path::Path::new(upstream),
            &spec.build_id,
            policy,
            g.notify.clone(),
        )
        .map_err(|e| refuse(format!("cannot listen on {}: {e}", socket.display())))?;
        let socket = running.path().to_owned();
        self.guards
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(spec.build_id.clone(), running);
        Ok(socket)
    }

    /// The labels of a resource made for `build_id`.
    fn labels(&self, build_id: String) -> HashMap<String, String> {
        let mut labels = HashMap::from([(BUILD_LABEL.to_owned(), build_id)]);
        if let Some(owner) = &self.owner {
            labels.insert(OWNER_LABEL.to_owned(), owner.clone());
        }
        labels
    }

    /// The host path of the daemon's Unix socket, when it is one (for `-d` builds).
    pub fn socket_path(&self) -> Option<&str> {
        self.endpoint.strip_prefix("unix://")
    }

    /// The bollard client, for the other parts of this module.
    pub(crate) fn api(&self) -> &bollard::Docker {
        &self.api
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool, DockerError> {
        match self.api.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(api("inspect an image")(e)),
        }
    }

    /// Make sure `image` is present: pull it (one tag, never all) when it is not.
    pub async fn ensure_pulled(
        &self,
        image: &str,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), DockerError> {
        if self.image_exists(image).await? {
            return Ok(());
        }
        progress(&format!("Pulling image {image}"));
        self.pull(image, progress).await
    }

    /// Pull `image` (one tag, never all); a failure is [`DockerError::ImageUnavailable`].
    pub async fn pull(
        &self,
        image: &str,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), DockerError> {
        self.pull_with(image, None, progress)
            .await
            .map_err(|reason| DockerError::ImageUnavailable {
                image: image.to_owned(),
                reason,
            })
    }

    /// Pull `image` (one tag) with `credentials` for its registry, reporting the daemon's
    /// status lines; the root cause of a failure.
    async fn pull_with(
        &self,
        image: &str,
        credentials: Option<bollard::auth::DockerCredentials>,
        progress: &mut (dyn FnMut(&str) + Send),
    ) -> Result<(), String> {
        let (from_image, tag) = split_image_ref(image);
        let opts = CreateImageOptionsBuilder::default()
            .from_image(from_image)
            .tag(tag)
            .build();
        let mut stream = self.api.create_image(Some(opts), None, credentials);
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(status) = info.status.as_deref()
                        && info.id.is_none()
                    {
                        progress(status);
                    }
                }
                Err(e) => return Err(root_cause(&e)),
            }
        }
        Ok(())
    }

    /// What [`Docker::remove_build_resources`] would remove.
    pub async fn list_build_resources(
        &self,
        build_id: Option<&str>,
    ) -> Result<Removed, DockerError> {
        Ok(self.build_resources(build_id, false, None).await?.removed)
    }

    /// `localbuild gc`: remove every labelled container, volume and network except those of
    /// builds that `running` says a live process still runs.
    pub async fn remove_abandoned_resources(
        &self,
        running: Running<'_>,
    ) -> Result<Sweep, DockerError> {
        self.build_resources(None, true, Some(running)).await
    }

    /// What [`Docker::remove_abandoned_resources`] would remove (`localbuild gc --dry-run`).
    pub async fn list_abandoned_resources(
        &self,
        running: Running<'_>,
    ) -> Result<Sweep, DockerError> {
        self.build_resources(None, false, Some(running)).await
    }

    /// The running container of a build (paused, or kept with `--keep-container`), by its
    /// label.
    pub async fn build_container(&self, build_id: &str) -> Result<Option<String>, DockerError> {
        let label = format!("{BUILD_LABEL}={build_id}");
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let opts = ListContainersOptionsBuilder::default()
            .filters(&filters)
            .build();
        Ok(self
            .api
            .list_containers(Some(opts))
            .await
            .map_err(api("list containers"))?
            .into_iter()
            .find_map(|c| c.id))
    }

    /// Start `cmd` in a running container with a TTY (a person's interactive shell: `env`
    /// added to the container's, `cols`×`rows` characters). The TTY's output is one stream.
    pub async fn start_tty(
        &self,
        container: &str,
        cmd: Vec<String>,
        env: &[String],
        (cols, rows): (u16, u16),
    ) -> Result<Tty, DockerError> {
        let exec = self
            .api
            .create_exec(
                container,
                ExecConfig {
                    cmd: Some(cmd),
                    env: Some(env.to_vec()),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(api("open a shell in the build container"))?;
        let start = StartExecOptions {
            detach: false,
            tty: true,
            output_capacity: None,
        };
        match self
            .api
            .start_exec(&exec.id, Some(start))
            .await
            .map_err(api("open a shell in the build container"))?
        {
            StartExecResults::Attached { output, input } => {
                let tty = Tty {
                    input,
                    output: Box::pin(output.filter_map(|frame| async move {
                        match frame {
                            Ok(LogOutput::StdIn { .. }) => None,
                            Ok(f) => Some(Ok(f.into_bytes())),
                            Err(e) => Some(Err(api("read the shell's output")(e))),
                        }
                    })),
                    exec_id: exec.id,
                };
                // Best effort: the shell may not have its TTY yet; the next resize fixes it.
                let _ = self.resize_tty(&tty.exec_id, cols, rows).await;
                Ok(tty)
            }
            StartExecResults::Detached => Err(DockerError::Api {
                action: "open a shell in the build container",
                reason: "the daemon started it detached".to_owned(),
            }),
        }
    }

    /// Set the size of a TTY started by [`Docker::start_tty`].
    pub async fn resize_tty(&self, exec_id: &str, cols: u16, rows: u16) -> Result<(), DockerError> {
        let opts = bollard::query_parameters::ResizeExecOptionsBuilder::default()
            .w(i32::from(cols))
            .h(i32::from(rows))
            .build();
        self.api
            .resize_exec(exec_id, opts)
            .await
            .map_err(api("resize the shell's terminal"))
    }

    /// The labelled resources of one build (`Some`) or all; removed if `remove`; with
    /// `running`, those of builds a live process still runs are left alone (and listed as
    /// kept when they are containers).
    async fn build_resources(
        &self,
        build_id: Option<&str>,
        remove: bool,
        running: Option<Running<'_>>,
    ) -> Result<Sweep, DockerError> {
        let label = match build_id {
            Some(id) => format!("{BUILD_LABEL}={id}"),
            None => BUILD_LABEL.to_owned(),
        };
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let live = |labels: Option<&HashMap<String, String>>| {
            let (Some(running), Some(labels)) = (running, labels) else {
                return None;
            };
            let id = labels.get(BUILD_LABEL)?;
            running(id, labels.get(OWNER_LABEL).map(String::as_str)).then(|| id.clone())
        };
        let mut sweep = Sweep::default();

        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        for c in self
            .api
            .list_containers(Some(opts))
            .await
            .map_err(api("list containers"))?
        {
            let Some(id) = c.id else { continue };
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_owned())
                .unwrap_or_else(|| id.clone());
            if let Some(build) = live(c.labels.as_ref()) {
                sweep.kept.push((name, build));
                continue;
            }
            if remove {
                self.remove_container(&id).await?;
            }
            sweep.removed.containers.push(name);
        }

        let opts = ListVolumesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let volumes = self
            .api
            .list_volumes(Some(opts))
            .await
            .map_err(api("list volumes"))?;
        for v in volumes.volumes.unwrap_or_default() {
            if live(Some(&v.labels)).is_some() {
                continue;
            }
            if remove {
                let opts = RemoveVolumeOptionsBuilder::default().force(true).build();
                self.api
                    .remove_volume(&v.name, Some(opts))
                    .await
                    .map_err(api("remove a volume"))?;
            }
            sweep.removed.volumes.push(v.name);
        }

        let opts = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        for n in self
            .api
            .list_networks(Some(opts))
            .await
            .map_err(api("list networks"))?
        {
            let Some(name) = n.name else { continue };
            if live(n.labels.as_ref()).is_some() {
                continue;
            }
            if remove {
                match self.api.remove_network(&name).await {
                    Ok(()) => {}
                    // Still in use by a running container (a live build's network made
                    // without the owner label, by an older localbuild): left alone.
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 403,
                        message,
                    }) if message.contains("active endpoints") => continue,
                    Err(e) => return Err(api("remove a network")(e)),
                }
            }
            sweep.removed.networks.push(name);
        }
        Ok(sweep)
    }
}

#[async_trait::async_trait]
impl Runtime for Docker {
    /// localbuild's own images are made from their recipes ([`image`]); an AWS CodeBuild
    /// image name that is not present locally gets its stand-in ([`image::stand_in_for`]);
    /// any other image is pulled.
    async fn ensure_image(
        &self,
        image: &str,
        progress: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<Option<StandIn>, DockerError> {
        let unavailable = |e: image::ImageError| DockerError::ImageUnavailable {
            image: image.to_owned(),
            reason: e.to_string(),
        };
        if let Some(recipe) = image::recipe_of(image) {
            image::ensure_recipe_image(self, recipe, progress)
                .await
                .map_err(unavailable)?;
            return Ok(None);
        }
        if let Some(recipe) = image::stand_in_for(image)
            && !self.image_exists(image).await?
        {
            image::ensure_recipe_image(self, recipe, progress)
                .await
                .map_err(unavailable)?;
            return Ok(Some(StandIn {
                image: recipe.image.to_owned(),
                note: image::stand_in_line(image, recipe),
            }));
        }
        self.ensure_pulled(image, progress).await.map(|()| None)
    }

    /// Pull `from` with `auth` (user, password) for its registry and tag it `name` (the image
    /// to run: `name`, or `from` when it names a digest).
    async fn pull_as(
        &self,
        from: &str,
        auth: Option<(&str, &str)>,
        name: &str,
        progress: &mut (dyn for<'a> FnMut(&'a str) + Send),
    ) -> Result<String, DockerError> {
        let credentials = auth.map(|(user, password)| bollard::auth::DockerCredentials {
            username: Some(user.to_owned()),
            password: Some(password.to_owned()),
            serveraddress: from.split_once('/').map(|(h, _)| h.to_owned()),
            ..Default::default()
        });
        self.pull_with(from, credentials, progress)
            .await
            .map_err(|cause| DockerError::ImageUnavailable {
                image: name.to_owned(),
                reason: format!("pulling {from}: {cause}"),
            })?;
        if from.contains('@') {
            return Ok(from.to_owned());
        }
        let (repo, tag) = split_image_ref(name);
        let opts = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.api
            .tag_image(from, Some(opts))
            .await
            .map_err(api("tag the pulled image"))?;
        // The registry's address changes between starts: keep only `name` (an untag; the image
        // stays under `name`).
        let _ = self
            .api
            .remove_image(
                from,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
        Ok(name.to_owned())
    }

    /// The image's entrypoint, if it has one.
    async fn image_entrypoint(&self, image: &str) -> Result<Vec<String>, DockerError> {
        let inspect = self
            .api
            .inspect_image(image)
            .await
            .map_err(api("inspect an image"))?;
        Ok(inspect
            .config
            .and_then(|c| c.entrypoint)
            .unwrap_or_default())
    }

    /// Create and start the build container; with `spec.main`, also the attached session of its
    /// main process (attached before the start, so no output is lost).
    async fn start_container(
        &self,
        spec: &ContainerSpec,
    ) -> Result<(String, Option<Session>), DockerError> {
        let keep_alive = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done";
        let alive = || vec!["/bin/sh".to_owned(), "-c".to_owned(), keep_alive.to_owned()];
        let main = spec.main.clone().filter(|_| !spec.keep_entrypoint);
        let (entrypoint, cmd) = match (&main, spec.keep_entrypoint) {
            (_, true) => (None, alive()),
            (Some(main), false) => (Some(main.clone()), vec![]),
            (None, false) => (Some(alive()), vec![]),
        };
        let attached = main.is_some();
        let mut binds = spec.binds.clone();
        match &spec.docker {
            DockerAccess::None => {}
            DockerAccess::Host => {
                if let Some(sock) = self.socket_path() {
                    binds.push(format!("{sock}:/var/run/docker.sock"));
                }
            }
            DockerAccess::Guarded(g) => {
                let socket = self.start_guard(spec, g, &mut binds).await?;
                binds.push(format!("{}:/var/run/docker.sock", socket.display()));
            }
        }
        binds.sort();
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            entrypoint,
            cmd: Some(cmd),
            env: Some(spec.env.clone()),
            open_stdin: Some(attached),
            stdin_once: Some(attached),
            attach_stdin: Some(attached),
            attach_stdout: Some(attached),
            attach_stderr: Some(attached),
            labels: Some(self.labels(spec.build_id.clone())),
            host_config: Some(HostConfig {
                privileged: Some(spec.privileged),
                binds: Some(binds),
                // The build log is localbuild's; the daemon keeping a copy of every byte of
                // output (json-file) would only cost time and disk.
                log_config: Some(HostConfigLogConfig {
                    typ: Some("none".to_owned()),
                    config: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let id = self
            .api
            .create_container(Some(opts), body)
            .await
            .map_err(api("create the build container"))?
            .id;
        let session = if attached {
            let opts = AttachContainerOptionsBuilder::default()
                .stdin(true)
                .stdout(true)
                .stderr(true)
                .stream(true)
                .build();
            let AttachContainerResults { output, input } = self
                .api
                .attach_container(&id, Some(opts))
                .await
                .map_err(api("attach to the build container"))?;
            Some(Session {
                input,
                output: Box::pin(output.filter_map(|frame| async move { chunk(frame) })),
                exec_id: None,
            })
        } else {
            None
        };
        self.api
            .start_container(&id, None)
            .await
            .map_err(api("start the build container"))?;
        Ok((id, session))
    }

    /// Start `cmd` in the container with stdin, stdout and stderr attached (no TTY).
    async fn start_session(
        &self,
        id: &str,
        cmd: Vec<String>,
        user: Option<&str>,
        working_dir: &str,
        env: &[String],
    ) -> Result<Session, DockerError> {
        let exec = self
            .api
            .create_exec(
                id,
                ExecConfig {
                    cmd: Some(cmd),
                    user: user.map(str::to_owned),
                    working_dir: Some(working_dir.to_owned()),
                    env: Some(env.to_vec()),
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    ..Default::default()
                },
            )
            .await
            .map_err(api("start a command in the build container"))?;
        let start = StartExecOptions {
            detach: false,
            tty: false,
            output_capacity: Some(256 * 1024),
        };
        match self
            .api
            .start_exec(&exec.id, Some(start))
            .await
            .map_err(api("start a command in the build container"))?
        {
            StartExecResults::Attached { output, input } => {
                let output = output.filter_map(|frame| async move { chunk(frame) });
                Ok(Session {
                    input,
                    output: Box::pin(output),
                    exec_id: Some(exec.id),
                })
            }
            StartExecResults::Detached => Err(DockerError::Api {
                action: "attach to a command",
                reason: "the daemon started it detached".to_owned(),
            }),
        }
    }

    /// Run `cmd` in the container to completion, output discarded; its exit code.
    async fn exec_status(&self, id: &str, cmd: Vec<String>) -> Result<i64, DockerError> {
        let exec = self
            .api
            .create_exec(
                id,
                ExecConfig {
                    cmd: Some(cmd),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(api("run a command in the build container"))?;
        if let StartExecResults::Attached { mut output, .. } = self
            .api
            .start_exec(&exec.id, None)
            .await
            .map_err(api("run a command in the build container"))?
        {
            while output.next().await.is_some() {}
        }
        Ok(self.exec_exit_code(&exec.id).await.unwrap_or(-1))
    }

    /// The exit code of a finished exec, if Docker knows it.
    async fn exec_exit_code(&self, exec_id: &str) -> Option<i64> {
        self.api.inspect_exec(exec_id).await.ok()?.exit_code
    }

    /// Is the container still running?
    async fn is_running(&self, id: &str) -> bool {
        match self.api.inspect_container(id, None).await {
            Ok(c) => c.state.and_then(|s| s.running).unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Wait (at most `limit`) until the container has stopped; `false` if it has not.
    async fn wait_stopped(&self, id: &str, limit: Duration) -> bool {
        let wait = async {
            let mut stream = self.api.wait_container(id, None);
            stream.next().await
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Extract a tar stream at `/` in the container (entries carry their full paths).
    async fn upload_tar(&self, id: &str, tar: TarStream) -> Result<(), DockerError> {
        let opts = UploadToContainerOptionsBuilder::default().path("/").build();
        self.api
            .upload_to_container(id, Some(opts), bollard::body_try_stream(tar))
            .await
            .map_err(api("copy files into the build container"))
    }

    /// A tar stream of `path` in the container (Docker's archive API: entries are named after
    /// the last component of `path`; symlinks are entries, not followed). Nothing is buffered:
    /// the caller reads it as it arrives.
    fn download_tar(&self, id: &str, path: &str) -> TarStream {
        let opts = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        Box::pin(
            self.api
                .download_from_container(id, Some(opts))
                .map(|r| r.map_err(|e| std::io::Error::other(root_cause(&e)))),
        )
    }

    /// Force-remove a container and its anonymous volumes. A missing container is not an error.
    async fn remove_container(&self, id: &str) -> Result<(), DockerError> {
        let opts = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.api.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(api("remove the build container")(e)),
        }
    }

    /// The host's address on Docker's default bridge (`docker0`'s gateway), where build
    /// containers run: a build's local AWS endpoint listens there. Read from the daemon each
    /// time (one inspect, a few ms), so a restarted daemon with another `bip` is followed.
    async fn gateway(&self) -> Result<std::net::IpAddr, DockerError> {
        let action = "find the default bridge network's gateway";
        let inspect = self
            .api
            .inspect_network("bridge", None)
            .await
            .map_err(api(action))?;
        inspect
            .ipam
            .and_then(|i| i.config)
            .into_iter()
            .flatten()
            .filter_map(|c| c.gateway)
            .find_map(|g| g.parse::<std::net::IpAddr>().ok().filter(|ip| ip.is_ipv4()))
            .ok_or_else(|| DockerError::Api {
                action,
                reason: "Docker's default bridge network has no IPv4 gateway address".to_owned(),
            })
    }

    /// Remove every container, volume and network labelled by localbuild: those of one build
    /// (`Some(build_id)`), or all of them (`None`, for `localbuild gc`).
    async fn remove_build_resources(&self, build_id: Option<&str>) -> Result<Removed, DockerError> {
        // First the build's guarded Docker API: nothing new gets made while the rest goes.
        if let Some(id) = build_id {
            let running = self
                .guards
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(id);
            drop(running);
        }
        Ok(self.build_resources(build_id, true, None).await?.removed)
    }

    /// Run a service container (see [`Runtime::run_service`]). It also carries
    /// [`BUILD_LABEL`]` = ecs-service:<service>`, so `localbuild gc` removes it.
    async fn run_service(
        &self,
        image: &str,
        name: &str,
        service: &str,
    ) -> Result<ServiceContainer, DockerError> {
        let exposed: Vec<String> = self
            .api
            .inspect_image(image)
            .await
            .map_err(api("inspect the service image"))?
            .config
            .and_then(|c| c.exposed_ports)
            .map(|p| p.into_iter().collect())
            .unwrap_or_default();
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = exposed
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".to_owned()),
                        host_port: Some(String::new()),
                    }]),
                )
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            labels: Some({
                let mut labels = self.labels(format!("ecs-service:{service}"));
                labels.insert(SERVICE_LABEL.to_owned(), service.to_owned());
                labels
            }),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                ..Default::default()
            }),
            ..Default::default()
        };
        let opts = CreateContainerOptionsBuilder::default().name(name).build();
        let id = self
            .api
            .create_container(Some(opts), body)
            .await
            .map_err(api("create the service container"))?
            .id;
        if let Err(e) = self.api.start_container(&id, None).await {
            let _ = self.remove_container(&id).await;
            return Err(api("start the service container")(e));
        }
        let info = self
            .api
            .inspect_container(&id, None)
            .await
            .map_err(api("inspect the service container"))?;
        let mut ports = vec![];
        for (port, bound) in info
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default()
        {
            if let Some(host) = bound
                .into_iter()
                .flatten()
                .filter_map(|b| b.host_port?.parse::<u16>().ok())
                .next()
            {
                ports.push((port, host));
            }
        }
        ports.sort();
        // The new container runs: the previous ones of the service go.
        let label = format!("{SERVICE_LABEL}={service}");
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let opts = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        for c in self
            .api
            .list_containers(Some(opts))
            .await
            .map_err(api("list containers"))?
        {
            if let Some(other) = c.id.filter(|o| *o != id) {
                self.remove_container(&other).await?;
            }
        }
        Ok(ServiceContainer { id, ports })
    }
}

/// One frame of attached output as this module's [`Chunk`].
fn chunk(frame: Result<LogOutput, bollard::errors::Error>) -> Option<Result<Chunk, DockerError>> {
    match frame {
        Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
            Some(Ok(Chunk::Stdout(message)))
        }
        Ok(LogOutput::StdErr { message }) => Some(Ok(Chunk::Stderr(message))),
        Ok(LogOutput::StdIn { .. }) => None,
        Err(e) => Some(Err(api("read command output")(e))),
    }
}

/// `repo`, `repo:tag`, `host:5000/repo:tag`, `repo@sha256:…` → (repository, tag or digest).
pub fn split_image_ref(image: &str) -> (&str, &str) {
    if let Some((repo, digest)) = image.split_once('@') {
        return (repo, digest);
    }
    let name_start = image.rfind('/').map_or(0, |i| i + 1);
    match image[name_start..].rfind(':') {
        Some(i) => (&image[..name_start + i], &image[name_start + i + 1..]),
        None => (image, "latest"),
    }
}

/// The innermost message of a bollard error chain (hyper wraps the interesting part).
fn root_cause(e: &bollard::errors::Error) -> String {
    use std::error::Error as _;
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg = s.to_string();
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::split_image_ref;

    #[test]
    fn image_refs_split_into_repository_and_tag() {
        assert_eq!(split_image_ref("busybox"), ("busybox", "latest"));
        assert_eq!(split_image_ref("a/b:1"), ("a/b", "1"));
        assert_eq!(
            split_image_ref("127.0.0.1:5000/app:7"),
            ("127.0.0.1:5000/app", "7")
        );
        assert_eq!(
            split_image_ref("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app", "latest")
        );
        assert_eq!(split_image_ref("a@sha256:00"), ("a", "sha256:00"));
    }
}
