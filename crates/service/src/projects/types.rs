//! A project's settings as Rust types: what CreateProject / UpdateProject give
//! ([`ProjectInput`]), what a build reads from the stored project ([`Project`]), StartBuild's
//! overrides and a pipeline's source ([`Overrides`]), and the pieces they share (source,
//! environment, variables, S3 artifacts and cache). They decode from CodeBuild's JSON (the
//! stored document is that JSON); the rules they obey are in [`super::checks`].

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// `EnvironmentVariable`: `kind` is PLAINTEXT (the default), PARAMETER_STORE or
/// SECRETS_MANAGER, checked when a build starts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    pub name: String,
    pub value: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `ProjectSource` as far as localbuild reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSource {
    #[serde(rename = "type")]
    pub kind: String,
    pub location: Option<String>,
    pub buildspec: Option<String>,
    pub git_clone_depth: Option<u32>,
    pub source_identifier: Option<String>,
}

/// `ProjectEnvironment` as far as localbuild reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Environment {
    pub image: String,
    pub environment_variables: Vec<EnvVar>,
    pub privileged_mode: Option<bool>,
    pub image_pull_credentials_type: Option<String>,
}

/// `ProjectArtifacts` (a project's `artifacts`, one of its `secondaryArtifacts`, or an
/// override). Decoding never fails: a value of the wrong shape is kept as `malformed` and
/// refused by [`Artifacts::check`](super::checks), in the order CodeBuild's checks run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Artifacts {
    /// `type`: NO_ARTIFACTS, S3 or CODEPIPELINE.
    pub kind: Option<String>,
    /// For S3, the bucket.
    pub location: Option<String>,
    pub path: Option<String>,
    pub name: Option<String>,
    /// NONE or BUILD_ID.
    pub namespace_type: Option<String>,
    /// NONE or ZIP.
    pub packaging: Option<String>,
    pub override_artifact_name: bool,
    pub encryption_disabled: bool,
    /// A secondary artifact's `artifactIdentifier`.
    pub artifact_identifier: Option<String>,
    /// What is wrong with the value's shape (not an object, a flag that is not a boolean).
    pub malformed: Option<String>,
}

impl Artifacts {
    /// CodeBuild's `ProjectArtifacts` JSON, typed.
    pub fn from_json(a: &Value) -> Artifacts {
        let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_owned);
        let malformed = if !a.is_object() {
            Some("expected a ProjectArtifacts structure".to_owned())
        } else {
            ["overrideArtifactName", "encryptionDisabled"]
                .into_iter()
                .find(|k| a.get(*k).is_some_and(|v| !v.is_boolean()))
                .map(|k| format!("{k} must be a boolean"))
        };
        let flag = |k: &str| a.get(k).and_then(Value::as_bool).unwrap_or(false);
        Artifacts {
            kind: text("type"),
            location: text("location"),
            path: text("path"),
            name: text("name"),
            namespace_type: text("namespaceType"),
            packaging: text("packaging"),
            override_artifact_name: flag("overrideArtifactName"),
            encryption_disabled: flag("encryptionDisabled"),
            artifact_identifier: text("artifactIdentifier"),
            malformed,
        }
    }
}

/// `ProjectCache` (a project's `cache` or `cacheOverride`); decoded like [`Artifacts`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cache {
    /// `type`: NO_CACHE, S3 or LOCAL.
    pub kind: Option<String>,
    /// For S3, `bucket[/prefix]`.
    pub location: Option<String>,
    pub malformed: Option<String>,
}

impl Cache {
    /// CodeBuild's `ProjectCache` JSON, typed.
    pub fn from_json(c: &Value) -> Cache {
        let text = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_owned);
        Cache {
            kind: text("type"),
            location: text("location"),
            malformed: (!c.is_object()).then(|| "expected a ProjectCache structure".to_owned()),
        }
    }
}

fn artifacts<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Artifacts>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.map(|v| Artifacts::from_json(&v)))
}

fn artifacts_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Artifacts>>, D::Error> {
    Ok(Option::<Vec<Value>>::deserialize(d)?
        .map(|list| list.iter().map(Artifacts::from_json).collect()))
}

fn cache<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cache>, D::Error> {
    Ok(Option::<Value>::deserialize(d)?.map(|v| Cache::from_json(&v)))
}

/// The checked fields of CreateProject / UpdateProject (the rest of the document is kept as
/// sent; `tags` are the server's).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectInput {
    pub name: String,
    pub source: Option<ProjectSource>,
    #[serde(default, deserialize_with = "artifacts")]
    pub artifacts: Option<Artifacts>,
    pub environment: Option<Environment>,
    pub service_role: Option<String>,
    pub secondary_sources: Option<Vec<ProjectSource>>,
    #[serde(default, deserialize_with = "artifacts_list")]
    pub secondary_artifacts: Option<Vec<Artifacts>>,
    #[serde(default, deserialize_with = "cache")]
    pub cache: Option<Cache>,
    pub timeout_in_minutes: Option<i64>,
    pub queued_timeout_in_minutes: Option<i64>,
    pub concurrent_build_limit: Option<i64>,
}

/// A stored project: the settings its builds use.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Project {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub source: ProjectSource,
    #[serde(default)]
    pub environment: Environment,
    pub timeout_in_minutes: Option<u64>,
    pub concurrent_build_limit: Option<i64>,
    #[serde(default, deserialize_with = "artifacts")]
    pub artifacts: Option<Artifacts>,
    #[serde(default, deserialize_with = "artifacts_list")]
    pub secondary_artifacts: Option<Vec<Artifacts>>,
    #[serde(default, deserialize_with = "cache")]
    pub cache: Option<Cache>,
}

/// The source of a build a pipeline starts (source type `CODEPIPELINE`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineSource {
    /// The primary input artifact, unpacked.
    pub dir: PathBuf,
    /// Where the primary input artifact is kept (`arn:aws:s3:::BUCKET/KEY`): the record's
    /// `source.location`.
    pub location: String,
    /// The other input artifacts, unpacked: (artifact name, folder).
    pub secondary: Vec<(String, PathBuf)>,
    /// The pipeline's name: the build's initiator is `codepipeline/<name>`.
    pub pipeline: String,
}

/// What a start changes of the project's settings: StartBuild's (and StartBuildBatch's)
/// overrides, or a pipeline's input artifact. An override replaces the project's setting as a
/// whole; variables are added after the project's.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub source_version: Option<String>,
    pub buildspec: Option<String>,
    pub environment_variables: Vec<EnvVar>,
    pub image: Option<String>,
    pub privileged_mode: Option<bool>,
    pub timeout_in_minutes: Option<i64>,
    pub source_type: Option<String>,
    pub source_location: Option<String>,
    pub git_clone_depth: Option<u32>,
    pub artifacts: Option<Artifacts>,
    pub secondary_artifacts: Option<Vec<Artifacts>>,
    pub cache: Option<Cache>,
    /// Session debugging (`debugSessionEnabled`).
    pub debug_session: bool,
    /// A pipeline's CodeBuild action: its input artifacts are the sources (no S3 artifacts).
    pub pipeline: Option<PipelineSource>,
}
