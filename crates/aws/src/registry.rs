//! The local registry behind ECR: Debian's `docker-registry` (the distribution registry), started,
//! supervised and stopped by localbuild, and the few registry API calls ECR needs.
//!
//! One registry per `$LOCALBUILD_HOME`: it listens on `127.0.0.1:<free port>` (the Docker daemon
//! treats loopback registries as insecure-allowed, so no daemon configuration is needed), keeps
//! its blobs under `$LOCALBUILD_HOME/ecr/storage` and checks one user, `AWS`, whose password is
//! made at start and written to `htpasswd` as a bcrypt hash; GetAuthorizationToken hands it out.
//!
//! `registry.json` (mode 0600) names the registry's pid, the pid of the process that owns it, its
//! port and password. A process that finds a live owner's registry uses it (it does not stop it);
//! one that finds a registry whose owner is gone (a `kill -9`ed serve) stops it and starts its own.
//! The owner stops its registry when dropped.

use serde::{Deserialize, Serialize};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the distribution registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// The one registry user (ECR's tokens are `AWS:<password>`).
pub const USER: &str = "AWS";
/// The state file under the ECR folder.
pub const STATE_FILE: &str = "registry.json";
const READY: Duration = Duration::from_secs(20);
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Manifest media types asked for (docker v2 and OCI, single images and lists).
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json";

/// The registry could not be started or answered wrongly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error(
        "the local ECR registry needs {REGISTRY_BIN} (apt-get install docker-registry), which is missing"
    )]
    Missing,
    #[error("the local ECR registry could not be started: {0}")]
    Start(String),
    #[error("the local ECR registry failed: {0}")]
    Call(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    pid: u32,
    owner: u32,
    /// The owner's start token (a reused pid is not the owner).
    #[serde(default)]
    owner_start: u64,
    port: u16,
    password: String,
}

/// A running registry: owned (stopped on drop) or shared with the live process that owns it.
pub struct Registry {
    dir: PathBuf,
    addr: SocketAddr,
    password: String,
    child: Option<Child>,
    agent: ureq::Agent,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("addr", &self.addr)
            .field("owned", &self.child.is_some())
            .finish_non_exhaustive()
    }
}

/// A process that runs (not a zombie); the registry's own pid, read from `/proc`.
fn alive(pid: u32) -> bool {
    localbuild_db::process::process_start_token(pid).is_some()
}

fn owner_alive(state: &State) -> bool {
    localbuild_db::process_alive(state.owner, state.owner_start)
}

/// Whether `pid` is a `docker-registry` serving `config` (a recycled pid is not).
fn is_our_registry(pid: u32, config: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.first()
        .is_some_and(|a| a.ends_with(b"docker-registry"))
        && args.contains(&config.as_os_str().as_encoded_bytes())
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, sig);
    }
}

/// Stop a registry this process did not start (a stale one): TERM, then KILL after 5 s.
fn stop_pid(pid: u32) {
    signal(pid, rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        signal(pid, rustix::process::Signal::KILL);
    }
}

fn free_port() -> Result<u16, RegistryError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| RegistryError::Start(format!("no free port on 127.0.0.1: {e}")))
}

fn config_yaml(dir: &Path, port: u16, secret: &str) -> String {
    format!(
        "version: 0.1\n\
         log:\n  level: warn\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: {secret}\n\
         auth:\n  htpasswd:\n    realm: localbuild-ecr\n    path: {htpasswd}\n",
        storage = dir.join("storage").display(),
        htpasswd = dir.join("htpasswd").display(),
    )
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(IO_TIMEOUT))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// An answer from the registry.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Registry {
    /// The registry of the ECR folder `dir` (`$LOCALBUILD_HOME/ecr`): the live one another
    /// process owns, or a new one this value owns (a stale one is stopped first).
    pub fn start(dir: &Path) -> Result<Registry, RegistryError> {
        if !Path::new(REGISTRY_BIN).exists() {
            return Err(RegistryError::Missing);
        }
        std::fs::create_dir_all(dir.join("storage"))
            .map_err(|e| RegistryError::Start(format!("{}: {e}", dir.display())))?;
        let config = dir.join("config.yml");
        let state_path = dir.join(STATE_FILE);
        if let Some(state) = std::fs::read_to_string(&state_path)
            .ok()
            .and_then(|t| serde_json::from_str::<State>(&t).ok())
        {
            let ours = is_our_registry(state.pid, &config);
            if ours && owner_alive(&state) && state.owner != std::process::id() {
                let shared = Registry {
                    dir: dir.to_owned(),
                    addr: SocketAddr::from(([127, 0, 0, 1], state.port)),
                    password: state.password,
                    child: None,
                    agent: agent(),
                };
                if shared.ping().is_ok() {
                    return Ok(shared);
                }
            }
            if ours {
                tracing::info!(pid = state.pid, "stopping a stale ECR registry");
                stop_pid(state.pid);
            }
            let _ = std::fs::remove_file(&state_path);
        }
        Registry::spawn(dir, &config, &state_path)
    }

    /// Stop the registry of `dir` whose owner is gone (a killed process's); its pid, if one ran.
    pub fn stop_stale(dir: &Path) -> Option<u32> {
        let state_path = dir.join(STATE_FILE);
        let state: State =
            serde_json::from_str(&std::fs::read_to_string(&state_path).ok()?).ok()?;
        if owner_alive(&state) && state.owner != std::process::id() {
            return None;
        }
        let ours = is_our_registry(state.pid, &dir.join("config.yml"));
        if ours {
            tracing::info!(pid = state.pid, "stopping a stale ECR registry");
            stop_pid(state.pid);
        }
        let _ = std::fs::remove_file(&state_path);
        ours.then_some(state.pid)
    }

    fn spawn(dir: &Path, config: &Path, state_path: &Path) -> Result<Registry, RegistryError> {
        let password = crate::random(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            40,
        );
        // Cost 5 (htpasswd -B's default): the registry checks it on every request, and the
        // password is 40 random characters, so the hash need not be slow to be safe.
        let hash =
            bcrypt::hash(&password, 5).map_err(|e| RegistryError::Start(format!("bcrypt: {e}")))?;
        write_private(&dir.join("htpasswd"), &format!("{USER}:{hash}\n"))
            .map_err(|e| RegistryError::Start(format!("htpasswd: {e}")))?;
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let secret = crate::random(b"abcdefghijklmnopqrstuvwxyz0123456789", 32);
            write_private(config, &config_yaml(dir, port, &secret))
                .map_err(|e| RegistryError::Start(format!("config: {e}")))?;
            let log = std::fs::File::create(dir.join("registry.log"))
                .map_err(|e| RegistryError::Start(format!("registry.log: {e}")))?;
            let err = log
                .try_clone()
                .map_err(|e| RegistryError::Start(e.to_string()))?;
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(config)
                .env_clear()
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|e| RegistryError::Start(format!("{REGISTRY_BIN}: {e}")))?;
            let pid = child.id();
            let mut registry = Registry {
                dir: dir.to_owned(),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                password: password.clone(),
                child: Some(child),
                agent: agent(),
            };
            let (owner, owner_start) = localbuild_db::this_process();
            let state = State {
                pid,
                owner,
                owner_start,
                port,
                password: password.clone(),
            };
            write_private(
                state_path,
                &serde_json::to_string(&state).unwrap_or_default(),
            )
            .map_err(|e| RegistryError::Start(format!("{STATE_FILE}: {e}")))?;
            match registry.wait_ready() {
                Ok(()) => {
                    tracing::info!(pid, "the ECR registry listens on 127.0.0.1:{port}");
                    return Ok(registry);
                }
                Err(e) => {
                    last = format!("{e}; its log: {}", registry.log_tail());
                    registry.stop();
                }
            }
        }
        Err(RegistryError::Start(last))
    }

    /// `127.0.0.1:<port>`: the registry part of a local image reference.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The password of [`USER`].
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The registry's process id, if this value started it.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The registry's storage root (the distribution registry's filesystem layout).
    pub fn storage(&self) -> PathBuf {
        self.dir.join("storage")
    }

    fn log_tail(&self) -> String {
        let bytes = std::fs::read(self.dir.join("registry.log")).unwrap_or_default();
        let start = bytes.len().saturating_sub(2000);
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("docker-registry exited: {status}"));
            }
            match self.ping() {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() >= deadline => {
                    return Err(format!("not answering after {READY:?}: {e}"));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
    }

    /// `GET /v2/` without credentials: an htpasswd registry that serves answers 401.
    fn ping(&self) -> Result<(), String> {
        let url = format!("http://{}/v2/", self.addr);
        match self.agent.get(&url).call() {
            Ok(r) if r.status().as_u16() == 401 => Ok(()),
            Ok(r) => Err(format!("GET /v2/ answered {}", r.status())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Stop the registry if this value started it (TERM, then KILL after 5 s) and forget its
    /// state file.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        signal(child.id(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        let state_path = self.dir.join(STATE_FILE);
        let mine = std::fs::read_to_string(&state_path)
            .ok()
            .and_then(|t| serde_json::from_str::<State>(&t).ok())
            .is_some_and(|s| s.pid == child.id());
        if mine {
            let _ = std::fs::remove_file(state_path);
        }
    }

    /// One authenticated call; `path` starts with `/v2/`.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        accept: Option<&str>,
    ) -> Result<Answer, RegistryError> {
        use base64::Engine as _;
        let url = format!("http://{}{path}", self.addr);
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{}", self.password))
        );
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(&url)
            .header("Authorization", auth);
        let request = match accept {
            Some(a) => request.header("Accept", a),
            None => request,
        };
        let request = request
            .body(())
            .map_err(|e| RegistryError::Call(e.to_string()))?;
        let response = self
            .agent
            .run(request)
            .map_err(|e| RegistryError::Call(format!("{method} {path}: {e}")))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = vec![];
        if method != "HEAD" {
            response
                .into_body()
                .into_reader()
                .take(16 << 20)
                .read_to_end(&mut body)
                .map_err(|e| RegistryError::Call(format!("{method} {path}: {e}")))?;
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
