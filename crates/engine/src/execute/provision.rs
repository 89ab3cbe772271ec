//! PROVISIONING: the image (or the local stand-in the runtime names for it), then the build
//! container with the command shell as its main process (or the image's own entrypoint, for
//! images that start their own Docker daemon).

use super::*;
use crate::runtime::{ContainerSpec, DockerAccess, GuardedDocker, Notify, RuntimeError, StandIn};
use crate::shell::driver_command;

impl BuildExecution {
    /// PROVISIONING: the image, the container.
    pub(super) async fn provision(&mut self) -> Result<(), PhaseError> {
        let image = self.req.image.clone();
        let source = self.req.image_source.clone();
        let hub = self.hub.clone();
        let runtime = self.runtime.clone();
        let worked = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = worked.clone();
        let ensure = async move {
            let mut progress = |line: &str| {
                seen.store(true, std::sync::atomic::Ordering::Relaxed);
                hub.publish(Event::Progress(line.to_owned()));
            };
            let pulled = match source {
                Some(hook) => hook.pull(runtime.as_ref(), &image, &mut progress).await?,
                None => None,
            };
            match pulled {
                Some(run) => Ok((run != image).then(|| StandIn {
                    note: format!("Running {image} as {run}, its copy in the local registry"),
                    image: run,
                })),
                None => runtime.ensure_image(&image, &mut progress).await,
            }
        };
        tracing::debug!("provisioning: image");
        let started = std::time::Instant::now();
        let result = self.guard(ensure).await.map_err(PhaseError::Interrupted)?;
        if worked.load(std::sync::atomic::Ordering::Relaxed) {
            // Said in the log, so a long PROVISIONING explains itself.
            self.agent(&format!(
                "Preparing the image {} took {:.0} s (made or pulled on this machine); PROVISIONING includes it",
                self.req.image,
                started.elapsed().as_secs_f64()
            ));
        }
        match result {
            Ok(stand_in) => self.stand_in = stand_in,
            Err(e) => {
                return Err(PhaseError::Fault(PhaseContext::new(
                    "BUILD_CONTAINER_UNABLE_TO_PULL_IMAGE",
                    format!("Unable to pull customer's container image. {e}"),
                )));
            }
        }
        let image = match &self.stand_in {
            Some(s) => s.image.clone(),
            None => self.req.image.clone(),
        };

        let mut binds = vec![];
        if self.req.bind_mount {
            for (dir, path) in self.sources() {
                binds.push(format!("{}:{path}", dir.display()));
            }
        }
        if let Some(aws) = &self.req.aws_dir {
            binds.push(format!("{}:/root/.aws:ro", aws.display()));
        }
        // Privileged mode gives the build a guarded Docker API in an unprivileged container;
        // only with host access (opted in) does it get the host's daemon, a `--privileged`
        // container and an image's own `dockerd-entrypoint.sh` (a privileged container is
        // root on the host too).
        let host_access = self.req.privileged && self.req.docker_host_access;
        let mut keep_entrypoint = false;
        if host_access {
            let entrypoint = self
                .runtime
                .image_entrypoint(&image)
                .await
                .unwrap_or_default();
            keep_entrypoint = entrypoint
                .iter()
                .any(|e| e.ends_with("dockerd-entrypoint.sh"));
            self.agent(if keep_entrypoint {
                "Warning: docker-host-access is on: the image starts its own Docker daemon in a privileged build container, which is root on this machine: the buildspec can read and change any file of this machine"
            } else {
                "Warning: docker-host-access is on: the build's Docker commands use this machine's Docker daemon itself and the build container is privileged: the buildspec can read and change any file of this machine"
            });
        }
        let docker = if !self.req.privileged {
            DockerAccess::None
        } else if host_access {
            if keep_entrypoint {
                DockerAccess::None
            } else {
                DockerAccess::Host
            }
        } else {
            let hub = self.hub.clone();
            let notify = Notify(Arc::new(move |line: &str| {
                hub.publish(Event::Agent {
                    at: OffsetDateTime::now_utc(),
                    text: line.to_owned(),
                });
            }));
            // Mounted sources are host folders; copied ones live in a volume of the build's.
            let sources = if self.req.bind_mount {
                self.sources()
                    .into_iter()
                    .map(|(dir, path)| (path, Some(dir)))
                    .collect()
            } else {
                std::iter::once(self.src_dir.clone())
                    .chain(self.secondary_dirs().into_iter().map(|(_, path)| path))
                    .map(|path| (path, None))
                    .collect()
            };
            DockerAccess::Guarded(GuardedDocker {
                socket: self.place.dir.join("docker.sock"),
                sources,
                notify,
            })
        };
        self.open_local_aws().await?;
        let mut spec = ContainerSpec {
            name: format!(
                "localbuild-{}-{}",
                sanitize(&self.req.project),
                &self.build.logs.stream_name[..8]
            ),
            image,
            build_id: self.build_id.clone(),
            env: vec!["HOME=/root".to_owned()],
            binds,
            privileged: host_access,
            docker,
            keep_entrypoint,
            main: Some(driver_command(
                &self.layout.tmp_dir(),
                &self.marker,
                &self.shell,
                &self.src_dir,
                self.req.debug.session,
                self.req.batch.as_ref().and_then(|b| b.shard),
            )),
        };
        if let Some(session) = &mut self.build.debug_session {
            session.session_target = Some(spec.name.clone());
        }
        spec.env.extend(self.driver_env.iter().cloned());
        tracing::debug!("provisioning: image ready, starting the container");
        // Not abandoned midway, unlike every other wait: a create request dropped in flight
        // still makes its container after the cleanup has looked for it. A stop or timeout
        // is honoured as soon as the container is known (below).
        let mut started = self.runtime.start_container(&spec).await;
        if spec.privileged
            && started
                .as_ref()
                .is_err_and(RuntimeError::is_privilege_denied)
        {
            // A daemon that cannot grant privileges (itself in a restricted container): docker
            // commands still work through the mounted socket, so run unprivileged. (An image's
            // own dockerd then fails to start, and the wait below reports it.) Only the
            // container goes: the build's local AWS endpoint stays for the retry.
            let _ = self.runtime.remove_container(&spec.name).await;
            let effect = if keep_entrypoint {
                "the image's own Docker daemon may fail to start"
            } else {
                "docker commands use this machine's daemon through its socket"
            };
            self.progress(&format!("warning: this Docker daemon cannot start privileged containers; running the build container unprivileged ({effect})"));
            spec.privileged = false;
            started = self.runtime.start_container(&spec).await;
        }
        match started {
            Ok((id, session)) => {
                self.container = Some(id.clone());
                self.provisioned = true;
                if let Some(session) = session {
                    let driver = Driver::new(session, self.marker.clone());
                    self.drivers.insert(None, std::sync::Mutex::new(driver));
                    self.main_driver = true;
                }
                if let Some(i) = self.interrupted() {
                    return Err(PhaseError::Interrupted(i));
                }
                if keep_entrypoint {
                    self.wait_for_dockerd(&id).await?;
                }
                Ok(())
            }
            Err(e) => {
                // The container may exist even though it could not start.
                let _ = self
                    .runtime
                    .remove_build_resources(Some(&self.build_id))
                    .await;
                Err(PhaseError::Fault(PhaseContext::new(
                    "SINGLE_BUILD_CONTAINER_DEAD",
                    format!("Build container found dead before completing the build. {e}"),
                )))
            }
        }
    }

    /// With a local AWS in the request: the endpoint on the build network's gateway (the
    /// default bridge's; see [`crate::local_aws`] for why no network of its own), its
    /// variables (below every variable the build already has) and masked values.
    async fn open_local_aws(&mut self) -> Result<(), PhaseError> {
        let Some(hook) = self.req.local_aws.clone() else {
            return Ok(());
        };
        let fault = |m: String| {
            PhaseError::Fault(PhaseContext::new(
                "CLIENT_ERROR",
                format!("cannot give the build its local AWS endpoint: {m}"),
            ))
        };
        let gateway = self
            .runtime
            .gateway()
            .await
            .map_err(|e| fault(e.to_string()))?;
        let info = crate::local_aws::BuildInfo {
            build_id: self.build_id.clone(),
            project: self.req.project.clone(),
            region: self.req.region.clone(),
        };
        let endpoint = hook.0.open(&info, gateway).await.map_err(fault)?;
        self.hub.add_masked(endpoint.mask.clone());
        let taken: std::collections::HashSet<String> = self
            .driver_env
            .iter()
            .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
            .collect();
        let ours: Vec<String> = endpoint
            .vars
            .iter()
            .filter(|(k, _)| !taken.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        self.driver_env.splice(0..0, ours);
        self.aws_endpoint = Some(endpoint);
        Ok(())
    }

    /// The image's `dockerd-entrypoint.sh` starts dockerd: wait (up to ~60 s, as the script
    /// does) until `docker info` succeeds in the container; fail if the container exits.
    pub(super) async fn wait_for_dockerd(&mut self, id: &str) -> Result<(), PhaseError> {
        self.progress("Waiting for the Docker daemon in the build container");
        let dead = |why: &str| {
            PhaseError::Fault(PhaseContext::new(
                "SINGLE_BUILD_CONTAINER_DEAD",
                format!("Build container found dead before completing the build. {why}"),
            ))
        };
        let until = Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if !self.runtime.is_running(id).await {
                return Err(dead(
                    "Its entrypoint (dockerd-entrypoint.sh) exited before the Docker daemon started",
                ));
            }
            let cmd = vec!["docker".to_owned(), "info".to_owned()];
            let status = self
                .guard(self.runtime.exec_status(id, cmd))
                .await
                .map_err(PhaseError::Interrupted)?;
            if matches!(status, Ok(0)) {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(dead(
                    "Timed out trying to connect to internal docker host (docker info did not succeed within 60 s)",
                ));
            }
            self.guard(tokio::time::sleep(std::time::Duration::from_secs(1)))
                .await
                .map_err(PhaseError::Interrupted)?;
        }
    }
}
