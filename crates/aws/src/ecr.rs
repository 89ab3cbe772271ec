//! ECR: repositories, their images and the references that name them.
//!
//! A repository is a document in the history database (kind [`REPOSITORY_DOC`], key its name):
//! its creation time, tag mutability, scanning configuration and lifecycle policy (accepted and
//! stored; nothing scans or expires images). Its images live in the local registry
//! ([`crate::registry`]) under the same name: tags and manifests come from the registry's API,
//! untagged manifests and push times from its storage (the revision link's modification time).
//!
//! [`local_reference`] maps `ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME[:TAG|@DIGEST]` of this
//! account and region to `127.0.0.1:PORT/NAME…`, the name the Docker daemon can reach.

use crate::registry::{MANIFEST_ACCEPT, Registry, RegistryError};
use crate::{ACCOUNT_ID, now};
use localbuild_db::{Db, DbError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The document kind of a repository (key: its name).
pub const REPOSITORY_DOC: &str = "ecr.repository";
/// How long an authorization token is valid (ECR's 12 hours).
pub const TOKEN_SECONDS: f64 = 12.0 * 3600.0;
/// ECR's repository name pattern, as its errors quote it.
pub const NAME_PATTERN: &str = "(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*";

/// A failed ECR call, in ECR's terms; the server maps each to ECR's error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcrError {
    /// The repository's name and the registry (account) id.
    #[error("The repository with name '{0}' does not exist in the registry with id '{1}'")]
    RepositoryNotFound(String, String),
    #[error("The repository with name '{0}' already exists in the registry with id '{1}'")]
    RepositoryAlreadyExists(String, String),
    #[error(
        "The repository with name '{0}' in registry with id '{1}' cannot be deleted because it still contains images"
    )]
    RepositoryNotEmpty(String, String),
    #[error(
        "Lifecycle policy does not exist for the repository with name '{0}' in the registry with id '{1}'"
    )]
    LifecyclePolicyNotFound(String, String),
    #[error(
        "The image with imageId {{{what}}} does not exist within the repository with name '{repository}' in the registry with id '{registry}'"
    )]
    ImageNotFound {
        repository: String,
        what: String,
        registry: String,
    },
    /// `InvalidParameterException`; the message names the field.
    #[error("{0}")]
    InvalidParameter(String),
    /// The local registry is missing, failed to start, or answered wrongly (`ServerException`).
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("the history database failed: {0}")]
    Store(String),
}

impl From<DbError> for EcrError {
    fn from(e: DbError) -> EcrError {
        EcrError::Store(e.to_string())
    }
}

/// One repository's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repository {
    pub name: String,
    pub created_at: f64,
    /// `MUTABLE` or `IMMUTABLE` (stored; the registry does not enforce it).
    pub image_tag_mutability: String,
    pub scan_on_push: bool,
    pub encryption_type: String,
    #[serde(default)]
    pub kms_key: Option<String>,
    #[serde(default)]
    pub lifecycle_policy: Option<String>,
}

impl Repository {
    /// The repository's ARN in `account` and `region`.
    pub fn arn(&self, account: &str, region: &str) -> String {
        format!("arn:aws:ecr:{region}:{account}:repository/{}", self.name)
    }
    /// The repository's URI, as ECR gives it (and as builds and task definitions use it).
    pub fn uri(&self, account: &str, region: &str) -> String {
        format!("{}/{}", registry_host(account, region), self.name)
    }
}

/// `ACCOUNT.dkr.ecr.REGION.amazonaws.com`.
pub fn registry_host(account: &str, region: &str) -> String {
    format!("{account}.dkr.ecr.{region}.amazonaws.com")
}

/// ECR's repository name rule (2 to 256 characters, [`NAME_PATTERN`]).
pub fn check_name(name: &str) -> Result<(), EcrError> {
    let len = name.chars().count();
    if !(2..=256).contains(&len) {
        return Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must have length between 2 and 256' (got {len} characters)"
        )));
    }
    let component_ok = |c: &str| {
        let b = c.as_bytes();
        let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
        if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
            return false;
        }
        // Separators between alphanumeric runs: one '.', one or two '_', or any '-'s.
        let mut i = 0;
        while i < b.len() {
            if alnum(b[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && !alnum(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            let ok = sep == "."
                || sep == "_"
                || sep == "__"
                || (!sep.is_empty() && sep.bytes().all(|x| x == b'-'));
            if !ok {
                return false;
            }
        }
        true
    };
    if !name.split('/').all(component_ok) {
        return Err(EcrError::InvalidParameter(format!(
            "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '{NAME_PATTERN}'' (got {name:?})"
        )));
    }
    Ok(())
}

fn check_tag(tag: &str) -> bool {
    // Docker's tag rule (ECR's allows up to 300 characters; the registry is Docker's).
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn check_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// `reference` in the local registry at `registry_host` (`127.0.0.1:PORT`), if it is an ECR
/// reference of `account` in `region` with a valid repository name; tag or digest kept,
/// `:latest` when it has neither (as Docker reads it). Anything else: `None`.
pub fn local_reference(
    reference: &str,
    account: &str,
    region: &str,
    registry_host_port: &str,
) -> Option<String> {
    let (host, rest) = reference.split_once('/')?;
    if host != registry_host(account, region) {
        return None;
    }
    let (name, suffix) = if let Some((name, digest)) = rest.split_once('@') {
        if !check_digest(digest) {
            return None;
        }
        (name, format!("@{digest}"))
    } else {
        match rest.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => {
                if !check_tag(tag) {
                    return None;
                }
                (name, format!(":{tag}"))
            }
            _ => (rest, ":latest".to_owned()),
        }
    };
    check_name(name).ok()?;
    Some(format!("{registry_host_port}/{name}{suffix}"))
}

/// Whether `host` is `account`'s ECR registry host in `region` (a `docker login` target).
pub fn is_registry_host(host: &str, account: &str, region: &str) -> bool {
    host == registry_host(account, region)
}

/// What CreateRepository asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRepository {
    pub name: String,
    pub image_tag_mutability: Option<String>,
    pub scan_on_push: Option<bool>,
    pub encryption_type: Option<String>,
    pub kms_key: Option<String>,
}

/// An image's identity: a digest, a tag, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageId {
    pub digest: Option<String>,
    pub tag: Option<String>,
}

/// One image (manifest) as DescribeImages shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDetail {
    pub digest: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub pushed_at: f64,
    pub media_type: String,
    pub artifact_media_type: Option<String>,
}

/// A manifest as BatchGetImage returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub digest: String,
    pub media_type: String,
    pub text: String,
}

/// Why one image of a batch call failed (ECR's `ImageFailure`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFailure {
    pub id: ImageId,
    /// `ImageFailureCode`: `ImageNotFound`, `InvalidImageTag`, `InvalidImageDigest`, ….
    pub code: &'static str,
    pub reason: String,
}

/// BatchGetImage's answer: the images found (with their full ids) and the failures.
pub type Found = (Vec<(ImageId, Manifest)>, Vec<ImageFailure>);

/// ECR over the history database and the local registry (started on first use).
pub struct Ecr {
    db: Db,
    /// The registry id: the account of its ARNs, URIs and host names.
    account: String,
    dir: PathBuf,
    registry: Mutex<Option<Arc<Registry>>>,
}

impl std::fmt::Debug for Ecr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ecr")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Ecr {
    /// ECR with repositories in `db` and the registry's files under `dir`
    /// (`$LOCALBUILD_HOME/ecr`). Nothing starts until [`Ecr::registry`] is first called.
    pub fn new(db: Db, dir: PathBuf) -> Ecr {
        Ecr {
            db,
            account: ACCOUNT_ID.to_owned(),
            dir,
            registry: Mutex::new(None),
        }
    }

    /// The same ECR as registry `account` (12 digits, checked by the caller).
    pub fn in_account(mut self, account: &str) -> Ecr {
        self.account = account.to_owned();
        self
    }

    /// The registry id (the account).
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The local registry, started (or joined) on first use; blocking.
    pub fn registry(&self) -> Result<Arc<Registry>, EcrError> {
        let mut slot = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = &*slot {
            return Ok(r.clone());
        }
        let r = Arc::new(Registry::start(&self.dir)?);
        *slot = Some(r.clone());
        Ok(r)
    }

    /// Stop a registry a killed process left running on this folder (see
    /// [`Registry::stop_stale`]); its pid, if there was one.
    pub fn stop_stale(&self) -> Option<u32> {
        Registry::stop_stale(&self.dir)
    }

    /// The registry if it runs already (never starts it).
    pub fn running(&self) -> Option<Arc<Registry>> {
        self.registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stop the registry if this process started it.
    pub fn shutdown(&self) {
        let taken = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(r) = taken {
            match Arc::try_unwrap(r) {
                Ok(mut r) => r.stop(),
                // Someone still holds it: the last holder's drop stops it.
                Err(r) => drop(r),
            }
        }
    }

    /// [`local_reference`] against this registry (started if needed); `None` if `reference` is
    /// not this account's ECR in `region`.
    pub fn map_reference(
        &self,
        reference: &str,
        region: &str,
    ) -> Result<Option<(String, Arc<Registry>)>, EcrError> {
        if local_reference(reference, &self.account, region, "127.0.0.1:1").is_none() {
            return Ok(None);
        }
        let registry = self.registry()?;
        Ok(
            local_reference(reference, &self.account, region, &registry.host())
                .map(|r| (r, registry)),
        )
    }

    /// The local registry's `127.0.0.1:PORT` when `host` is this account's ECR registry host in
    /// `region` (a `docker login` or push target), the registry started if needed; `None` for any
    /// other host. With [`Ecr::map_reference`], what a Docker API proxy needs to send ECR
    /// references to the local registry.
    pub fn map_host(&self, host: &str, region: &str) -> Result<Option<String>, EcrError> {
        if !is_registry_host(host, &self.account, region) {
            return Ok(None);
        }
        Ok(Some(self.registry()?.host()))
    }

    pub fn create_repository(&self, c: CreateRepository) -> Result<Repository, EcrError> {
        check_name(&c.name)?;
        let mutability = c
            .image_tag_mutability
            .unwrap_or_else(|| "MUTABLE".to_owned());
        if !["MUTABLE", "IMMUTABLE"].contains(&mutability.as_str()) {
            return Err(EcrError::InvalidParameter(format!(
                "Invalid parameter at 'imageTagMutability' failed to satisfy constraint: 'Member must satisfy enum value set: [MUTABLE, IMMUTABLE]' (got {mutability:?})"
            )));
        }
        let encryption = c.encryption_type.unwrap_or_else(|| "AES256".to_owned());
        if !["AES256", "KMS", "KMS_DSSE"].contains(&encryption.as_str()) {
            return Err(EcrError::InvalidParameter(format!(
                "Invalid parameter at 'encryptionConfiguration.encryptionType' failed to satisfy constraint: 'Member must satisfy enum value set: [AES256, KMS, KMS_DSSE]' (got {encryption:?})"
            )));
        }
        let repo = Repository {
            name: c.name.clone(),
            created_at: now(),
            image_tag_mutability: mutability,
            scan_on_push: c.scan_on_push.unwrap_or(false),
            encryption_type: encryption,
            kms_key: c.kms_key,
            lifecycle_policy: None,
        };
        let json = serde_json::to_string(&repo).map_err(|e| EcrError::Store(e.to_string()))?;
        match self.db.insert_doc(REPOSITORY_DOC, &c.name, &json) {
            Ok(()) => Ok(repo),
            Err(DbError::AlreadyExists { .. }) => Err(EcrError::RepositoryAlreadyExists(
                c.name,
                self.account.clone(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    pub fn repository(&self, name: &str) -> Result<Repository, EcrError> {
        check_name(name)?;
        let json = self
            .db
            .get_doc(REPOSITORY_DOC, name)?
            .ok_or_else(|| EcrError::RepositoryNotFound(name.to_owned(), self.account.clone()))?;
        serde_json::from_str(&json).map_err(|e| EcrError::Store(e.to_string()))
    }

    fn save(&self, repo: &Repository) -> Result<(), EcrError> {
        let json = serde_json::to_string(repo).map_err(|e| EcrError::Store(e.to_string()))?;
        Ok(self.db.update_doc(REPOSITORY_DOC, &repo.name, &json)?)
    }

    /// Every repository, by name.
    pub fn repositories(&self) -> Result<Vec<Repository>, EcrError> {
        self.db
            .list_docs(REPOSITORY_DOC, "")?
            .into_iter()
            .map(|(_, json)| {
                serde_json::from_str(&json).map_err(|e| EcrError::Store(e.to_string()))
            })
            .collect()
    }

    /// Delete a repository; with `force` its images too, else it must have none.
    pub fn delete_repository(&self, name: &str, force: bool) -> Result<Repository, EcrError> {
        let repo = self.repository(name)?;
        let storage = self.repository_storage(name)?;
        if storage.exists() && !force && !self.images(name)?.is_empty() {
            return Err(EcrError::RepositoryNotEmpty(
                name.to_owned(),
                self.account.clone(),
            ));
        }
        if storage.exists() {
            std::fs::remove_dir_all(&storage).map_err(|e| {
                EcrError::Registry(RegistryError::Call(format!(
                    "removing {}: {e}",
                    storage.display()
                )))
            })?;
        }
        self.db.delete_doc(REPOSITORY_DOC, name)?;
        Ok(repo)
    }

    pub fn put_lifecycle_policy(&self, name: &str, text: &str) -> Result<Repository, EcrError> {
        let len = text.chars().count();
        if !(100..=30720).contains(&len) {
            return Err(EcrError::InvalidParameter(format!(
                "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Member must have length between 100 and 30720' (got {len})"
            )));
        }
        if serde_json::from_str::<serde_json::Value>(text).is_err() {
            return Err(EcrError::InvalidParameter(
                "Invalid parameter at 'lifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: the text is not JSON'".to_owned(),
            ));
        }
        let mut repo = self.repository(name)?;
        repo.lifecycle_policy = Some(text.to_owned());
        self.save(&repo)?;
        Ok(repo)
    }

    pub fn delete_lifecycle_policy(&self, name: &str) -> Result<(Repository, String), EcrError> {
        let mut repo = self.repository(name)?;
        let text = repo.lifecycle_policy.take().ok_or_else(|| {
            EcrError::LifecyclePolicyNotFound(name.to_owned(), self.account.clone())
        })?;
        self.save(&repo)?;
        Ok((repo, text))
    }

    pub fn put_scanning(&self, name: &str, scan_on_push: bool) -> Result<Repository, EcrError> {
        let mut repo = self.repository(name)?;
        repo.scan_on_push = scan_on_push;
        self.save(&repo)?;
        Ok(repo)
    }

    /// The registry storage folder of repository `name` (checked by ECR's rule, then confined).
    fn repository_storage(&self, name: &str) -> Result<PathBuf, EcrError> {
        check_name(name)?;
        let root =
            localbuild_confine::Root::new(self.dir.join("storage/docker/registry/v2/repositories"));
        root.confined("repositoryName", name)
            .map_err(|e| EcrError::InvalidParameter(e.to_string()))
    }

    /// Digests the registry holds for `name`, with their revision link's modification time.
    fn revisions(&self, name: &str) -> Result<Vec<(String, f64)>, EcrError> {
        let dir = self.repository_storage(name)?;
        let revs = dir.join("_manifests/revisions/sha256");
        let Ok(entries) = std::fs::read_dir(&revs) else {
            return Ok(vec![]);
        };
        let mut out = vec![];
        for e in entries.flatten() {
            let hex = e.file_name().to_string_lossy().into_owned();
            let digest = format!("sha256:{hex}");
            if !check_digest(&digest) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(e.path().join("link")) else {
                continue;
            };
            let pushed = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0.0, |d| d.as_millis() as f64 / 1000.0);
            out.push((digest, pushed));
        }
        Ok(out)
    }

    fn tags(&self, registry: &Registry, name: &str) -> Result<Vec<String>, EcrError> {
        let a = registry.call("GET", &format!("/v2/{name}/tags/list"), None)?;
        if a.status == 404 {
            return Ok(vec![]);
        }
        if a.status != 200 {
            return Err(RegistryError::Call(format!("tags of {name}: HTTP {}", a.status)).into());
        }
        let v: serde_json::Value = serde_json::from_slice(&a.body)
            .map_err(|e| RegistryError::Call(format!("tags of {name}: {e}")))?;
        Ok(v["tags"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The manifest `reference` (tag or digest) names, if the registry has it.
    fn manifest(
        &self,
        registry: &Registry,
        name: &str,
        reference: &str,
    ) -> Result<Option<Manifest>, EcrError> {
        let a = registry.call(
            "GET",
            &format!("/v2/{name}/manifests/{reference}"),
            Some(MANIFEST_ACCEPT),
        )?;
        match a.status {
            200 => {}
            404 => return Ok(None),
            s => {
                return Err(
                    RegistryError::Call(format!("manifest {name}:{reference}: HTTP {s}")).into(),
                );
            }
        }
        let digest = a
            .header("docker-content-digest")
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::Call("a manifest without its digest".to_owned()))?;
        let media_type = a
            .header("content-type")
            .unwrap_or("application/vnd.docker.distribution.manifest.v2+json")
            .to_owned();
        Ok(Some(Manifest {
            digest,
            media_type,
            text: String::from_utf8_lossy(&a.body).into_owned(),
        }))
    }

    /// Every image of repository `name` (tagged and untagged), newest first.
    pub fn images(&self, name: &str) -> Result<Vec<ImageDetail>, EcrError> {
        self.repository(name)?;
        let revisions = self.revisions(name)?;
        if revisions.is_empty() {
            return Ok(vec![]);
        }
        let registry = self.registry()?;
        let mut tags_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for tag in self.tags(&registry, name)? {
            if let Some(m) = self.manifest(&registry, name, &tag)? {
                tags_of.entry(m.digest).or_default().push(tag);
            }
        }
        let mut out = vec![];
        for (digest, pushed_at) in revisions {
            let Some(m) = self.manifest(&registry, name, &digest)? else {
                continue;
            };
            let v: serde_json::Value = serde_json::from_str(&m.text).unwrap_or_default();
            let sum = |key: &str| {
                v[key]
                    .as_array()
                    .map(|l| l.iter().filter_map(|x| x["size"].as_u64()).sum::<u64>())
                    .unwrap_or(0)
            };
            let size = sum("layers") + sum("manifests");
            let mut tags = tags_of.remove(&digest).unwrap_or_default();
            tags.sort();
            out.push(ImageDetail {
                digest,
                tags,
                size,
                pushed_at,
                media_type: v["mediaType"]
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or(m.media_type),
                artifact_media_type: v["config"]["mediaType"].as_str().map(str::to_owned),
            });
        }
        out.sort_by(|a, b| b.pushed_at.total_cmp(&a.pushed_at));
        Ok(out)
    }

    /// Check one image id; the failure ECR reports for it, if any.
    fn check_id(id: &ImageId) -> Option<ImageFailure> {
        let fail = |code, reason: String| {
            Some(ImageFailure {
                id: id.clone(),
                code,
                reason,
            })
        };
        match (&id.digest, &id.tag) {
            (None, None) => fail("MissingDigestAndTag", "Missing digest and tag".to_owned()),
            (Some(d), _) if !check_digest(d) => {
                fail("InvalidImageDigest", format!("Invalid image digest {d:?}"))
            }
            (_, Some(t)) if !check_tag(t) => {
                fail("InvalidImageTag", format!("Invalid image tag {t:?}"))
            }
            _ => None,
        }
    }

    /// The images `ids` name (tag or digest; both must agree).
    pub fn batch_get(&self, name: &str, ids: &[ImageId]) -> Result<Found, EcrError> {
        self.repository(name)?;
        let registry = self.registry()?;
        let (mut found, mut failed) = (vec![], vec![]);
        for id in ids {
            if let Some(f) = Self::check_id(id) {
                failed.push(f);
                continue;
            }
            let reference = id.tag.clone().or(id.digest.clone()).unwrap_or_default();
            match self.manifest(&registry, name, &reference)? {
                Some(m) if id.digest.as_ref().is_none_or(|d| *d == m.digest) => {
                    let id = ImageId {
                        digest: Some(m.digest.clone()),
                        tag: id.tag.clone(),
                    };
                    found.push((id, m));
                }
                Some(_) => failed.push(ImageFailure {
                    id: id.clone(),
                    code: "ImageTagDoesNotMatchDigest",
                    reason: "Invalid tag and digest combination".to_owned(),
                }),
                None => failed.push(ImageFailure {
                    id: id.clone(),
                    code: "ImageNotFound",
                    reason: "Requested image not found".to_owned(),
                }),
            }
        }
        Ok((found, failed))
    }

    /// Delete the images `ids` name: a tag of an image that has other tags loses only that tag;
    /// otherwise the manifest goes (with every tag on it).
    pub fn batch_delete(
        &self,
        name: &str,
        ids: &[ImageId],
    ) -> Result<(Vec<ImageId>, Vec<ImageFailure>), EcrError> {
        let (found, mut failed) = self.batch_get(name, ids)?;
        let registry = self.registry()?;
        let all_tags = self.tags(&registry, name)?;
        let mut deleted = vec![];
        for (id, m) in found {
            let others = all_tags
                .iter()
                .filter(|t| Some(*t) != id.tag.as_ref())
                .filter_map(|t| self.manifest(&registry, name, t).ok().flatten())
                .any(|o| o.digest == m.digest);
            if let (Some(tag), true) = (&id.tag, others) {
                // Untag: the registry's API cannot, its storage can.
                let dir = self.repository_storage(name)?;
                let tag_dir = localbuild_confine::Root::new(dir.join("_manifests/tags"))
                    .confined("imageTag", tag)
                    .map_err(|e| EcrError::InvalidParameter(e.to_string()))?;
                std::fs::remove_dir_all(&tag_dir).map_err(|e| {
                    EcrError::Registry(RegistryError::Call(format!("untagging {tag}: {e}")))
                })?;
                deleted.push(id);
                continue;
            }
            let a = registry.call(
                "DELETE",
                &format!("/v2/{name}/manifests/{}", m.digest),
                None,
            )?;
            match a.status {
                202 | 200 => deleted.push(id),
                404 => failed.push(ImageFailure {
                    id,
                    code: "ImageNotFound",
                    reason: "Requested image not found".to_owned(),
                }),
                s => {
                    return Err(
                        RegistryError::Call(format!("deleting {}: HTTP {s}", m.digest)).into(),
                    );
                }
            }
        }
        Ok((deleted, failed))
    }

    /// The authorization token (`base64("AWS:<password>")`) and its expiry.
    pub fn authorization(&self) -> Result<(String, f64), EcrError> {
        use base64::Engine as _;
        let registry = self.registry()?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            crate::registry::USER,
            registry.password()
        ));
        Ok((token, now() + TOKEN_SECONDS))
    }
}

/// A build's image source: ECR references of this account in `region` come from the local
/// registry (started if needed), with its credentials.
pub struct EcrImages {
    pub ecr: Arc<Ecr>,
    pub region: String,
}

impl EcrImages {
    /// The engine's hook for ECR references of this account in `region`: the one way builds,
    /// `localbuild run` and the ECS deploy get their ECR images.
    pub fn hook(ecr: Arc<Ecr>, region: &str) -> localbuild_engine::request::ImageSourceHook {
        localbuild_engine::request::ImageSourceHook(Arc::new(EcrImages {
            ecr,
            region: region.to_owned(),
        }))
    }
}

impl localbuild_engine::request::ImageSource for EcrImages {
    fn locate(&self, image: &str) -> Result<Option<localbuild_engine::request::ImagePull>, String> {
        let Some((from, registry)) = self
            .ecr
            .map_reference(image, &self.region)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        Ok(Some(localbuild_engine::request::ImagePull {
            from,
            username: crate::registry::USER.to_owned(),
            password: registry.password().to_owned(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_ecrs_rule() {
        for ok in [
            "ab", "my-app", "team/app", "a.b", "a__b", "a---b", "a/b/c_d", "x1",
        ] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "a", "A1", "-ab", "ab-", "a..b", "a___b", "a/", "/ab", "a//b", "../x", "a/../b",
            "ab\n", "ab c", "ab:1", "ab@x", ".ab",
        ] {
            assert!(
                matches!(check_name(bad), Err(EcrError::InvalidParameter(_))),
                "{bad:?}"
            );
        }
        assert!(check_name(&"a".repeat(257)).is_err());
        assert!(check_name(&"a".repeat(256)).is_ok());
    }

    #[test]
    fn references_of_this_account_and_region_map_to_the_local_registry() {
        let host = "127.0.0.1:5123";
        let ecr = format!("{ACCOUNT_ID}.dkr.ecr.us-east-1.amazonaws.com");
        assert_eq!(
            local_reference(&format!("{ecr}/app:v1"), ACCOUNT_ID, "us-east-1", host).as_deref(),
            Some("127.0.0.1:5123/app:v1")
        );
        assert_eq!(
            local_reference(&format!("{ecr}/team/app"), ACCOUNT_ID, "us-east-1", host).as_deref(),
            Some("127.0.0.1:5123/team/app:latest")
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            local_reference(
                &format!("{ecr}/app@{digest}"),
                ACCOUNT_ID,
                "us-east-1",
                host
            ),
            Some(format!("127.0.0.1:5123/app@{digest}"))
        );
        for other in [
            format!("{ecr}/app:v1").replace("us-east-1", "eu-west-1"),
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1".to_owned(),
            "public.ecr.aws/app:v1".to_owned(),
            "app:v1".to_owned(),
            format!("{ecr}/../x:v1"),
            format!("{ecr}/App:v1"),
            format!("{ecr}/app:bad tag"),
            format!("{ecr}/app@sha256:zz"),
        ] {
            assert_eq!(
                local_reference(&other, ACCOUNT_ID, "us-east-1", host),
                None,
                "{other}"
            );
        }
        assert_eq!(
            local_reference(
                &format!("{ecr}/app:v1").replace("us-east-1", "eu-west-1"),
                ACCOUNT_ID,
                "eu-west-1",
                host
            )
            .as_deref(),
            Some("127.0.0.1:5123/app:v1")
        );
        assert!(is_registry_host(&ecr, ACCOUNT_ID, "us-east-1"));
        assert!(!is_registry_host("evil.example", ACCOUNT_ID, "us-east-1"));
        let chosen = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1";
        assert_eq!(
            local_reference(chosen, "123456789012", "us-east-1", host).as_deref(),
            Some("127.0.0.1:5123/app:v1")
        );
        assert!(!is_registry_host(&ecr, "123456789012", "us-east-1"));
    }
}
