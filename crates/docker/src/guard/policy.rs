//! What a privileged build may ask of Docker: pure checks and rewrites of Engine API request
//! bodies and queries, no I/O. The proxy ([`super`]) looks up what they name (containers,
//! volumes) and forwards or refuses.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Capabilities that reach past the container (kernel modules, mounts, raw devices, other
/// processes, the host's network configuration).
pub const DANGEROUS_CAPS: &[&str] = &[
    "ALL",
    "SYS_ADMIN",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_PTRACE",
    "SYS_BOOT",
    "SYS_TIME",
    "DAC_READ_SEARCH",
    "NET_ADMIN",
    "SYSLOG",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "BPF",
    "PERFMON",
    "LINUX_IMMUTABLE",
];

/// Maps a registry host (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`) to the address of a registry
/// this machine runs (`127.0.0.1:PORT`), for image references a build's Docker commands use:
/// pull, push, tag, inspect, run, `docker login` and the credentials Docker sends.
pub trait RegistryMap: Send + Sync + 'static {
    /// The local address for `host`, or `None` to leave it as it is.
    fn map(&self, host: &str) -> Option<String>;
}

/// A refused call: what was asked, phrased for the build's log and Docker's error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// What backs one of the build's source folders on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backing {
    /// A volume of the build's (the copied source).
    Volume(String),
    /// A host folder (the build mounts its source).
    Host(PathBuf),
}

/// The rules of one build's guarded API.
#[derive(Clone)]
pub struct Policy {
    /// Put on every container, volume and network the build creates.
    pub labels: HashMap<String, String>,
    /// The build's source folders in its container, longest first.
    pub sources: Vec<(String, Backing)>,
    pub registry: Option<Arc<dyn RegistryMap>>,
}

/// What a container create names that the proxy must check against the daemon.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// Containers it joins or takes volumes from: must be the build's.
    pub containers: Vec<String>,
    /// Named volumes it mounts: must be the build's, or new (then made with its labels).
    pub volumes: Vec<String>,
}

fn refuse<T>(what: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(what.into()))
}

impl Policy {
    /// Check and rewrite a `POST /containers/create` body.
    pub fn container_create(&self, body: &mut Value) -> Result<Names, Refusal> {
        let Some(obj) = body.as_object_mut() else {
            return refuse("a container whose definition is not a JSON object");
        };
        self.add_labels(obj, "Labels");
        if let Some(image) = obj.get("Image").and_then(Value::as_str) {
            let mapped = self.map_ref(image);
            obj.insert("Image".into(), Value::String(mapped));
        }
        let mut names = Names::default();
        let Some(host) = obj.get_mut("HostConfig").and_then(Value::as_object_mut) else {
            return Ok(names);
        };
        if host.get("Privileged").and_then(Value::as_bool) == Some(true) {
            return refuse("a privileged container (--privileged)");
        }
        for (key, flag) in [
            ("NetworkMode", "--network"),
            ("PidMode", "--pid"),
            ("IpcMode", "--ipc"),
            ("UTSMode", "--uts"),
            ("UsernsMode", "--userns"),
            ("CgroupnsMode", "--cgroupns"),
        ] {
            let mode = host.get(key).and_then(Value::as_str).unwrap_or("");
            if mode == "host" {
                return refuse(format!("the host's namespace ({flag}=host)"));
            }
            if let Some(other) = mode.strip_prefix("container:") {
                names.containers.push(other.to_owned());
            }
        }
        for (key, flag) in [
            ("Devices", "--device"),
            ("DeviceRequests", "--gpus/--device"),
            ("DeviceCgroupRules", "--device-cgroup-rule"),
        ] {
            if host
                .get(key)
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty())
            {
                return refuse(format!("host devices ({flag})"));
            }
        }
        for cap in strings(host.get("CapAdd")) {
            let c = cap.to_ascii_uppercase();
            let c = c.strip_prefix("CAP_").unwrap_or(&c);
            if DANGEROUS_CAPS.contains(&c) {
                return refuse(format!("the capability {cap} (--cap-add)"));
            }
        }
        for opt in strings(host.get("SecurityOpt")) {
            let o = opt.replace(':', "=");
            if o.contains("unconfined") || o == "label=disable" {
                return refuse(format!("the security option {opt} (--security-opt)"));
            }
        }
        if host
            .get("VolumeDriver")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty() && d != "local")
        {
            return refuse("a volume driver (--volume-driver)");
        }
        for from in strings(host.get("VolumesFrom")) {
            let c = from.split(':').next().unwrap_or_default();
            names.containers.push(c.to_owned());
        }
        // -v: `SOURCE:TARGET[:OPTIONS]`, SOURCE a host path or a volume's name.
        if let Some(binds) = host.get_mut("Binds").and_then(Value::as_array_mut) {
            for bind in binds.iter_mut() {
                let Some(text) = bind.as_str() else {
                    return refuse("a bind mount that is not a string");
                };
                let (source, rest) = text.split_once(':').unwrap_or((text, ""));
                if source.starts_with('/') {
                    let backing = self.source_backing(source)?;
                    *bind = Value::String(format!("{backing}:{rest}"));
                } else {
                    names.volumes.push(source.to_owned());
                }
            }
        }
        // --mount
        if let Some(mounts) = host.get_mut("Mounts").and_then(Value::as_array_mut) {
            for mount in mounts.iter_mut() {
                let Some(m) = mount.as_object_mut() else {
                    return refuse("a mount that is not a JSON object");
                };
                let kind = m.get("Type").and_then(Value::as_str).unwrap_or("volume");
                let source = m
                    .get("Source")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                match kind {
                    "bind" => {
                        let backing = self.source_backing(&source)?;
                        if backing.starts_with('/') {
                            m.insert("Source".into(), Value::String(backing));
                        } else {
                            m.insert("Type".into(), Value::String("volume".into()));
                            m.insert("Source".into(), Value::String(backing));
                            m.remove("BindOptions");
                        }
                    }
                    "volume" => {
                        let driver = m.get("VolumeOptions").and_then(|o| o.get("DriverConfig"));
                        let named_driver = driver
                            .and_then(|d| d.get("Name"))
                            .and_then(Value::as_str)
                            .is_some_and(|n| !n.is_empty() && n != "local");
                        let options = driver
                            .and_then(|d| d.get("Options"))
                            .and_then(Value::as_object)
                            .is_some_and(|o| !o.is_empty());
                        if named_driver || options {
                            return refuse(
                                "a volume with driver options (--mount volume-driver/volume-opt)",
                            );
                        }
                        if !source.is_empty() {
                            names.volumes.push(source);
                        }
                    }
                    "tmpfs" => {}
                    other => return refuse(format!("a mount of type {other}")),
                }
            }
        }
        Ok(names)
    }

    /// What a bind of the container path `source` mounts instead: the build's own source
    /// (a volume's name, or the host folder that holds it); any other path is refused.
    fn source_backing(&self, source: &str) -> Result<String, Refusal> {
        let path = normalise(source)
            .ok_or_else(|| Refusal(format!("a bind mount of {source} (a path with ..)")))?;
        for (dir, backing) in &self.sources {
            let rest = if path == *dir {
                Some("")
            } else {
                path.strip_prefix(dir.as_str())
                    .and_then(|r| r.strip_prefix('/'))
            };
            let Some(rest) = rest else { continue };
            return match backing {
                Backing::Volume(v) if rest.is_empty() => Ok(v.clone()),
                Backing::Volume(_) => refuse(format!(
                    "a bind mount of {source}: of the build's source only the folder itself ({dir}) can be mounted"
                )),
                Backing::Host(host) if rest.is_empty() => Ok(host.display().to_string()),
                Backing::Host(host) => localbuild_confine::Root::new(host)
                    .confined("docker bind mount", rest)
                    .map(|p| p.display().to_string())
                    .map_err(|e| Refusal(format!("a bind mount of {source} ({e})"))),
            };
        }
        if path == "/var/run/docker.sock" || path == "/run/docker.sock" {
            return refuse(format!(
                "a bind mount of {source} (passing the Docker socket on)"
            ));
        }
        refuse(format!(
            "a bind mount of the host path {source} (-v/--mount type=bind)"
        ))
    }

    /// Check and rewrite a `POST /volumes/create` body.
    pub fn volume_create(&self, body: &mut Value) -> Result<(), Refusal> {
        let Some(obj) = body.as_object_mut() else {
            return refuse("a volume whose definition is not a JSON object");
        };
        if obj
            .get("Driver")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty() && d != "local")
        {
            return refuse("a volume driver (docker volume create --driver)");
        }
        if obj
            .get("DriverOpts")
            .and_then(Value::as_object)
            .is_some_and(|o| !o.is_empty())
        {
            return refuse("a volume with driver options (docker volume create --opt)");
        }
        self.add_labels(obj, "Labels");
        Ok(())
    }

    /// Check and rewrite a `POST /networks/create` body.
    pub fn network_create(&self, body: &mut Value) -> Result<(), Refusal> {
        let Some(obj) = body.as_object_mut() else {
            return refuse("a network whose definition is not a JSON object");
        };
        let driver = obj.get("Driver").and_then(Value::as_str).unwrap_or("");
        if !matches!(driver, "" | "bridge") {
            return refuse(format!(
                "a network with the driver {driver} (only bridge networks)"
            ));
        }
        self.add_labels(obj, "Labels");
        Ok(())
    }

    /// Check a `POST /containers/{id}/exec` body.
    pub fn exec_create(&self, body: &Value) -> Result<(), Refusal> {
        if body.get("Privileged").and_then(Value::as_bool) == Some(true) {
            return refuse("a privileged command (docker exec --privileged)");
        }
        Ok(())
    }

    fn add_labels(&self, obj: &mut Map<String, Value>, key: &str) {
        let labels = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        if let Some(labels) = labels.as_object_mut() {
            for (k, v) in &self.labels {
                labels.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }

    /// The registry host of an image reference mapped by [`RegistryMap`] (the reference as it
    /// is without a mapping).
    pub fn map_ref(&self, reference: &str) -> String {
        let Some(map) = &self.registry else {
            return reference.to_owned();
        };
        match reference.split_once('/') {
            Some((host, rest)) if is_registry_host(host) => match map.map(host) {
                Some(local) => format!("{local}/{rest}"),
                None => reference.to_owned(),
            },
            _ => reference.to_owned(),
        }
    }

    /// A registry host (`docker login`'s server address, an auth entry's key) mapped.
    pub fn map_host(&self, host: &str) -> String {
        let bare = host
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        match self.registry.as_ref().and_then(|m| m.map(bare)) {
            Some(local) => local,
            None => host.to_owned(),
        }
    }

    /// A `/build` query: `networkmode=host` is refused.
    pub fn build_query(&self, query: &[(String, String)]) -> Result<(), Refusal> {
        if query.iter().any(|(k, v)| k == "networkmode" && v == "host") {
            return refuse("a build on the host's network (docker build --network host)");
        }
        Ok(())
    }
}

/// `host` is a registry's host name (has a dot or a port, or is localhost), not a Docker Hub
/// namespace.
fn is_registry_host(host: &str) -> bool {
    host.contains('.') || host.contains(':') || host == "localhost"
}

/// The strings of a JSON array (none for anything else).
fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// An absolute path without `.`, empty components and a trailing `/`; `None` with `..`.
fn normalise(path: &str) -> Option<String> {
    let mut out = String::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => {
                out.push('/');
                out.push_str(p);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Ecr;
    impl RegistryMap for Ecr {
        fn map(&self, host: &str) -> Option<String> {
            host.ends_with(".amazonaws.com")
                .then(|| "127.0.0.1:5000".to_owned())
        }
    }

    fn policy() -> Policy {
        Policy {
            labels: HashMap::from([("localbuild.build-id".to_owned(), "p:1".to_owned())]),
            sources: vec![(
                "/codebuild/output/src1/src".to_owned(),
                Backing::Volume("vol1".to_owned()),
            )],
            registry: None,
        }
    }

    fn create(host: Value) -> Result<(Value, Names), Refusal> {
        let mut body = json!({"Image": "busybox", "HostConfig": host});
        policy().container_create(&mut body).map(|n| (body, n))
    }

    #[test]
    fn host_paths_privileges_namespaces_devices_and_caps_are_refused() {
        for host in [
            json!({"Binds": ["/:/host"]}),
            json!({"Binds": ["/tmp:/t:ro"]}),
            json!({"Binds": ["/codebuild/output/src1/src/../../..:/x"]}),
            json!({"Binds": ["/var/run/docker.sock:/var/run/docker.sock"]}),
            json!({"Mounts": [{"Type": "bind", "Source": "/etc", "Target": "/e"}]}),
            json!({"Mounts": [{"Type": "volume", "Source": "v", "Target": "/v",
                "VolumeOptions": {"DriverConfig": {"Name": "local",
                "Options": {"type": "none", "o": "bind", "device": "/"}}}}]}),
            json!({"Privileged": true}),
            json!({"PidMode": "host"}),
            json!({"NetworkMode": "host"}),
            json!({"IpcMode": "host"}),
            json!({"UTSMode": "host"}),
            json!({"UsernsMode": "host"}),
            json!({"Devices": [{"PathOnHost": "/dev/sda"}]}),
            json!({"DeviceRequests": [{"Count": -1}]}),
            json!({"CapAdd": ["SYS_ADMIN"]}),
            json!({"CapAdd": ["cap_sys_module"]}),
            json!({"SecurityOpt": ["apparmor=unconfined"]}),
            json!({"VolumeDriver": "sshfs"}),
        ] {
            assert!(create(host.clone()).is_err(), "{host} was allowed");
        }
    }

    #[test]
    fn the_source_folder_maps_to_what_backs_it_and_labels_are_added() {
        let (body, names) = create(
            json!({"Binds": ["/codebuild/output/src1/src/:/src:ro", "cache:/c"],
            "CapAdd": ["NET_BIND_SERVICE"], "NetworkMode": "bridge"}),
        )
        .unwrap();
        assert_eq!(
            body["HostConfig"]["Binds"],
            json!(["vol1:/src:ro", "cache:/c"])
        );
        assert_eq!(body["Labels"]["localbuild.build-id"], "p:1");
        assert_eq!(names.volumes, vec!["cache"]);
        let (body, _) = create(json!({"Mounts": [{"Type": "bind",
            "Source": "/codebuild/output/src1/src", "Target": "/src"}]}))
        .unwrap();
        assert_eq!(body["HostConfig"]["Mounts"][0]["Type"], "volume");
        assert_eq!(body["HostConfig"]["Mounts"][0]["Source"], "vol1");
        let err = create(json!({"Binds": ["/codebuild/output/src1/src/app:/app"]})).unwrap_err();
        assert!(err.0.contains("only the folder itself"), "{}", err.0);
    }

    #[test]
    fn joined_containers_are_named_for_the_proxy_to_check() {
        let (_, names) =
            create(json!({"NetworkMode": "container:abc", "VolumesFrom": ["def:ro"]})).unwrap();
        assert_eq!(names.containers, vec!["abc", "def"]);
    }

    #[test]
    fn volumes_and_networks_get_labels_and_no_host_options() {
        let p = policy();
        let mut v = json!({"Name": "x"});
        p.volume_create(&mut v).unwrap();
        assert_eq!(v["Labels"]["localbuild.build-id"], "p:1");
        assert!(
            p.volume_create(&mut json!({"DriverOpts": {"device": "/"}}))
                .is_err()
        );
        assert!(p.network_create(&mut json!({"Driver": "macvlan"})).is_err());
        assert!(p.exec_create(&json!({"Privileged": true})).is_err());
        let q = vec![("networkmode".to_owned(), "host".to_owned())];
        assert!(p.build_query(&q).is_err());
    }

    #[test]
    fn registry_hosts_map_only_with_a_map() {
        let mut p = policy();
        let r = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1";
        assert_eq!(p.map_ref(r), r);
        p.registry = Some(Arc::new(Ecr));
        assert_eq!(p.map_ref(r), "127.0.0.1:5000/app:1");
        assert_eq!(p.map_ref("library/python:3"), "library/python:3");
        assert_eq!(
            p.map_host("https://123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            "127.0.0.1:5000"
        );
    }
}
