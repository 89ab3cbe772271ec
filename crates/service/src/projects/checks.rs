//! The rules a project's settings and a start's overrides obey, with CodeBuild's
//! `InvalidInputException` texts (each names its field), and the steps from checked settings
//! to the engine's values: S3 artifacts and cache as folders confined under the S3 root
//! ([`s3_artifact`], [`s3_cache`]) and the source resolved on this machine
//! ([`resolve_source`]).

use super::ProjectError;
use super::types::{Artifacts, Cache, ProjectInput};
use localbuild_engine::request::check_project_name;
use std::path::Path;

fn invalid(m: String) -> ProjectError {
    ProjectError::InvalidInput(m)
}

/// A project's name: 2 to 150 characters by CodeBuild's rule.
pub fn check_name(name: &str) -> Result<(), ProjectError> {
    if name.len() > 150 || check_project_name(name).is_err() {
        return Err(invalid(format!(
            "Invalid project name: {name}. The name must be 2 to 150 characters: letters, digits, - and _, starting with a letter or digit"
        )));
    }
    Ok(())
}

/// CodeBuild's source types.
pub fn check_source_type(kind: &str) -> Result<(), ProjectError> {
    const TYPES: [&str; 9] = [
        "CODECOMMIT",
        "CODEPIPELINE",
        "GITHUB",
        "GITLAB",
        "GITLAB_SELF_MANAGED",
        "S3",
        "BITBUCKET",
        "GITHUB_ENTERPRISE",
        "NO_SOURCE",
    ];
    if TYPES.contains(&kind) {
        Ok(())
    } else {
        Err(invalid(format!("Invalid source type: {kind}")))
    }
}

/// StartBuild's `timeoutInMinutesOverride`: 5 to 2160 minutes.
pub fn check_timeout_override(t: i64) -> Result<u64, ProjectError> {
    u64::try_from(t)
        .ok()
        .filter(|t| (5..=2160).contains(t))
        .ok_or_else(|| {
            invalid(format!(
                "Invalid timeoutInMinutesOverride: {t}. It must be between 5 and 2160"
            ))
        })
}

impl Artifacts {
    /// CodeBuild's types, and for S3 a bucket name by S3's rule and a relative `path` and
    /// `name` (they become a key, so a folder under the S3 root). `field` names the setting
    /// in the message.
    pub fn check(&self, field: &str) -> Result<(), ProjectError> {
        let bad = |m: String| Err(invalid(format!("Invalid {field}: {m}")));
        if let Some(m) = &self.malformed {
            return bad(m.clone());
        }
        match self.kind.as_deref() {
            // ProjectArtifacts: "valid only if your artifacts type is Amazon S3".
            Some("NO_ARTIFACTS" | "CODEPIPELINE") if self.encryption_disabled => {
                return bad("encryptionDisabled is valid only for type S3".to_owned());
            }
            Some("NO_ARTIFACTS" | "CODEPIPELINE") => return Ok(()),
            Some("S3") => {}
            other => {
                return bad(format!(
                    "type {other:?} is not one of NO_ARTIFACTS, S3, CODEPIPELINE"
                ));
            }
        }
        let Some(bucket) = self.location.as_deref().filter(|l| !l.is_empty()) else {
            return bad("location (the bucket) is required for type S3".to_owned());
        };
        if let Err(e) = localbuild_aws::s3::check_bucket_name(bucket) {
            return bad(format!("location: {e}"));
        }
        for (key, value) in [("path", &self.path), ("name", &self.name)] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty())
                && let Err(e) = localbuild_confine::relative(key, v.trim_matches('/'))
            {
                return bad(format!("{key}: {e}"));
            }
        }
        if let Some(ns) = self
            .namespace_type
            .as_deref()
            .filter(|n| !matches!(*n, "NONE" | "BUILD_ID"))
        {
            return bad(format!("namespaceType {ns:?} is not one of NONE, BUILD_ID"));
        }
        if let Some(p) = self
            .packaging
            .as_deref()
            .filter(|p| !matches!(*p, "NONE" | "ZIP"))
        {
            return bad(format!("packaging {p:?} is not one of NONE, ZIP"));
        }
        Ok(())
    }

    fn identifier(&self) -> &str {
        self.artifact_identifier.as_deref().unwrap_or_default()
    }
}

/// Secondary artifacts (the project's or `secondaryArtifactsOverride`): each one checked, with
/// an `artifactIdentifier` by the buildspec's rule, no identifier twice.
pub fn check_secondary_artifacts(field: &str, list: &[Artifacts]) -> Result<(), ProjectError> {
    let mut seen = std::collections::BTreeSet::new();
    for a in list {
        let id = a.identifier();
        if let Err(why) = localbuild_engine::buildspec::names::artifact_identifier(id) {
            return Err(invalid(format!(
                "Invalid {field} artifactIdentifier: {id:?}: {why}"
            )));
        }
        if a.kind.as_deref() == Some("CODEPIPELINE") {
            return Err(invalid(format!(
                "Invalid {field}: type CODEPIPELINE is not supported for secondary artifacts ({id})"
            )));
        }
        if !seen.insert(id) {
            return Err(invalid(format!(
                "Invalid {field}: artifactIdentifier {id:?} is used more than once"
            )));
        }
        a.check(field)?;
    }
    Ok(())
}

impl Cache {
    /// CodeBuild's types; for S3 a `location` of `bucket[/prefix]`, the bucket by S3's rule
    /// and the prefix a relative key.
    pub fn check(&self, field: &str) -> Result<(), ProjectError> {
        let bad = |m: String| Err(invalid(format!("Invalid {field}: {m}")));
        if let Some(m) = &self.malformed {
            return bad(m.clone());
        }
        match self.kind.as_deref() {
            Some("NO_CACHE" | "LOCAL") => Ok(()),
            Some("S3") => {
                let Some((bucket, prefix)) = self.bucket_and_prefix() else {
                    return bad("location (bucket[/prefix]) is required for type S3".to_owned());
                };
                if let Err(e) = localbuild_aws::s3::check_bucket_name(bucket) {
                    return bad(format!("location: {e}"));
                }
                if !prefix.is_empty()
                    && let Err(e) = localbuild_confine::relative("location", prefix)
                {
                    return bad(format!("location: {e}"));
                }
                Ok(())
            }
            other => bad(format!("type {other:?} is not one of NO_CACHE, S3, LOCAL")),
        }
    }

    /// `location` without trailing slashes, split at its first `/`.
    fn bucket_and_prefix(&self) -> Option<(&str, &str)> {
        let location = self
            .location
            .as_deref()
            .map(|l| l.trim_end_matches('/'))
            .filter(|l| !l.is_empty())?;
        Some(location.split_once('/').unwrap_or((location, "")))
    }
}

impl ProjectInput {
    /// CreateProject's (`create`) or UpdateProject's checks, but the tags' (the server's).
    pub fn check(&self, create: bool) -> Result<(), ProjectError> {
        check_name(&self.name)?;
        if create {
            for (missing, field) in [
                (self.source.is_none(), "source"),
                (self.artifacts.is_none(), "artifacts"),
                (self.environment.is_none(), "environment"),
                (self.service_role.is_none(), "serviceRole"),
            ] {
                if missing {
                    return Err(invalid(format!("Missing required parameter: {field}")));
                }
            }
        }
        if let Some(t) = self.timeout_in_minutes
            && !(5..=2160).contains(&t)
        {
            return Err(invalid(format!(
                "Invalid timeoutInMinutes: {t}. It must be between 5 and 2160"
            )));
        }
        if let Some(t) = self.queued_timeout_in_minutes
            && !(5..=480).contains(&t)
        {
            return Err(invalid(format!(
                "Invalid queuedTimeoutInMinutes: {t}. It must be between 5 and 480"
            )));
        }
        if let Some(l) = self.concurrent_build_limit
            && l < 1
        {
            return Err(invalid(format!(
                "Invalid concurrentBuildLimit: {l}. It must be at least 1"
            )));
        }
        if let Some(src) = &self.source {
            check_source_type(&src.kind)?;
        }
        Ok(())
    }

    /// The checks after the tags': secondary sources, artifacts, cache.
    pub fn check_rest(&self) -> Result<(), ProjectError> {
        for s in self.secondary_sources.iter().flatten() {
            check_source_type(&s.kind)?;
            let id = s.source_identifier.as_deref().unwrap_or_default();
            if let Err(why) = localbuild_engine::buildspec::names::source_identifier(id) {
                return Err(invalid(format!(
                    "Invalid secondarySources sourceIdentifier: {id:?}. {why}"
                )));
            }
        }
        if let Some(a) = &self.artifacts {
            a.check("artifacts")?;
        }
        check_secondary_artifacts(
            "secondaryArtifacts",
            self.secondary_artifacts.as_deref().unwrap_or_default(),
        )?;
        if let Some(c) = &self.cache {
            c.check("cache")?;
        }
        Ok(())
    }
}

/// The engine's S3 artifact for artifacts whose `type` is S3, its folder confined under
/// `s3_root` (`default_name`: the object's name when `name` is not given: the project's name,
/// a secondary artifact's identifier).
pub fn s3_artifact(
    s3_root: &Path,
    field: &str,
    default_name: &str,
    a: &Artifacts,
) -> Result<Option<localbuild_engine::S3Artifact>, ProjectError> {
    a.check(field)?;
    let nonempty = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
    if a.kind.as_deref() != Some("S3") {
        return Ok(None);
    }
    let bucket = nonempty(&a.location).unwrap_or_default();
    let bucket_dir = localbuild_confine::component("bucket", &bucket)
        .and_then(|b| localbuild_confine::Root::new(s3_root).sub("bucket", b))
        .map_err(|e| invalid(format!("Invalid {field}: {e}")))?;
    Ok(Some(localbuild_engine::S3Artifact {
        bucket_dir: bucket_dir.path().to_path_buf(),
        path: nonempty(&a.path)
            .unwrap_or_default()
            .trim_matches('/')
            .to_owned(),
        bucket,
        build_id_namespace: a.namespace_type.as_deref() == Some("BUILD_ID"),
        name: nonempty(&a.name)
            .as_deref()
            .unwrap_or(default_name)
            .trim_matches('/')
            .to_owned(),
        override_name: a.override_artifact_name,
        zip: a.packaging.as_deref() == Some("ZIP"),
        encryption_disabled: a.encryption_disabled,
    }))
}

/// The engine's S3 cache for a cache of type S3, its folder confined under `s3_root`.
pub fn s3_cache(
    s3_root: &Path,
    field: &str,
    c: &Cache,
) -> Result<Option<localbuild_engine::S3Cache>, ProjectError> {
    c.check(field)?;
    if c.kind.as_deref() != Some("S3") {
        return Ok(None);
    }
    let (bucket, prefix) = c.bucket_and_prefix().unwrap_or_default();
    let location = c
        .location
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let refused =
        |e: localbuild_confine::Refused| invalid(format!("Invalid {field}: location: {e}"));
    let root = localbuild_confine::Root::new(s3_root);
    let bucket_dir = localbuild_confine::component("bucket", bucket)
        .and_then(|b| root.sub("bucket", b))
        .map_err(refused)?;
    let dir = if prefix.is_empty() {
        bucket_dir.path().to_path_buf()
    } else {
        bucket_dir.confined("location", prefix).map_err(refused)?
    };
    Ok(Some(localbuild_engine::S3Cache {
        dir,
        location: location.to_owned(),
    }))
}

/// Where a build's source comes from, for the engine: a project's or a start's CodeBuild source
/// type and location mapped to this machine (`localbuild_sources::resolve`, which the
/// pipeline's git sources and `localbuild reproduce` also call). A malformed
/// location, or one naming a path on this machine, is an `InvalidInputException`; a
/// well-formed one that resolves to nothing is accepted, as the cloud accepts it, as a
/// [`Source::Unresolved`](localbuild_engine::Source::Unresolved): the build fails in
/// DOWNLOAD_SOURCE with `CLIENT_ERROR` and the message that says where it looked.
pub fn resolve_source(
    roots: &localbuild_sources::Roots,
    kind: &str,
    location: Option<&str>,
    version: Option<&str>,
    depth: Option<u32>,
) -> Result<localbuild_engine::Source, ProjectError> {
    use localbuild_engine::Source;
    use localbuild_sources::{Resolved, SourceError, SourceKind};
    let parsed: SourceKind = kind
        .parse()
        .map_err(|e: SourceError| invalid(e.to_string()))?;
    if parsed == SourceKind::NoSource {
        return Ok(Source::None);
    }
    let location = location.filter(|l| !l.is_empty()).ok_or_else(|| {
        invalid(format!(
            "Source location is required for source type {kind}"
        ))
    })?;
    match localbuild_sources::resolve(parsed, location, roots) {
        Ok(Resolved::Git { repo }) => Ok(Source::Git {
            repo,
            version: version.map(str::to_owned),
            depth,
            kind: kind.to_owned(),
            location: location.to_owned(),
        }),
        Ok(Resolved::Dir(dir)) => Ok(Source::Dir(dir)),
        Ok(Resolved::Zip(file)) => Ok(Source::Zip {
            file,
            location: location.to_owned(),
        }),
        Ok(Resolved::None) => Ok(Source::None),
        Err(e @ SourceError::Unresolved { .. }) => Ok(Source::Unresolved {
            kind: kind.to_owned(),
            location: location.to_owned(),
            reason: e.to_string(),
        }),
        Err(e) => Err(invalid(e.to_string())),
    }
}

/// A buildspec value: inline YAML (it contains a newline or starts with `version`) or a path
/// in the source.
pub fn buildspec_source(text: Option<&str>) -> localbuild_engine::BuildspecSource {
    use localbuild_engine::BuildspecSource;
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => BuildspecSource::Default,
        Some(_)
            if text.is_some_and(|t| t.contains('\n') || t.trim_start().starts_with("version")) =>
        {
            BuildspecSource::Inline(text.unwrap_or_default().to_owned())
        }
        Some(t) => BuildspecSource::InSource(t.to_owned()),
    }
}
