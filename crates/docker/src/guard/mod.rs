//! The guarded Docker API of a privileged build: a filtering proxy of the Engine API on a
//! Unix socket in the build's folder, bind-mounted at the build's `/var/run/docker.sock`.
//!
//! Owns the socket, one HTTP/1.1 server per connection (hyper) and one upstream connection
//! per request to this machine's daemon. Bodies and responses stream through untouched
//! (a `docker build` context, `docker logs -f`, pulls); connection upgrades (attach, exec,
//! `docker run -it`, BuildKit's session) are joined byte for byte once both sides switched.
//! Only the bodies it must read are read whole (container, volume, network and exec
//! definitions, `docker login`; at most [`BODY_LIMIT`]).
//!
//! [`policy`] decides; this module looks up what a request names (a container, a volume, a
//! network must carry the build's label) and refuses with Docker's error shape
//! (`{"message": …}`, 403) and a line in the build's log naming the setting that allows it.
//!
//! Invariant: the build reaches no container, volume or network that is not its own, and
//! what it creates carries its labels ([`localbuild_engine::runtime::BUILD_LABEL`]), so the
//! build's cleanup and `localbuild gc` remove it.

pub mod policy;
mod rename;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use localbuild_engine::runtime::{BUILD_LABEL, Notify};
use policy::{Policy, Refusal};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{UnixListener, UnixStream};

/// The largest request body the proxy reads whole.
pub const BODY_LIMIT: usize = 4 << 20;

/// What the build's log says with each refusal: the setting that would allow it.
pub const SETTING: &str = "Privileged builds get a guarded Docker API; the setting docker-host-access (`run --docker-host-access`, `docker-host-access = true` in the user config, `serve --docker-host-access`) gives them this machine's Docker daemon";

type Body = Either<Incoming, Full<Bytes>>;
/// A response: as the daemon sent it, or with the local registry named back.
type Reply = Either<Body, rename::Renamed>;

/// One build's proxy.
struct Proxy {
    build_id: String,
    upstream: PathBuf,
    policy: Policy,
    notify: Notify,
}

/// A running proxy: dropping it stops it (its connections too) and removes its socket file.
pub struct Running {
    task: tokio::task::JoinHandle<()>,
    socket: PathBuf,
    /// The private folder holding the socket when the asked-for path was too long.
    _short: Option<tempfile::TempDir>,
}

impl Running {
    /// Where the socket is (to bind-mount into the build container).
    pub fn path(&self) -> &Path {
        &self.socket
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Listen on `socket` (an old file there is replaced; a path longer than a Unix socket's 107
/// bytes is replaced by one in a private temporary folder) for the build `build_id`,
/// forwarding what `policy` allows to the daemon at `upstream`. Only this user may connect
/// (mode 0600; the build container's root may, as root).
pub fn start(
    socket: &Path,
    upstream: &Path,
    build_id: &str,
    policy: Policy,
    notify: Notify,
) -> std::io::Result<Running> {
    let (socket, short) = if socket.as_os_str().len() > 107 {
        let dir = tempfile::Builder::new().prefix("localbuild-").tempdir()?;
        (dir.path().join("docker.sock"), Some(dir))
    } else {
        (socket.to_owned(), None)
    };
    let socket = socket.as_path();
    let _ = std::fs::remove_file(socket);
    let listener = UnixListener::bind(socket)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    }
    let proxy = Arc::new(Proxy {
        build_id: build_id.to_owned(),
        upstream: upstream.to_owned(),
        policy,
        notify,
    });
    let task = tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else {
                        // Out of file descriptors, say: try again shortly, not in a busy loop.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    };
                    let proxy = proxy.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let proxy = proxy.clone();
                            async move { Ok::<_, std::convert::Infallible>(proxy.handle(req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades()
                            .await;
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    });
    Ok(Running {
        task,
        socket: socket.to_owned(),
        _short: short,
    })
}

/// `(local, host)` when `mapped` is `reference` with its registry host mapped.
fn renamed(reference: &str, mapped: &str) -> Option<(String, String)> {
    let host = reference.split_once('/')?.0;
    let local = mapped.split_once('/')?.0;
    (host != local).then(|| (local.to_owned(), host.to_owned()))
}

/// The daemon's `answer` with `renames` applied to its body (as it is without any).
fn named_back(answer: Response<Reply>, renames: rename::Renames) -> Result<Response<Reply>, Stop> {
    if renames.is_empty() {
        return Ok(answer);
    }
    let (mut parts, body) = answer.into_parts();
    match body {
        Either::Left(Either::Left(incoming)) => {
            parts.headers.remove(CONTENT_LENGTH);
            Ok(Response::from_parts(
                parts,
                Either::Right(rename::Renamed::new(incoming, renames)),
            ))
        }
        body => Ok(Response::from_parts(parts, body)),
    }
}

/// A Docker-style error response.
fn error(status: StatusCode, message: &str) -> Response<Reply> {
    let body = serde_json::json!({ "message": message }).to_string();
    let mut r = Response::new(Either::Left(Either::Right(Full::new(Bytes::from(body)))));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// The request's path without the `/v1.NN` prefix, split into its segments.
fn segments(path: &str) -> Vec<String> {
    let mut parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if parts.first().is_some_and(|p| {
        p.len() > 1 && p.starts_with('v') && p[1..].chars().all(|c| c.is_ascii_digit() || c == '.')
    }) {
        parts.remove(0);
    }
    parts.into_iter().map(percent_decode).collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why a request was not forwarded as it came.
enum Stop {
    Refused(Refusal),
    /// A body the proxy cannot read (over [`BODY_LIMIT`], not JSON): 400.
    Bad(String),
    /// The daemon could not be reached: 502.
    Failed(String),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refused(r)
    }
}

impl Proxy {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Reply> {
        match self.route(req).await {
            Ok(r) => r,
            Err(Stop::Refused(Refusal(what))) => {
                (self.notify.0)(&format!(
                    "Refused a Docker call of the build: {what}. {SETTING}"
                ));
                error(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "localbuild refused {what}: privileged builds get a guarded Docker API (see the build log for the setting that allows it)"
                    ),
                )
            }
            Err(Stop::Bad(m)) => error(StatusCode::BAD_REQUEST, &m),
            Err(Stop::Failed(m)) => error(StatusCode::BAD_GATEWAY, &m),
        }
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Response<Reply>, Stop> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let mut query = query_pairs(req.uri().query());
        let seg = segments(&path);
        let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
        let post = method == Method::POST;
        match (seg.as_slice(), post) {
            (["containers", "create"], true) => {
                let (req, mut body) = self.read_json(req).await?;
                let names = self.policy.container_create(&mut body)?;
                for c in &names.containers {
                    self.own_container(c).await?;
                }
                for v in &names.volumes {
                    self.own_or_new_volume(v).await?;
                }
                self.forward_json(req, &body).await
            }
            (["containers", "prune"], true)
            | (["volumes", "prune"], true)
            | (["networks", "prune"], true) => {
                // Only the build's own.
                let mut filters: serde_json::Map<String, Value> = query
                    .iter()
                    .find(|(k, _)| k == "filters")
                    .and_then(|(_, v)| serde_json::from_str(v).ok())
                    .unwrap_or_default();
                let label = format!("{BUILD_LABEL}={}", self.build_id);
                filters.insert("label".into(), serde_json::json!([label]));
                query.retain(|(k, _)| k != "filters");
                query.push(("filters".into(), Value::Object(filters).to_string()));
                self.forward(with_query(req, &path, &query)).await
            }
            (["containers", "json"], _) => self.forward(req).await,
            (["containers", id, "exec"], true) => {
                let id = (*id).to_owned();
                self.own_container(&id).await?;
                let (req, body) = self.read_json(req).await?;
                self.policy.exec_create(&body)?;
                self.forward_json(req, &body).await
            }
            (["containers", id, ..], _) => {
                self.own_container(id).await?;
                self.forward(req).await
            }
            (["commit"], true) => {
                if let Some((_, c)) = query.iter().find(|(k, _)| k == "container") {
                    self.own_container(c).await?;
                }
                self.forward(req).await
            }
            (["volumes", "create"], true) => {
                let (req, mut body) = self.read_json(req).await?;
                self.policy.volume_create(&mut body)?;
                self.forward_json(req, &body).await
            }
            (["volumes", name], _) if method == Method::DELETE => {
                let name = (*name).to_owned();
                self.own("volumes", &name, "a volume").await?;
                self.forward(req).await
            }
            (["networks", "create"], true) => {
                let (req, mut body) = self.read_json(req).await?;
                self.policy.network_create(&mut body)?;
                self.forward_json(req, &body).await
            }
            (["networks", id, action], true) if *action == "connect" || *action == "disconnect" => {
                let id = (*id).to_owned();
                self.own("networks", &id, "a network").await?;
                let (req, body) = self.read_json(req).await?;
                if let Some(c) = body.get("Container").and_then(Value::as_str) {
                    self.own_container(c).await?;
                }
                self.forward_json(req, &body).await
            }
            (["networks", id], _) if method == Method::DELETE => {
                let id = (*id).to_owned();
                self.own("networks", &id, "a network").await?;
                self.forward(req).await
            }
            (["build"], true) => {
                self.policy.build_query(&query)?;
                let mut renames = vec![];
                for (k, v) in query.iter_mut() {
                    if k == "t" {
                        let mapped = self.policy.map_ref(v);
                        renames.extend(renamed(v, &mapped));
                        *v = mapped;
                    }
                }
                let req = with_query(req, &path, &query);
                let req = self.map_auth_headers(req);
                named_back(self.forward(req).await?, renames)
            }
            (["images", "create"], true) => {
                let mut renames = vec![];
                for (k, v) in query.iter_mut() {
                    if k == "fromImage" {
                        let mapped = self.policy.map_ref(v);
                        renames.extend(renamed(v, &mapped));
                        *v = mapped;
                    }
                }
                let req = with_query(req, &path, &query);
                named_back(self.forward(self.map_auth_headers(req)).await?, renames)
            }
            (["auth"], true) => {
                let (req, mut body) = self.read_json(req).await?;
                if let Some(s) = body.get("serveraddress").and_then(Value::as_str) {
                    let mapped = self.policy.map_host(s);
                    body["serveraddress"] = Value::String(mapped);
                }
                self.forward_json(req, &body).await
            }
            (["images", rest @ ..], _) if rest.len() >= 2 => {
                // /images/{name}/push|tag|json|history|get: the name may hold slashes.
                let (action, name) = rest.split_last().unwrap_or((&"", &[]));
                let name = name.join("/");
                let mapped = self.policy.map_ref(&name);
                for (k, v) in query.iter_mut() {
                    if *action == "tag" && k == "repo" {
                        *v = self.policy.map_ref(v);
                    }
                }
                let version = path
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .filter(|p| p.starts_with('v'))
                    .map(|v| format!("/{v}"))
                    .unwrap_or_default();
                let new_path = format!("{version}/images/{}/{action}", mapped);
                let req = with_query(req, &new_path, &query);
                let answer = self.forward(self.map_auth_headers(req)).await?;
                // The progress of a push and an image's description name it as the build did
                // (not `get`: a tar archive).
                if *action == "push" || *action == "json" {
                    named_back(answer, renamed(&name, &mapped).into_iter().collect())
                } else {
                    Ok(answer)
                }
            }
            (
                [
                    "swarm" | "services" | "nodes" | "secrets" | "configs" | "tasks",
                    ..,
                ],
                _,
            ) => Err(Refusal("swarm mode (services run with host mounts)".into()).into()),
            (["plugins", ..], _) if method != Method::GET => Err(Refusal(
                "installing or changing a plugin (plugins run as root on the host)".into(),
            )
            .into()),
            _ => self.forward(req).await,
        }
    }

    /// Read a JSON body whole (an empty one reads as `{}`).
    async fn read_json(
        &self,
        req: Request<Incoming>,
    ) -> Result<(hyper::http::request::Parts, Value), Stop> {
        let (parts, body) = req.into_parts();
        let bytes = Limited::new(body, BODY_LIMIT)
            .collect()
            .await
            .map_err(|e| {
                Stop::Bad(format!(
                    "cannot read the request body (at most {BODY_LIMIT} bytes): {e}"
                ))
            })?
            .to_bytes();
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok((parts, Value::Object(Default::default())));
        }
        let v = serde_json::from_slice(&bytes)
            .map_err(|e| Stop::Bad(format!("the request body is not JSON: {e}")))?;
        Ok((parts, v))
    }

    async fn forward_json(
        &self,
        mut parts: hyper::http::request::Parts,
        body: &Value,
    ) -> Result<Response<Reply>, Stop> {
        let bytes = Bytes::from(body.to_string());
        parts.headers.remove(hyper::header::TRANSFER_ENCODING);
        parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let req = Request::from_parts(parts, Either::Right(Full::new(bytes)));
        self.send(req).await
    }

    async fn forward(&self, req: Request<Incoming>) -> Result<Response<Reply>, Stop> {
        let (parts, body) = req.into_parts();
        self.send(Request::from_parts(parts, Either::Left(body)))
            .await
    }

    /// Send to the daemon on a connection of its own; join the two connections when the
    /// daemon switches protocols (attach, exec, BuildKit's session).
    async fn send(&self, mut req: Request<Body>) -> Result<Response<Reply>, Stop> {
        let downstream = hyper::upgrade::on(&mut req);
        let stream = UnixStream::connect(&self.upstream)
            .await
            .map_err(|e| Stop::Failed(format!("cannot reach the Docker daemon: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Stop::Failed(format!("cannot reach the Docker daemon: {e}")))?;
        tokio::spawn(conn.with_upgrades());
        let mut resp = sender
            .send_request(req)
            .await
            .map_err(|e| Stop::Failed(format!("the Docker daemon did not answer: {e}")))?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let upstream = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                if let (Ok(up), Ok(down)) = (upstream.await, downstream.await) {
                    let mut up = TokioIo::new(up);
                    let mut down = TokioIo::new(down);
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                }
            });
        }
        let (parts, body) = resp.into_parts();
        Ok(Response::from_parts(
            parts,
            Either::Left(Either::Left(body)),
        ))
    }

    /// A GET to the daemon, its status and JSON body.
    async fn get(&self, path: &str) -> Result<(StatusCode, Value), Stop> {
        let req = Request::get(path)
            .header(hyper::header::HOST, "docker")
            .body(Either::Right(Full::new(Bytes::new())))
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Stop::Failed(format!("cannot read the daemon's answer: {e}")))?
            .to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    /// `kind` (`containers`, `volumes`, `networks`) `name` carries the build's label.
    async fn own(&self, kind: &str, name: &str, what: &str) -> Result<(), Stop> {
        let path = match kind {
            "containers" => format!("/containers/{}/json", encode(name)),
            _ => format!("/{kind}/{}", encode(name)),
        };
        let (status, v) = self.get(&path).await?;
        if status == StatusCode::NOT_FOUND {
            // The daemon says it is missing, in its own words.
            return Ok(());
        }
        let labels = if kind == "containers" {
            &v["Config"]["Labels"]
        } else {
            &v["Labels"]
        };
        if labels.get(BUILD_LABEL).and_then(Value::as_str) == Some(self.build_id.as_str()) {
            Ok(())
        } else {
            Err(Refusal(format!("{what} that is not the build's own ({name})")).into())
        }
    }

    async fn own_container(&self, name: &str) -> Result<(), Stop> {
        self.own("containers", name, "a container").await
    }

    /// A named volume a container mounts: the build's, or made now with its labels (Docker
    /// would make it without them).
    async fn own_or_new_volume(&self, name: &str) -> Result<(), Stop> {
        let (status, _) = self.get(&format!("/volumes/{}", encode(name))).await?;
        if status == StatusCode::NOT_FOUND {
            let mut body = serde_json::json!({ "Name": name });
            self.policy.volume_create(&mut body)?;
            let bytes = Bytes::from(body.to_string());
            let req = Request::post("/volumes/create")
                .header(hyper::header::HOST, "docker")
                .header(CONTENT_TYPE, "application/json")
                .header(CONTENT_LENGTH, bytes.len())
                .body(Either::Right(Full::new(bytes)))
                .map_err(|e| Stop::Failed(e.to_string()))?;
            let resp = self.send(req).await?;
            if !resp.status().is_success() {
                return Err(Stop::Failed(format!(
                    "cannot create the volume {name}: {}",
                    resp.status()
                )));
            }
            return Ok(());
        }
        self.own("volumes", name, "a volume").await
    }

    /// `X-Registry-Auth` (one credential, base64url JSON with `serveraddress`) and
    /// `X-Registry-Config` (server address → credential) with registry hosts mapped.
    fn map_auth_headers<B>(&self, mut req: Request<B>) -> Request<B> {
        if self.policy.registry.is_none() {
            return req;
        }
        let b64 = base64::engine::general_purpose::URL_SAFE;
        let decode = |v: &HeaderValue| -> Option<Value> {
            let text = v.to_str().ok()?.trim_end_matches('=');
            let padded = format!("{text}{}", "=".repeat((4 - text.len() % 4) % 4));
            let bytes = b64.decode(padded).ok()?;
            serde_json::from_slice(&bytes).ok()
        };
        let headers = req.headers_mut();
        if let Some(mut auth) = headers.get("x-registry-auth").and_then(decode) {
            if let Some(s) = auth.get("serveraddress").and_then(Value::as_str) {
                auth["serveraddress"] = Value::String(self.policy.map_host(s));
            }
            if let Ok(v) = HeaderValue::from_str(&b64.encode(auth.to_string())) {
                headers.insert("x-registry-auth", v);
            }
        }
        if let Some(Value::Object(config)) = headers.get("x-registry-config").and_then(decode) {
            let mapped: serde_json::Map<String, Value> = config
                .into_iter()
                .map(|(k, mut v)| {
                    let host = self.policy.map_host(&k);
                    if v.get("serveraddress").is_some() {
                        v["serveraddress"] = Value::String(host.clone());
                    }
                    (host, v)
                })
                .collect();
            if let Ok(v) = HeaderValue::from_str(&b64.encode(Value::Object(mapped).to_string())) {
                headers.insert("x-registry-config", v);
            }
        }
        req
    }
}

/// The request with `path` and `query` as its target.
fn with_query<B>(mut req: Request<B>, path: &str, query: &[(String, String)]) -> Request<B> {
    let target = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", encode_query(query))
    };
    if let Ok(uri) = target.parse() {
        *req.uri_mut() = uri;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lose_their_version_and_keep_their_names() {
        assert_eq!(
            segments("/v1.41/containers/create"),
            vec!["containers", "create"]
        );
        assert_eq!(
            segments("/containers/abc/json"),
            vec!["containers", "abc", "json"]
        );
        assert_eq!(
            segments("/v1.41/images/1.dkr.ecr.x.amazonaws.com%2Fapp/push"),
            vec!["images", "1.dkr.ecr.x.amazonaws.com/app", "push"]
        );
        assert_eq!(segments("/volumes/v1"), vec!["volumes", "v1"]);
    }

    struct Ecr;
    impl policy::RegistryMap for Ecr {
        fn map(&self, host: &str) -> Option<String> {
            host.ends_with(".amazonaws.com")
                .then(|| "127.0.0.1:5000".to_owned())
        }
    }

    #[test]
    fn registry_credentials_name_the_mapped_registry() {
        let proxy = Proxy {
            build_id: "p:1".into(),
            upstream: PathBuf::from("/nonexistent"),
            policy: Policy {
                labels: Default::default(),
                sources: vec![],
                registry: Some(Arc::new(Ecr)),
            },
            notify: Notify(Arc::new(|_: &str| {})),
        };
        let b64 = base64::engine::general_purpose::URL_SAFE;
        let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        let auth = serde_json::json!({"username": "AWS", "password": "pw", "serveraddress": ecr});
        let config = serde_json::json!({ ecr: {"username": "AWS", "password": "pw"} });
        let req = Request::builder()
            .header("X-Registry-Auth", b64.encode(auth.to_string()))
            .header("X-Registry-Config", b64.encode(config.to_string()))
            .body(())
            .unwrap();
        let req = proxy.map_auth_headers(req);
        let read = |name: &str| -> Value {
            let bytes = b64.decode(req.headers()[name].to_str().unwrap()).unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        assert_eq!(read("x-registry-auth")["serveraddress"], "127.0.0.1:5000");
        assert_eq!(read("x-registry-auth")["password"], "pw");
        assert_eq!(
            read("x-registry-config")["127.0.0.1:5000"]["username"],
            "AWS"
        );
    }

    #[test]
    fn queries_round_trip() {
        let q = query_pairs(Some("filters=%7B%22a%22%3A1%7D&t=x%3A1"));
        assert_eq!(q[0], ("filters".into(), "{\"a\":1}".into()));
        assert_eq!(query_pairs(Some(&encode_query(&q))), q);
    }
}
