//! The seam to a local AWS endpoint for one build (issue "AWS from inside the build").
//!
//! The engine names no HTTP server: a caller that can serve the local AWS services puts a
//! [`LocalAwsHook`] in the request. In PROVISIONING the engine asks the runtime for the
//! gateway of the network build containers run on ([`crate::runtime::Runtime::gateway`]:
//! Docker's default bridge), asks the hook to open an endpoint there, puts the endpoint's
//! variables in the build's environment (below the buildspec's and the caller's own, which
//! win) and masks its secret values. The endpoint lives as long as the returned
//! [`AwsEndpoint`]: the engine drops it after the container is removed.
//!
//! Who can call is decided by authentication, not by the network: a host address on any
//! Docker bridge is reachable from containers on every bridge (the host routes to its own
//! addresses; Docker's isolation rules only stop forwarding between bridges), so a network of
//! the build's own would not keep other containers out; it cost ~0.3 s a build. The endpoint
//! listens on a bridge address only (not every interface) and serves only requests signed with
//! the build's session key (revoked when the endpoint closes) or a key the caller accepts.

use std::net::IpAddr;
use std::sync::Arc;

/// The build an endpoint is opened for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub build_id: String,
    pub project: String,
    pub region: String,
}

/// An open endpoint: what the build's commands get, and what keeps it serving.
pub struct AwsEndpoint {
    /// Variables for the build (`AWS_ENDPOINT_URL`, the session's keys).
    pub vars: Vec<(String, String)>,
    /// Values to mask in the build's output (the secret key, the session token).
    pub mask: Vec<String>,
    /// Dropping it stops the endpoint and forgets the build's credentials.
    pub guard: Box<dyn Send + Sync>,
}

/// Opens local AWS endpoints for builds.
#[async_trait::async_trait]
pub trait LocalAws: Send + Sync + 'static {
    /// Listen on `gateway` for `build`; the error is phrased for the build's phase context.
    async fn open(&self, build: &BuildInfo, gateway: IpAddr) -> Result<AwsEndpoint, String>;
}

/// A request's local AWS: `BuildRequest::local_aws`.
#[derive(Clone)]
pub struct LocalAwsHook(pub Arc<dyn LocalAws>);

impl std::fmt::Debug for LocalAwsHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalAwsHook")
    }
}
