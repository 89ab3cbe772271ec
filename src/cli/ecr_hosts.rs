//! The guarded Docker API's registry map for ECR: a privileged build's `docker login`, `push`,
//! `pull` and `tag` of `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME` reach the local registry
//! that serves ECR (started on first use), without touching `/etc/hosts` or the daemon.

use localbuild_aws::ecr::Ecr;
use localbuild_docker::guard::policy::RegistryMap;
use std::sync::Arc;

/// Maps the local account's ECR host in `region` to the local registry's `127.0.0.1:PORT`.
pub(crate) struct EcrHosts {
    pub ecr: Arc<Ecr>,
    pub region: String,
}

impl RegistryMap for EcrHosts {
    fn map(&self, host: &str) -> Option<String> {
        match self.ecr.map_host(host, &self.region) {
            Ok(mapped) => mapped,
            Err(e) => {
                tracing::warn!("the local ECR registry is not available for {host}: {e}");
                None
            }
        }
    }
}

/// `docker` with ECR's hosts mapped for its builds' guarded Docker API (`None`: no ECR).
pub(crate) fn with_ecr(
    docker: localbuild_docker::Docker,
    ecr: Option<&Arc<Ecr>>,
    region: &str,
) -> localbuild_docker::Docker {
    match ecr {
        Some(ecr) => docker.with_registry_map(Arc::new(EcrHosts {
            ecr: ecr.clone(),
            region: region.to_owned(),
        })),
        None => docker,
    }
}
