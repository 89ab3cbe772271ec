//! Parameter Store and Secrets Manager: one store behind both APIs and behind a build's
//! `env.parameter-store` / `env.secrets-manager`.
//!
//! The secrets file (`--secrets-file`) seeds it: its entries are version 1, read-only until an
//! API call writes the same name. API writes are documents in the history database (kinds
//! [`PARAMETER_DOC`], [`SECRET_DOC`]), so they outlive the process and are seen by every
//! `localbuild run` and `serve` sharing that history. A deleted seeded entry is kept as a
//! tombstone document. Values are never logged here; builds mask them as before.

use crate::{AwsError, now, random};
use localbuild_db::Db;
use localbuild_engine::secrets::SecretsFile;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The document kind of a parameter (key: its name).
pub const PARAMETER_DOC: &str = "ssm.parameter";
/// The document kind of a secret (key: its name).
pub const SECRET_DOC: &str = "secretsmanager.secret";

/// One Parameter Store parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameter {
    pub name: String,
    /// `String`, `StringList` or `SecureString`.
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    pub version: u64,
    pub last_modified: f64,
    #[serde(default)]
    pub description: Option<String>,
    /// A SecureString's `KeyId` (accepted and echoed by DescribeParameters; `None`: AWS's
    /// default `alias/aws/ssm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(default)]
    pub deleted: bool,
}

impl Parameter {
    /// The parameter's ARN in `account` and `region`.
    pub fn arn(&self, account: &str, region: &str) -> String {
        format!(
            "arn:aws:ssm:{region}:{account}:parameter/{}",
            self.name.trim_start_matches('/')
        )
    }
}

/// One Secrets Manager secret (one current version).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    /// The six characters AWS appends to the name in the ARN.
    pub suffix: String,
    pub secret_string: Option<String>,
    /// `SecretBinary` (a version has a string or a binary value, not both); stored base64.
    #[serde(
        default,
        with = "base64_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret_binary: Option<Vec<u8>>,
    /// `KmsKeyId` as given (accepted and echoed; the local store does not encrypt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    pub version_id: String,
    pub created: f64,
    pub last_changed: f64,
    #[serde(default)]
    pub description: Option<String>,
    /// When DeleteSecret was called (the secret is then unusable).
    #[serde(default)]
    pub deleted_date: Option<f64>,
    #[serde(default)]
    pub tombstone: bool,
}

impl Secret {
    /// The secret's ARN in `account` and `region`.
    pub fn arn(&self, account: &str, region: &str) -> String {
        format!(
            "arn:aws:secretsmanager:{region}:{account}:secret:{}-{}",
            self.name, self.suffix
        )
    }
}

/// A secret's value: `SecretString` or `SecretBinary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretValue {
    String(String),
    Binary(Vec<u8>),
}

/// What CreateSecret, PutSecretValue and UpdateSecret may change.
#[derive(Debug, Clone, Default)]
pub struct SecretChange {
    pub value: Option<SecretValue>,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
}

mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&STANDARD.encode(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// What PutParameter asks for.
#[derive(Debug, Clone, Default)]
pub struct PutParameter {
    pub name: String,
    pub value: String,
    pub kind: Option<String>,
    pub overwrite: bool,
    pub description: Option<String>,
    pub key_id: Option<String>,
}

/// The parameter and secret store.
#[derive(Clone)]
pub struct Store {
    db: Db,
    seed: SecretsFile,
}

const SUFFIX: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

impl Store {
    /// A store over the history database, seeded by the secrets file.
    pub fn new(db: Db, seed: SecretsFile) -> Store {
        Store { db, seed }
    }

    fn seeded_parameter(&self, name: &str) -> Option<Parameter> {
        self.seed.parameter_store.get(name).map(|v| Parameter {
            name: name.to_owned(),
            kind: "String".to_owned(),
            value: v.clone(),
            version: 1,
            last_modified: 0.0,
            description: None,
            key_id: None,
            deleted: false,
        })
    }

    fn seeded_secret(&self, name: &str) -> Option<Secret> {
        self.seed.secrets_manager.get(name).map(|v| Secret {
            name: name.to_owned(),
            // Stable per name, so the ARN does not change between processes.
            suffix: stable_suffix(name),
            secret_string: Some(v.clone()),
            secret_binary: None,
            kms_key_id: None,
            version_id: format!("{:0>32}", "1"),
            created: 0.0,
            last_changed: 0.0,
            description: None,
            deleted_date: None,
            tombstone: false,
        })
    }

    /// A parameter as stored (tombstones included), the database first.
    fn parameter_doc(&self, name: &str) -> Result<Option<Parameter>, AwsError> {
        match self.db.get_doc(PARAMETER_DOC, name)? {
            Some(json) => Ok(serde_json::from_str(&json).ok()),
            None => Ok(self.seeded_parameter(name)),
        }
    }

    /// A parameter that exists.
    pub fn parameter(&self, name: &str) -> Result<Parameter, AwsError> {
        check_parameter_name(name)?;
        self.parameter_doc(name)?
            .filter(|p| !p.deleted)
            .ok_or_else(|| AwsError::ParameterNotFound(name.to_owned()))
    }

    /// Every parameter that exists, by name.
    pub fn parameters(&self) -> Result<Vec<Parameter>, AwsError> {
        let mut all: BTreeMap<String, Parameter> = BTreeMap::new();
        for name in self.seed.parameter_store.keys() {
            if let Some(p) = self.seeded_parameter(name) {
                all.insert(name.clone(), p);
            }
        }
        for (name, json) in self.db.list_docs(PARAMETER_DOC, "")? {
            if let Ok(p) = serde_json::from_str::<Parameter>(&json) {
                all.insert(name, p);
            }
        }
        Ok(all.into_values().filter(|p| !p.deleted).collect())
    }

    /// PutParameter: the new version.
    pub fn put_parameter(&self, put: PutParameter) -> Result<u64, AwsError> {
        check_parameter_name(&put.name)?;
        if put.value.is_empty() || put.value.len() > 8192 {
            return Err(AwsError::Validation(
                "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length between 1 and 8192".to_owned(),
            ));
        }
        let kind = put.kind.clone().unwrap_or_else(|| "String".to_owned());
        if !matches!(kind.as_str(), "String" | "StringList" | "SecureString") {
            return Err(AwsError::Validation(format!(
                "1 validation error detected: Value '{kind}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
            )));
        }
        if let Some(k) = &put.key_id
            && (k.is_empty()
                || k.len() > 256
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-')))
        {
            return Err(AwsError::Validation(format!(
                "1 validation error detected: Value '{k}' at 'keyId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-zA-Z0-9:/_-]+)$"
            )));
        }
        let old = self.parameter_doc(&put.name)?;
        let version = match &old {
            Some(p) if !p.deleted && !put.overwrite => {
                return Err(AwsError::ParameterAlreadyExists);
            }
            Some(p) if !p.deleted => p.version + 1,
            _ => 1,
        };
        let parameter = Parameter {
            name: put.name.clone(),
            value: put.value,
            version,
            last_modified: now(),
            key_id: put.key_id.filter(|_| kind == "SecureString"),
            kind,
            description: put
                .description
                .or_else(|| old.and_then(|o| o.description.filter(|_| !o.deleted))),
            deleted: false,
        };
        self.db
            .put_doc(PARAMETER_DOC, &put.name, &to_json(&parameter))?;
        Ok(version)
    }

    /// DeleteParameter.
    pub fn delete_parameter(&self, name: &str) -> Result<(), AwsError> {
        let mut p = self.parameter(name)?;
        p.deleted = true;
        self.db.put_doc(PARAMETER_DOC, name, &to_json(&p))?;
        Ok(())
    }

    /// A secret stored under `name` (tombstones included), the database first.
    fn secret_doc(&self, name: &str) -> Result<Option<Secret>, AwsError> {
        match self.db.get_doc(SECRET_DOC, name)? {
            Some(json) => Ok(serde_json::from_str(&json).ok()),
            None => Ok(self.seeded_secret(name)),
        }
    }

    /// The secret a `SecretId` names: its name, or its ARN (full, with the suffix, or partial).
    pub fn secret(&self, id: &str) -> Result<Secret, AwsError> {
        let found = match id.split_once(":secret:") {
            Some((prefix, rest)) if prefix.starts_with("arn:") => {
                // `name-XXXXXX` (full ARN) or `name` (partial ARN).
                let full = rest.rsplit_once('-').and_then(|(name, suffix)| {
                    self.secret_doc(name)
                        .ok()
                        .flatten()
                        .filter(|s| s.suffix == suffix)
                });
                match full {
                    Some(s) => Some(s),
                    None => self.secret_doc(rest)?,
                }
            }
            _ => self.secret_doc(id)?,
        };
        found
            .filter(|s| !s.tombstone)
            .ok_or(AwsError::SecretNotFound)
    }

    /// A secret that may be read or changed (not scheduled for deletion).
    pub fn live_secret(&self, id: &str) -> Result<Secret, AwsError> {
        let s = self.secret(id)?;
        if s.deleted_date.is_some() {
            return Err(AwsError::InvalidRequest(
                "You can't perform this operation on the secret because it was marked for deletion.".to_owned(),
            ));
        }
        Ok(s)
    }

    /// Every secret (those scheduled for deletion too), by name.
    pub fn secrets(&self) -> Result<Vec<Secret>, AwsError> {
        let mut all: BTreeMap<String, Secret> = BTreeMap::new();
        for name in self.seed.secrets_manager.keys() {
            if let Some(s) = self.seeded_secret(name) {
                all.insert(name.clone(), s);
            }
        }
        for (name, json) in self.db.list_docs(SECRET_DOC, "")? {
            if let Ok(s) = serde_json::from_str::<Secret>(&json) {
                all.insert(name, s);
            }
        }
        Ok(all.into_values().filter(|s| !s.tombstone).collect())
    }

    /// CreateSecret (a secret may be created without a value).
    pub fn create_secret(&self, name: &str, change: SecretChange) -> Result<Secret, AwsError> {
        check_secret_name(name)?;
        check_change(&change)?;
        if let Some(old) = self.secret_doc(name)?.filter(|s| !s.tombstone) {
            if old.deleted_date.is_some() {
                return Err(AwsError::InvalidRequest(format!(
                    "You can't create this secret because a secret with this name is already scheduled for deletion. ({name})"
                )));
            }
            return Err(AwsError::SecretExists(name.to_owned()));
        }
        let at = now();
        let mut secret = Secret {
            name: name.to_owned(),
            suffix: random(SUFFIX, 6),
            version_id: uuid::Uuid::new_v4().to_string(),
            secret_string: None,
            secret_binary: None,
            kms_key_id: change.kms_key_id.filter(|k| !k.is_empty()),
            created: at,
            last_changed: at,
            description: change.description,
            deleted_date: None,
            tombstone: false,
        };
        set_value(&mut secret, change.value);
        self.db.put_doc(SECRET_DOC, name, &to_json(&secret))?;
        Ok(secret)
    }

    /// PutSecretValue / UpdateSecret: a new current version (a value), a description and/or
    /// a KMS key id.
    pub fn update_secret(&self, id: &str, change: SecretChange) -> Result<Secret, AwsError> {
        check_change(&change)?;
        let mut secret = self.live_secret(id)?;
        if let Some(v) = change.value {
            set_value(&mut secret, Some(v));
            secret.version_id = uuid::Uuid::new_v4().to_string();
        }
        if change.description.is_some() {
            secret.description = change.description;
        }
        if let Some(k) = change.kms_key_id {
            secret.kms_key_id = Some(k).filter(|k| !k.is_empty());
        }
        secret.last_changed = now();
        self.db
            .put_doc(SECRET_DOC, &secret.name, &to_json(&secret))?;
        Ok(secret)
    }

    /// DeleteSecret: with `force`, gone at once; else marked for deletion (unreadable).
    pub fn delete_secret(&self, id: &str, force: bool) -> Result<Secret, AwsError> {
        let mut secret = self.secret(id)?;
        let at = now();
        secret.deleted_date = Some(secret.deleted_date.unwrap_or(at));
        let mut stored = secret.clone();
        stored.tombstone = force;
        self.db
            .put_doc(SECRET_DOC, &secret.name, &to_json(&stored))?;
        Ok(secret)
    }

    /// What a build's `env.parameter-store` / `env.secrets-manager` resolve against now: the
    /// secrets file with every API write applied.
    pub fn snapshot(&self) -> Result<SecretsFile, AwsError> {
        let mut file = SecretsFile::default();
        for p in self.parameters()? {
            file.parameter_store.insert(p.name, p.value);
        }
        for s in self.secrets()? {
            if let (None, Some(v)) = (s.deleted_date, s.secret_string) {
                file.secrets_manager.insert(s.name, v);
            }
        }
        Ok(file)
    }
}

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// A suffix that is the same for a name in every process (seeded secrets are not stored).
fn stable_suffix(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (0..6)
        .map(|i| SUFFIX[((h >> (i * 8)) % SUFFIX.len() as u64) as usize] as char)
        .collect()
}

/// SSM's parameter name rule.
pub fn check_parameter_name(name: &str) -> Result<(), AwsError> {
    let lower = name.trim_start_matches('/').to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && (!name.contains('/') || name.starts_with('/'))
        && !name.contains("//")
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm");
    if ok {
        Ok(())
    } else {
        Err(AwsError::Validation(format!(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_ (name {name:?})"
        )))
    }
}

/// Secrets Manager's secret name rule.
pub fn check_secret_name(name: &str) -> Result<(), AwsError> {
    let ok = !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(AwsError::Validation(format!(
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@! (Name {name:?})"
        )))
    }
}

/// A version's value is a string or a binary, never both.
fn set_value(secret: &mut Secret, value: Option<SecretValue>) {
    match value {
        Some(SecretValue::String(v)) => {
            secret.secret_string = Some(v);
            secret.secret_binary = None;
        }
        Some(SecretValue::Binary(b)) => {
            secret.secret_binary = Some(b);
            secret.secret_string = None;
        }
        None => {}
    }
}

/// Secrets Manager's limits: a value of at most 65536 bytes (a binary at least 1), a KMS key
/// id of at most 2048 characters.
fn check_change(change: &SecretChange) -> Result<(), AwsError> {
    match &change.value {
        Some(SecretValue::String(v)) if v.len() > 65536 => {
            return Err(AwsError::InvalidParameter(
                "SecretString must be at most 65536 bytes.".to_owned(),
            ));
        }
        Some(SecretValue::Binary(b)) if b.is_empty() || b.len() > 65536 => {
            return Err(AwsError::Validation(
                "1 validation error detected: Value at 'secretBinary' failed to satisfy constraint: Member must have length between 1 and 65536".to_owned(),
            ));
        }
        _ => {}
    }
    if change.kms_key_id.as_ref().is_some_and(|k| k.len() > 2048) {
        return Err(AwsError::Validation(
            "1 validation error detected: Value at 'kmsKeyId' failed to satisfy constraint: Member must have length less than or equal to 2048".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(v: &str) -> SecretChange {
        SecretChange {
            value: Some(SecretValue::String(v.to_owned())),
            ..SecretChange::default()
        }
    }

    fn store(seed: &str) -> Store {
        Store::new(
            Db::open_in_memory().unwrap(),
            SecretsFile::parse(seed).unwrap(),
        )
    }

    #[test]
    fn the_file_seeds_and_the_api_overrides() {
        let s = store("parameter-store: {/app/db: seeded}\nsecrets-manager: {tok: abc}\n");
        assert_eq!(s.parameter("/app/db").unwrap().value, "seeded");
        let err = s
            .put_parameter(PutParameter {
                name: "/app/db".into(),
                value: "new".into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(err, AwsError::ParameterAlreadyExists);
        let v = s
            .put_parameter(PutParameter {
                name: "/app/db".into(),
                value: "new".into(),
                overwrite: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(v, 2);
        let snap = s.snapshot().unwrap();
        assert_eq!(snap.parameter_store["/app/db"], "new");
        assert_eq!(snap.secrets_manager["tok"], "abc");
        s.delete_parameter("/app/db").unwrap();
        assert!(matches!(
            s.parameter("/app/db"),
            Err(AwsError::ParameterNotFound(_))
        ));
        assert!(
            !s.snapshot()
                .unwrap()
                .parameter_store
                .contains_key("/app/db")
        );
    }

    #[test]
    fn secrets_by_name_or_arn_and_deletion() {
        let s = store("");
        let created = s.create_secret("app/token", change("t1")).unwrap();
        let arn = created.arn(crate::ACCOUNT_ID, "eu-west-1");
        assert_eq!(s.secret(&arn).unwrap().name, "app/token");
        assert_eq!(
            s.secret("arn:aws:secretsmanager:eu-west-1:000000000000:secret:app/token")
                .unwrap()
                .secret_string
                .as_deref(),
            Some("t1")
        );
        assert_eq!(
            s.create_secret("app/token", SecretChange::default())
                .unwrap_err(),
            AwsError::SecretExists("app/token".into())
        );
        s.update_secret("app/token", change("t2")).unwrap();
        assert_eq!(s.snapshot().unwrap().secrets_manager["app/token"], "t2");
        s.delete_secret("app/token", false).unwrap();
        assert!(matches!(
            s.live_secret("app/token"),
            Err(AwsError::InvalidRequest(_))
        ));
        s.delete_secret("app/token", true).unwrap();
        assert_eq!(s.secret("app/token").unwrap_err(), AwsError::SecretNotFound);
    }

    #[test]
    fn names_follow_the_services_rules() {
        assert!(check_parameter_name("/a/b.c-d_e").is_ok());
        assert!(check_parameter_name("plain").is_ok());
        for bad in ["", "a/b", "/a//b", "/aws/x", "ssm-x", "/a b", "/a/../b\n"] {
            assert!(check_parameter_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_secret_name("prod/db+x=y.z@w-1").is_ok());
        assert!(check_secret_name("a b").is_err());
        assert!(check_secret_name("").is_err());
    }
}
