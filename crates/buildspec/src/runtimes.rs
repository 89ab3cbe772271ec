//! `runtime-versions`: a build image's `/codebuild/image/config/runtimes.yml` (AWS's format) and
//! the selection of the versions a buildspec asks for (reference §1.8).
//!
//! Owns the file's reading ([`RuntimesFile::parse`]: `runtimes → <name> → versions → <version>
//! → commands`, with the optional `default` entry of newer images) and CodeBuild's matching
//! rules ([`select`]): an exact version (`3.11`, `corretto17`), a major with `.x` (`3.x`,
//! `corretto17.x`: the highest version of that major), a bare number that names no version
//! (`3`: read as `3.x`, a localbuild decision), `latest` (the highest version), an environment
//! variable (`$MY_RUBY`), and the image's `default` entry for any other version (run with
//! `VERSION` set). Its errors are CodeBuild's `YAML_FILE_ERROR` messages. Pure: the engine reads
//! the file from the container and runs the commands.

use crate::raw::{self, Node, SNode};
use std::cmp::Ordering;

/// Where CodeBuild's images keep the file.
pub const RUNTIMES_FILE: &str = "/codebuild/image/config/runtimes.yml";

/// A parsed `runtimes.yml`: runtimes in file order, each with its versions in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimesFile {
    pub runtimes: Vec<RuntimeDef>,
}

/// One runtime of the image (`python`, `java`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeDef {
    pub name: String,
    /// Versions in file order; the `default` entry (custom versions) is kept apart.
    pub versions: Vec<VersionDef>,
    pub default: Option<VersionDef>,
}

/// One version of a runtime and the commands that select it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionDef {
    pub name: String,
    pub commands: Vec<String>,
}

/// One runtime the build selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// The runtime's name (`nodejs`).
    pub runtime: String,
    /// The version as the buildspec asked for it, variables expanded (`18.x`).
    pub requested: String,
    /// The image's version that serves it (`18`), or the requested one for `default`.
    pub version: String,
    /// The commands to run, in order.
    pub commands: Vec<String>,
    /// `Some(version)` when the image's `default` entry serves it: run with `VERSION` set.
    pub custom: Option<String>,
    /// For a `default` entry run because the local image lacks a version its cloud image has:
    /// the error to report if those commands fail (offline, nothing to install from).
    pub if_failed: Option<SelectError>,
}

/// Why the selection failed: CodeBuild's `YAML_FILE_ERROR` messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("Unknown runtime named '{name}'. This build image has the following runtimes: {}", available.join(", "))]
    UnknownRuntime {
        name: String,
        available: Vec<String>,
    },
    #[error("Unknown runtime version named '{version}' of {runtime}. This build image has the following versions: {}", available.join(", "))]
    UnknownVersion {
        runtime: String,
        version: String,
        available: Vec<String>,
    },
    #[error("The runtime version of {runtime} is empty")]
    EmptyVersion { runtime: String },
    /// The cloud image has the version (or installs it with its `default` entry); the local
    /// image that stands in for it does not and cannot get it offline.
    #[error("{}", not_local(cloud, *listed, runtime, version, local, available))]
    NotLocal {
        runtime: String,
        version: String,
        /// The AWS image name the build asked for.
        cloud: String,
        /// The cloud image lists the version (`false`: its `default` entry installs it).
        listed: bool,
        /// The image that runs the build here.
        local: String,
        /// The local image's versions of the runtime.
        available: Vec<String>,
    },
}

/// The text of [`SelectError::NotLocal`].
fn not_local(
    cloud: &str,
    listed: bool,
    runtime: &str,
    version: &str,
    local: &str,
    available: &[String],
) -> String {
    let cloud_does = if listed {
        format!("{cloud} has {runtime} {version}")
    } else {
        format!("{cloud} would install {runtime} {version} at build time")
    };
    let here = match available {
        [] => format!("it has no {runtime}"),
        v => format!("its {runtime} versions: {}", v.join(", ")),
    };
    format!(
        "{cloud_does}; the local image {local} does not have it and cannot get it offline \
         ({here}). Select a version it has, or build an image with {runtime} {version} and tag \
         it {cloud} (a local image of that name is always used)"
    )
}

impl RuntimesFile {
    /// Read a `runtimes.yml`. Versions keep their text as written (`1.20` stays `1.20`).
    pub fn parse(text: &str) -> Result<RuntimesFile, String> {
        let root = raw::load(text)
            .map_err(|e| format!("line {}, column {}: {}", e.line, e.column, e.message))?;
        let Some(top) = map(&root) else {
            return Err("expected a mapping at the top".into());
        };
        let Some((_, runtimes)) = top.iter().find(|(k, _)| k == "runtimes") else {
            return Err("no 'runtimes' mapping".into());
        };
        let mut file = RuntimesFile::default();
        for (name, def) in map(runtimes).ok_or("'runtimes' is not a mapping")? {
            let versions = map(def)
                .and_then(|d| d.into_iter().find(|(k, _)| k == "versions"))
                .and_then(|(_, v)| map(v))
                .ok_or_else(|| format!("runtime '{name}' has no 'versions' mapping"))?;
            let mut rt = RuntimeDef {
                name: name.clone(),
                versions: Vec::new(),
                default: None,
            };
            for (version, body) in versions {
                let commands = map(body)
                    .and_then(|b| b.into_iter().find(|(k, _)| k == "commands"))
                    .map(|(_, c)| commands(c))
                    .transpose()
                    .map_err(|e| format!("{name} {version}: {e}"))?
                    .unwrap_or_default();
                let def = VersionDef {
                    name: version,
                    commands,
                };
                if def.name == "default" {
                    rt.default = Some(def);
                } else {
                    rt.versions.push(def);
                }
            }
            file.runtimes.push(rt);
        }
        Ok(file)
    }

    /// The runtimes' names, sorted (as CodeBuild lists them).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.runtimes.iter().map(|r| r.name.clone()).collect();
        v.sort();
        v
    }
}

impl RuntimeDef {
    /// The versions' names, lowest first.
    pub fn version_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.versions.iter().map(|d| d.name.clone()).collect();
        v.sort_by(|a, b| version_cmp(a, b));
        v
    }

    /// The version that serves `wanted` (already expanded), if any.
    fn find(&self, wanted: &str) -> Option<&VersionDef> {
        if let Some(d) = self.versions.iter().find(|d| d.name == wanted) {
            return Some(d);
        }
        let highest = |prefix: Option<&str>| {
            self.versions
                .iter()
                .filter(|d| match prefix {
                    None => true,
                    Some(p) => {
                        d.name == p || d.name.strip_prefix(p).is_some_and(|r| r.starts_with('.'))
                    }
                })
                .max_by(|a, b| version_cmp(&a.name, &b.name))
        };
        if wanted.eq_ignore_ascii_case("latest") {
            return highest(None);
        }
        if let Some(major) = wanted
            .strip_suffix(".x")
            .or_else(|| wanted.strip_suffix(".X"))
        {
            return highest(Some(major));
        }
        if !wanted.is_empty() && wanted.bytes().all(|b| b.is_ascii_digit()) {
            return highest(Some(wanted));
        }
        None
    }
}

/// Select the runtimes a buildspec asks for (`runtime-versions`, in buildspec order) from the
/// image's file. `lookup` resolves `$NAME` / `${NAME}` versions from the build's environment.
pub fn select(
    file: &RuntimesFile,
    requested: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Selected>, SelectError> {
    let mut out = Vec::new();
    for (name, version) in requested {
        let wanted = expand(version, lookup);
        let Some(rt) = file.runtimes.iter().find(|r| &r.name == name) else {
            return Err(SelectError::UnknownRuntime {
                name: name.clone(),
                available: file.names(),
            });
        };
        if wanted.is_empty() {
            return Err(SelectError::EmptyVersion {
                runtime: name.clone(),
            });
        }
        let selected = match (rt.find(&wanted), &rt.default) {
            (Some(d), _) => Selected {
                runtime: name.clone(),
                requested: wanted.clone(),
                version: d.name.clone(),
                commands: d.commands.clone(),
                custom: None,
                if_failed: None,
            },
            (None, Some(d)) if !is_pattern(&wanted) => Selected {
                runtime: name.clone(),
                requested: wanted.clone(),
                version: wanted.clone(),
                commands: d.commands.clone(),
                custom: Some(wanted.clone()),
                if_failed: None,
            },
            (None, _) => {
                return Err(SelectError::UnknownVersion {
                    runtime: name.clone(),
                    version: wanted,
                    available: rt.version_names(),
                });
            }
        };
        out.push(selected);
    }
    Ok(out)
}

/// What the cloud image and the local image make of a selection.
#[derive(Debug, Clone, Copy)]
pub struct Images<'a> {
    /// The curated image the build names (`aws/codebuild/standard:7.0`), if it names one.
    pub cloud: Option<(&'a str, &'a RuntimesFile)>,
    /// The image that runs the build here (the stand-in, or the image itself).
    pub local: &'a str,
}

/// [`select`], with the cloud's rules first when the build names a curated image: a runtime
/// or version the cloud image lacks fails with the cloud's message and the cloud's lists; one
/// the cloud has and the local file lacks runs the local `default` entry (which installs it
/// when it can; [`Selected::if_failed`] says what to report when it cannot) or fails with
/// [`SelectError::NotLocal`]. Without a curated image this is [`select`].
pub fn select_for(
    images: Images,
    file: &RuntimesFile,
    requested: &[(String, String)],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Selected>, SelectError> {
    let Some((cloud_name, cloud)) = images.cloud else {
        return select(file, requested, lookup);
    };
    let mut out = Vec::new();
    for (name, version) in requested {
        let one = [(name.clone(), version.clone())];
        // The cloud's verdict, with the cloud's own messages.
        let in_cloud = select(cloud, &one, lookup)?.remove(0);
        let not_local = || {
            let local_rt = file.runtimes.iter().find(|r| &r.name == name);
            SelectError::NotLocal {
                runtime: name.clone(),
                version: in_cloud.requested.clone(),
                cloud: cloud_name.to_owned(),
                listed: in_cloud.custom.is_none(),
                local: images.local.to_owned(),
                available: local_rt.map(RuntimeDef::version_names).unwrap_or_default(),
            }
        };
        match select(file, &one, lookup) {
            Ok(mut s) => {
                let mut s = s.remove(0);
                if s.custom.is_some() {
                    s.if_failed = Some(not_local());
                }
                out.push(s);
            }
            Err(_) => return Err(not_local()),
        }
    }
    Ok(out)
}

/// The text of the version as CodeBuild logs it, variables expanded.
pub fn shown_version(version: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    expand(version, lookup)
}

/// `latest` and `N.x` name no single version: the `default` entry cannot serve them.
fn is_pattern(v: &str) -> bool {
    v.eq_ignore_ascii_case("latest") || v.ends_with(".x") || v.ends_with(".X")
}

/// A version given as `$NAME` or `${NAME}`: the variable's value (empty when unset).
fn expand(v: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let v = v.trim();
    let name = v
        .strip_prefix("${")
        .and_then(|r| r.strip_suffix('}'))
        .or_else(|| v.strip_prefix('$'));
    match name {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            lookup(n).unwrap_or_default()
        }
        _ => v.to_owned(),
    }
}

/// Versions compared part by part (`.`-separated), numbers as numbers: `3.9 < 3.10 < 3.11`,
/// `corretto8 < corretto11`.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let key = |s: &str| -> Vec<(String, u64)> {
        s.split('.')
            .map(|part| {
                let digits_at = part
                    .find(|c: char| c.is_ascii_digit())
                    .unwrap_or(part.len());
                let (word, num) = part.split_at(digits_at);
                (word.to_owned(), num.parse().unwrap_or(0))
            })
            .collect()
    };
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

fn map(node: &SNode) -> Option<Vec<(String, &SNode)>> {
    match &node.value {
        Node::Map(entries) => Some(
            entries
                .iter()
                .filter_map(|(k, v)| match &k.value {
                    Node::Scalar { text, .. } => Some((text.clone(), v)),
                    _ => None,
                })
                .collect(),
        ),
        Node::Null => Some(Vec::new()),
        _ => None,
    }
}

fn commands(node: &SNode) -> Result<Vec<String>, String> {
    match &node.value {
        Node::Null => Ok(Vec::new()),
        Node::Seq(items) => items
            .iter()
            .map(|i| match &i.value {
                Node::Scalar { text, .. } => Ok(text.clone()),
                other => Err(format!("a command is {}, not text", other.kind())),
            })
            .collect(),
        other => Err(format!("'commands' is {}, not a list", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of aws/aws-codebuild-docker-images `ubuntu/standard/7.0/runtimes.yml`
    /// (commands shortened), plus a `default` entry as the Amazon Linux images have.
    const AWS: &str = r#"version: 0.1

runtimes:
  java:
    versions:
      corretto17:
        commands:
          - echo "Installing Java version 17 ..."

          - export JAVA_HOME="$JAVA_17_HOME"
      corretto21:
        commands:
          - echo "Installing Java version 21 ..."
  golang:
    versions:
      1.20:
        commands:
          - echo "Installing Go version 1.20 ..."
          - goenv global  $GOLANG_20_VERSION
      1.21:
        commands:
          - echo "Installing Go version 1.21 ..."
  python:
    versions:
      3.9:
        commands:
          - echo "Installing Python version 3.9 ..."
      3.11:
        commands:
          - echo "Installing Python version 3.11 ..."
          - pyenv global  $PYTHON_311_VERSION
      3.10:
        commands:
          - echo "Installing Python version 3.10 ..."
  nodejs:
    versions:
      18:
        commands:
          - echo "Installing Node.js version 18 ..."
          - n $NODE_18_VERSION
      20:
        commands:
          - echo "Installing Node.js version 20 ..."
      default:
        commands:
          - echo "Installing custom Node.js version $VERSION ..."
"#;

    fn file() -> RuntimesFile {
        RuntimesFile::parse(AWS).expect("AWS's format parses")
    }

    fn no_vars(_: &str) -> Option<String> {
        None
    }

    fn pick(runtime: &str, version: &str) -> Result<Selected, SelectError> {
        select(&file(), &[(runtime.into(), version.into())], &no_vars).map(|mut v| v.remove(0))
    }

    #[test]
    fn the_aws_format_is_read_with_versions_as_written() {
        let f = file();
        let names: Vec<_> = f.runtimes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["java", "golang", "python", "nodejs"]);
        let go = &f.runtimes[1];
        assert_eq!(go.versions[0].name, "1.20", "1.20 is not the number 1.2");
        assert_eq!(
            go.versions[0].commands,
            [
                "echo \"Installing Go version 1.20 ...\"",
                "goenv global  $GOLANG_20_VERSION"
            ]
        );
        assert_eq!(f.runtimes[3].default.as_ref().unwrap().commands.len(), 1);
        assert_eq!(f.runtimes[3].versions.len(), 2, "default is not a version");
    }

    #[test]
    fn an_exact_version_selects_its_commands() {
        let s = pick("python", "3.11").unwrap();
        assert_eq!(s.version, "3.11");
        assert_eq!(s.commands[1], "pyenv global  $PYTHON_311_VERSION");
        assert_eq!(pick("java", "corretto17").unwrap().version, "corretto17");
        assert_eq!(pick("nodejs", "18").unwrap().version, "18");
    }

    #[test]
    fn major_dot_x_selects_the_highest_minor() {
        assert_eq!(pick("python", "3.x").unwrap().version, "3.11");
        assert_eq!(pick("golang", "1.x").unwrap().version, "1.21");
        assert_eq!(pick("nodejs", "18.x").unwrap().version, "18");
        assert_eq!(pick("java", "corretto21.x").unwrap().version, "corretto21");
    }

    #[test]
    fn a_bare_major_without_its_own_entry_reads_as_dot_x() {
        assert_eq!(pick("python", "3").unwrap().version, "3.11");
    }

    #[test]
    fn latest_selects_the_highest_version() {
        assert_eq!(pick("python", "latest").unwrap().version, "3.11");
        assert_eq!(pick("java", "latest").unwrap().version, "corretto21");
        assert_eq!(pick("nodejs", "latest").unwrap().version, "20");
    }

    #[test]
    fn an_unknown_runtime_lists_the_images_runtimes_sorted() {
        let e = pick("docker", "20").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unknown runtime named 'docker'. This build image has the following runtimes: golang, java, nodejs, python"
        );
    }

    #[test]
    fn an_unknown_version_lists_the_runtimes_versions_in_order() {
        let e = pick("python", "3.8").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Unknown runtime version named '3.8' of python. This build image has the following versions: 3.9, 3.10, 3.11"
        );
        assert!(pick("python", "2.x").is_err());
        assert!(pick("java", "corretto8").is_err());
    }

    #[test]
    fn the_default_entry_serves_other_versions_with_version_set() {
        let s = pick("nodejs", "16.20.2").unwrap();
        assert_eq!(s.custom.as_deref(), Some("16.20.2"));
        assert_eq!(
            s.commands,
            ["echo \"Installing custom Node.js version $VERSION ...\""]
        );
        assert!(
            pick("nodejs", "16.x").is_err(),
            "a pattern is not a version to install"
        );
    }

    #[test]
    fn a_variable_names_the_version() {
        let vars = |n: &str| (n == "PY").then(|| "3.10".to_owned());
        let s = select(&file(), &[("python".into(), "$PY".into())], &vars).unwrap();
        assert_eq!(
            (s[0].requested.as_str(), s[0].version.as_str()),
            ("3.10", "3.10")
        );
        let s = select(&file(), &[("python".into(), "${PY}".into())], &vars).unwrap();
        assert_eq!(s[0].version, "3.10");
        let e = select(&file(), &[("python".into(), "$NOPE".into())], &vars).unwrap_err();
        assert_eq!(
            e,
            SelectError::EmptyVersion {
                runtime: "python".into()
            }
        );
    }

    #[test]
    fn several_runtimes_are_selected_in_buildspec_order() {
        let req = [
            ("nodejs".to_owned(), "20".to_owned()),
            ("golang".to_owned(), "1.20".to_owned()),
        ];
        let s = select(&file(), &req, &no_vars).unwrap();
        let got: Vec<_> = s
            .iter()
            .map(|s| (s.runtime.as_str(), s.version.as_str()))
            .collect();
        assert_eq!(got, [("nodejs", "20"), ("golang", "1.20")]);
    }

    #[test]
    fn versions_compare_part_by_part() {
        let mut v = vec![
            "3.10",
            "3.9",
            "3.11",
            "corretto11",
            "corretto8",
            "1.20",
            "1.3",
        ];
        v.sort_by(|a, b| version_cmp(a, b));
        assert_eq!(
            v,
            [
                "1.3",
                "1.20",
                "3.9",
                "3.10",
                "3.11",
                "corretto8",
                "corretto11"
            ]
        );
    }

    #[test]
    fn a_malformed_file_is_an_error_not_a_panic() {
        assert!(RuntimesFile::parse("runtimes: [1, 2]").is_err());
        assert!(RuntimesFile::parse("version: 0.1").is_err());
        assert!(
            RuntimesFile::parse("runtimes:\n  go:\n    versions:\n      1: {commands: {a: b}}\n")
                .is_err()
        );
        assert!(RuntimesFile::parse(": : :").is_err());
    }
    /// A local stand-in with fewer versions than standard:7.0, and a `default` for nodejs.
    const LOCAL: &str = r#"runtimes:
  python:
    versions:
      3.11:
        commands:
          - echo "Installing Python version 3.11 ..."
  nodejs:
    versions:
      18:
        commands:
          - echo 18
      default:
        commands:
          - install-node $VERSION
  extra:
    versions:
      1:
        commands:
          - echo extra
"#;

    /// What `runtime version` does on the local stand-in of `aws/codebuild/standard:7.0`.
    fn on_7_0(runtime: &str, version: &str) -> Result<Selected, SelectError> {
        let cloud = crate::cloud::image("aws/codebuild/standard:7.0").unwrap();
        let local = RuntimesFile::parse(LOCAL).unwrap();
        let images = Images {
            cloud: Some(("aws/codebuild/standard:7.0", &cloud.runtimes)),
            local: "localbuild/codebuild-standard:1.0",
        };
        select_for(
            images,
            &local,
            &[(runtime.into(), version.into())],
            &no_vars,
        )
        .map(|mut v| v.remove(0))
    }

    #[test]
    fn on_a_stand_in_the_cloud_decides_first_then_the_local_image() {
        // (runtime, version, what happens: the local version, "custom", or the error text)
        let table: &[(&str, &str, &str)] = &[
            // Local and cloud have it.
            ("python", "3.11", "3.11"),
            ("python", "3.x", "3.11"),
            ("nodejs", "18", "18"),
            // The cloud lacks it: the cloud's own message, the cloud's lists.
            (
                "python",
                "2.x",
                "Unknown runtime version named '2.x' of python. This build image has the following versions: 3.9, 3.10, 3.11, 3.12, 3.13, 3.14",
            ),
            (
                "docker",
                "20",
                "Unknown runtime named 'docker'. This build image has the following runtimes: dotnet, golang, java, nodejs, php, python, ruby",
            ),
            (
                "extra",
                "1",
                "Unknown runtime named 'extra'. This build image has the following runtimes: dotnet, golang, java, nodejs, php, python, ruby",
            ),
            // The cloud has it, the local image does not.
            (
                "python",
                "3.12",
                "aws/codebuild/standard:7.0 has python 3.12; the local image localbuild/codebuild-standard:1.0 does not have it and cannot get it offline (its python versions: 3.11). Select a version it has, or build an image with python 3.12 and tag it aws/codebuild/standard:7.0 (a local image of that name is always used)",
            ),
            (
                "python",
                "3.8",
                "aws/codebuild/standard:7.0 would install python 3.8 at build time; the local image localbuild/codebuild-standard:1.0 does not have it and cannot get it offline (its python versions: 3.11). Select a version it has, or build an image with python 3.8 and tag it aws/codebuild/standard:7.0 (a local image of that name is always used)",
            ),
            (
                "java",
                "corretto21",
                "aws/codebuild/standard:7.0 has java corretto21; the local image localbuild/codebuild-standard:1.0 does not have it and cannot get it offline (it has no java). Select a version it has, or build an image with java corretto21 and tag it aws/codebuild/standard:7.0 (a local image of that name is always used)",
            ),
            // The cloud has it, the local image's `default` entry tries to install it.
            ("nodejs", "20", "custom"),
            ("nodejs", "16.20.2", "custom"),
        ];
        for (runtime, version, expected) in table {
            let got = match on_7_0(runtime, version) {
                Ok(s) if s.custom.is_some() => "custom".to_owned(),
                Ok(s) => s.version,
                Err(e) => e.to_string(),
            };
            assert_eq!(&got, expected, "{runtime} {version}");
        }
    }

    #[test]
    fn a_local_default_entry_carries_the_offline_message_for_when_it_fails() {
        let s = on_7_0("nodejs", "20").unwrap();
        assert_eq!(s.commands, ["install-node $VERSION"]);
        let e = s.if_failed.expect("the cloud lists nodejs 20").to_string();
        assert!(
            e.starts_with("aws/codebuild/standard:7.0 has nodejs 20; the local image localbuild/codebuild-standard:1.0 does not have it and cannot get it offline (its nodejs versions: 18)"),
            "{e}"
        );
        let e = on_7_0("nodejs", "16")
            .unwrap()
            .if_failed
            .unwrap()
            .to_string();
        assert!(e.contains("would install nodejs 16 at build time"), "{e}");
    }

    #[test]
    fn without_a_curated_image_the_local_file_alone_decides() {
        let local = RuntimesFile::parse(LOCAL).unwrap();
        let images = Images {
            cloud: None,
            local: "my/image:1",
        };
        let one = |r: &str, v: &str| {
            select_for(images, &local, &[(r.into(), v.into())], &no_vars).map(|mut v| v.remove(0))
        };
        assert_eq!(one("extra", "1").unwrap().version, "1");
        assert_eq!(
            one("python", "3.12").unwrap_err().to_string(),
            "Unknown runtime version named '3.12' of python. This build image has the following versions: 3.11"
        );
        assert_eq!(one("nodejs", "20").unwrap().if_failed, None);
    }
}
