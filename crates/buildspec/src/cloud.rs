//! The runtimes and versions of AWS CodeBuild's curated images, for `runtime-versions` on a
//! local image that stands in for one.
//!
//! Owns `data/cloud-runtimes.yml` (embedded; written by `scripts/cloud-runtimes.py` from the
//! runtimes.yml files of github.com/aws/aws-codebuild-docker-images, upstream commit recorded
//! in it), the lookup of an image name (`aws/codebuild/standard:7.0`, dated tags like
//! `7.0-24.10.29`, the older `amazonlinux2-*` names, the aarch64 ones) and, through
//! [`crate::runtimes::select_for`], what the cloud would have done with a selection: the
//! cloud's own error when its image lacks a version, or "the cloud has it, this machine cannot
//! get it offline" when only the local image lacks it. Pure.

use crate::raw::{self, Node, SNode};
use crate::runtimes::{RuntimeDef, RuntimesFile, VersionDef};
use std::sync::OnceLock;

/// The data file, as embedded.
pub const DATA: &str = include_str!("../data/cloud-runtimes.yml");

/// One curated image: its names and its runtimes (versions without commands; a runtime's
/// `default` entry, if any, in [`RuntimeDef::default`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudImage {
    /// The names CodeBuild accepts for it, the current one first.
    pub names: Vec<String>,
    /// Its runtimes.yml in aws/aws-codebuild-docker-images.
    pub file: String,
    pub runtimes: RuntimesFile,
}

/// The whole data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudData {
    /// The aws/aws-codebuild-docker-images commit the lists were read at.
    pub commit: String,
    pub images: Vec<CloudImage>,
}

impl CloudData {
    /// Read the data file's format (see `data/cloud-runtimes.yml`).
    pub fn parse(text: &str) -> Result<CloudData, String> {
        let root = raw::load(text)
            .map_err(|e| format!("line {}, column {}: {}", e.line, e.column, e.message))?;
        let top = entries(&root).ok_or("expected a mapping at the top")?;
        let field = |name: &str| top.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
        let commit = field("commit")
            .and_then(scalar)
            .ok_or("no 'commit'")?
            .to_owned();
        let Some(Node::Seq(items)) = field("images").map(|n| &n.value) else {
            return Err("no 'images' list".into());
        };
        let mut images = Vec::new();
        for item in items {
            let e = entries(item).ok_or("an image is not a mapping")?;
            let get = |name: &str| e.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
            let file = get("file")
                .and_then(scalar)
                .ok_or("an image has no 'file'")?;
            let names = get("names")
                .and_then(list)
                .ok_or_else(|| format!("{file}: no 'names' list"))?;
            let mut runtimes = RuntimesFile::default();
            for (name, versions) in get("runtimes")
                .and_then(entries)
                .ok_or_else(|| format!("{file}: no 'runtimes' mapping"))?
            {
                let versions =
                    list(versions).ok_or_else(|| format!("{file}: {name} is not a list"))?;
                let def = |v: &str| VersionDef {
                    name: v.to_owned(),
                    commands: Vec::new(),
                };
                runtimes.runtimes.push(RuntimeDef {
                    default: versions
                        .iter()
                        .any(|v| v == "default")
                        .then(|| def("default")),
                    versions: versions
                        .iter()
                        .filter(|v| *v != "default")
                        .map(|v| def(v))
                        .collect(),
                    name,
                });
            }
            images.push(CloudImage {
                names,
                file: file.to_owned(),
                runtimes,
            });
        }
        Ok(CloudData { commit, images })
    }

    /// The curated image named `image`: an exact name, or a dated tag of one
    /// (`aws/codebuild/standard:7.0-24.10.29`); a `@sha256:` digest is ignored.
    pub fn image(&self, image: &str) -> Option<&CloudImage> {
        let image = image.split('@').next().unwrap_or(image);
        let (repo, tag) = image.rsplit_once(':')?;
        self.images.iter().find(|c| {
            c.names.iter().any(|n| {
                n.rsplit_once(':').is_some_and(|(r, t)| {
                    r == repo
                        && (tag == t || tag.strip_prefix(t).is_some_and(|d| d.starts_with('-')))
                })
            })
        })
    }
}

/// The embedded data, parsed once. (It is checked by this module's tests; an unreadable file
/// would behave as "no curated image is known", never as a panic.)
pub fn data() -> &'static CloudData {
    static PARSED: OnceLock<CloudData> = OnceLock::new();
    PARSED.get_or_init(|| {
        CloudData::parse(DATA).unwrap_or(CloudData {
            commit: String::new(),
            images: Vec::new(),
        })
    })
}

/// The curated image named `image`, if `image` names one (see [`CloudData::image`]).
pub fn image(image: &str) -> Option<&'static CloudImage> {
    data().image(image)
}

fn entries(node: &SNode) -> Option<Vec<(String, &SNode)>> {
    match &node.value {
        Node::Map(e) => Some(
            e.iter()
                .filter_map(|(k, v)| scalar(k).map(|k| (k.to_owned(), v)))
                .collect(),
        ),
        _ => None,
    }
}

fn scalar(node: &SNode) -> Option<&str> {
    match &node.value {
        Node::Scalar { text, .. } => Some(text),
        _ => None,
    }
}

fn list(node: &SNode) -> Option<Vec<String>> {
    match &node.value {
        Node::Seq(items) => items.iter().map(|i| scalar(i).map(str::to_owned)).collect(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(image: &str, runtime: &str) -> (Vec<String>, bool) {
        let c = super::image(image).unwrap_or_else(|| panic!("{image} is not known"));
        let r = c
            .runtimes
            .runtimes
            .iter()
            .find(|r| r.name == runtime)
            .unwrap_or_else(|| panic!("{image} has no {runtime}"));
        (r.version_names(), r.default.is_some())
    }

    #[test]
    fn the_embedded_file_reads_and_records_its_upstream_commit() {
        let d = CloudData::parse(DATA).expect("the embedded data parses");
        assert_eq!(d.commit.len(), 40, "{}", d.commit);
        assert!(d.images.len() >= 19);
    }

    #[test]
    fn standard_7_0_lists_what_aws_runtimes_yml_lists() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            versions("aws/codebuild/standard:7.0", "java"),
            (
                s(&[
                    "corretto8",
                    "corretto11",
                    "corretto17",
                    "corretto21",
                    "corretto25"
                ]),
                true
            )
        );
        assert_eq!(
            versions("aws/codebuild/standard:7.0", "python").0,
            s(&["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"])
        );
        assert_eq!(
            versions("aws/codebuild/standard:7.0", "nodejs").0,
            s(&["18", "20", "22", "24"])
        );
        assert_eq!(
            versions("aws/codebuild/standard:7.0", "golang").0,
            s(&["1.20", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26"])
        );
        assert_eq!(
            super::image("aws/codebuild/standard:7.0")
                .unwrap()
                .runtimes
                .names(),
            s(&[
                "dotnet", "golang", "java", "nodejs", "php", "python", "ruby"
            ])
        );
    }

    #[test]
    fn every_name_localbuild_stands_in_for_is_known() {
        for (name, file) in [
            (
                "aws/codebuild/standard:5.0",
                "ubuntu/standard/5.0/runtimes.yml",
            ),
            (
                "aws/codebuild/standard:6.0",
                "ubuntu/standard/6.0/runtimes.yml",
            ),
            (
                "aws/codebuild/standard:8.0",
                "ubuntu/standard/8.0/runtimes.yml",
            ),
            (
                "aws/codebuild/amazonlinux-x86_64-standard:4.0",
                "al/x86_64/standard/4.0/runtimes.yml",
            ),
            (
                "aws/codebuild/amazonlinux2-x86_64-standard:4.0",
                "al/x86_64/standard/4.0/runtimes.yml",
            ),
            (
                "aws/codebuild/amazonlinux2-x86_64-standard:5.0",
                "al/x86_64/standard/5.0/runtimes.yml",
            ),
            (
                "aws/codebuild/amazonlinux-x86_64-standard:6.0",
                "al/x86_64/standard/6.0/runtimes.yml",
            ),
            (
                "aws/codebuild/amazonlinux2-x86_64-standard:corretto8",
                "al/x86_64/standard/corretto8/runtimes.yml",
            ),
            (
                "aws/codebuild/amazonlinux2-aarch64-standard:3.0",
                "al/aarch64/standard/3.0/runtimes.yml",
            ),
            (
                "aws/codebuild/amazonlinux-aarch64-standard:4.0",
                "al/aarch64/standard/4.0/runtimes.yml",
            ),
            (
                "aws/codebuild/standard:7.0-24.10.29",
                "ubuntu/standard/7.0/runtimes.yml",
            ),
        ] {
            assert_eq!(
                super::image(name).map(|c| c.file.as_str()),
                Some(file),
                "{name}"
            );
        }
        for name in [
            "aws/codebuild/standard:7",
            "aws/codebuild/standard:7.01",
            "aws/codebuild/standard:localbuild-test",
            "localbuild/codebuild-standard:1.0",
            "aws/codebuild/standard",
            "ubuntu:22.04",
        ] {
            assert_eq!(super::image(name), None, "{name}");
        }
    }

    #[test]
    fn older_images_have_fewer_versions_and_the_oldest_no_default() {
        assert_eq!(
            versions("aws/codebuild/standard:6.0", "nodejs"),
            (vec!["16".to_owned()], true)
        );
        assert!(!versions("aws/codebuild/standard:4.0", "nodejs").1);
    }

    #[test]
    fn a_malformed_data_file_is_an_error() {
        assert!(CloudData::parse("commit: x").is_err());
        assert!(CloudData::parse("commit: x\nimages:\n  - file: f\n").is_err());
        assert!(
            CloudData::parse(
                "commit: x\nimages:\n  - {file: f, names: [a:1], runtimes: {go: 1}}\n"
            )
            .is_err()
        );
        assert!(CloudData::parse("[").is_err());
    }
}
