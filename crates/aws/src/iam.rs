//! IAM as a stand-in: roles (trust policy, inline and attached policies, tags), customer
//! managed policies and instance profiles, with IAM's name rules and error cases. Client code
//! written for AWS (IaC tools, tutorials) creates a role before a project or pipeline; this
//! keeps what it created so it can be read back. **Stored and shown, not enforced:** no call
//! anywhere is allowed or refused by these policies.
//!
//! Everything is a document in the history database (kinds [`ROLE_DOC`], [`POLICY_DOC`],
//! [`PROFILE_DOC`]; keys are lower-cased names, since IAM names are unique regardless of
//! case). AWS managed policies (`arn:aws:iam::aws:policy/...`) are not stored: any
//! well-formed one may be attached, and [`AWS_MANAGED`] is what `ListPolicies` shows of them.

use crate::{ACCOUNT_ID, random};
use localbuild_db::Db;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// The document kind of a role (key: its lower-cased name).
pub const ROLE_DOC: &str = "iam.role";
/// The document kind of a customer managed policy (key: its lower-cased name).
pub const POLICY_DOC: &str = "iam.policy";
/// The document kind of an instance profile (key: its lower-cased name).
pub const PROFILE_DOC: &str = "iam.instance-profile";

/// The AWS managed policies `ListPolicies` (`Scope=AWS`) lists besides those attached; as
/// `path + name`. Any other well-formed AWS managed policy ARN may be attached too.
pub const AWS_MANAGED: &[&str] = &[
    "/AdministratorAccess",
    "/PowerUserAccess",
    "/ReadOnlyAccess",
    "/AWSCodeBuildAdminAccess",
    "/AWSCodeBuildDeveloperAccess",
    "/AWSCodeBuildReadOnlyAccess",
    "/AWSCodePipeline_FullAccess",
    "/AWSCodePipeline_ReadOnlyAccess",
    "/AWSCodeStarFullAccess",
    "/AmazonS3FullAccess",
    "/AmazonS3ReadOnlyAccess",
    "/AmazonEC2ContainerRegistryPowerUser",
    "/AmazonECS_FullAccess",
    "/CloudWatchLogsFullAccess",
    "/SecretsManagerReadWrite",
    "/AmazonSSMReadOnlyAccess",
    "/service-role/AWSCodePipelineServiceRole",
];

/// A failed IAM call; the server maps each variant to IAM's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    /// `ValidationError`: a field breaks IAM's rule (the message names the field).
    #[error("{0}")]
    Validation(String),
    /// `NoSuchEntity`.
    #[error("{0}")]
    NoSuchEntity(String),
    /// `EntityAlreadyExists`.
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// `DeleteConflict`: the entity is still in use.
    #[error("{0}")]
    DeleteConflict(String),
    /// `MalformedPolicyDocument`: not a JSON policy.
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// `InvalidInput`.
    #[error("{0}")]
    InvalidInput(String),
    /// `LimitExceeded`.
    #[error("{0}")]
    LimitExceeded(String),
    /// The history database failed.
    #[error("the history database failed: {0}")]
    Store(String),
}

impl From<localbuild_db::DbError> for IamError {
    fn from(e: localbuild_db::DbError) -> IamError {
        IamError::Store(e.to_string())
    }
}

type Result<T> = std::result::Result<T, IamError>;

/// A tag on a role, policy or instance profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// A role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub id: String,
    pub path: String,
    /// Seconds since the epoch.
    pub created: u64,
    /// The trust policy, as given.
    pub assume_role_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: u32,
    /// Inline policies by name.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policies' ARNs, in attachment order.
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl Role {
    /// The role's ARN in `account`.
    pub fn arn(&self, account: &str) -> String {
        format!("arn:aws:iam::{account}:role{}{}", self.path, self.name)
    }
}

/// A managed policy (customer managed, or an AWS managed one made up from its ARN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    pub id: String,
    pub path: String,
    pub document: String,
    #[serde(default)]
    pub description: Option<String>,
    pub created: u64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// An AWS managed policy (not stored; its ARN names the `aws` account).
    #[serde(default)]
    pub aws_managed: bool,
    /// How many roles it is attached to (computed when read).
    #[serde(default, skip_serializing)]
    pub attachment_count: u32,
}

impl Policy {
    /// The policy's ARN: in `account`, or `aws` for an AWS managed one.
    pub fn arn(&self, account: &str) -> String {
        let account = if self.aws_managed { "aws" } else { account };
        format!("arn:aws:iam::{account}:policy{}{}", self.path, self.name)
    }
}

/// An instance profile (at most one role, as in AWS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceProfile {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: u64,
    /// Role names.
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl InstanceProfile {
    /// The instance profile's ARN in `account`.
    pub fn arn(&self, account: &str) -> String {
        format!(
            "arn:aws:iam::{account}:instance-profile{}{}",
            self.path, self.name
        )
    }
}

/// What CreateRole asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateRole {
    pub name: String,
    pub path: Option<String>,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: Option<u32>,
    pub tags: Vec<Tag>,
}

/// What CreatePolicy asks for.
#[derive(Debug, Clone, Default)]
pub struct CreatePolicy {
    pub name: String,
    pub path: Option<String>,
    pub document: String,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

/// ListPolicies' `Scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Aws,
    Local,
}

/// The IAM store. Cloning shares the write lock.
#[derive(Clone)]
pub struct Iam {
    db: Db,
    /// The account of its ARNs ([`ACCOUNT_ID`] unless [`Iam::in_account`]).
    account: String,
    /// Read-modify-write of documents is one step per process.
    lock: std::sync::Arc<Mutex<()>>,
}

const ID: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Whole seconds since the epoch (the engine's one clock).
fn now() -> u64 {
    crate::now() as u64
}

fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

fn to_json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl Iam {
    pub fn new(db: Db) -> Iam {
        Iam {
            db,
            account: ACCOUNT_ID.to_owned(),
            lock: Default::default(),
        }
    }

    /// The same store with ARNs in `account` (12 digits, checked by the caller).
    pub fn in_account(mut self, account: &str) -> Iam {
        self.account = account.to_owned();
        self
    }

    /// The account of its ARNs.
    pub fn account(&self) -> &str {
        &self.account
    }

    fn write(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, kind: &str, name: &str) -> Result<Option<T>> {
        Ok(self
            .db
            .get_doc(kind, &key(name))?
            .and_then(|j| serde_json::from_str(&j).ok()))
    }

    fn all<T: for<'de> Deserialize<'de>>(&self, kind: &str) -> Result<Vec<T>> {
        Ok(self
            .db
            .list_docs(kind, "")?
            .into_iter()
            .filter_map(|(_, j)| serde_json::from_str(&j).ok())
            .collect())
    }

    fn put_role(&self, role: &Role) -> Result<()> {
        Ok(self
            .db
            .put_doc(ROLE_DOC, &key(&role.name), &to_json(role))?)
    }

    // --- roles

    /// CreateRole.
    pub fn create_role(&self, req: CreateRole) -> Result<Role> {
        check_name("roleName", &req.name, 64)?;
        let path = req.path.unwrap_or_else(|| "/".to_owned());
        check_path("path", &path)?;
        check_document("assumeRolePolicyDocument", &req.assume_role_policy)?;
        if let Some(d) = &req.description {
            check_description("description", d)?;
        }
        let max_session_duration = req.max_session_duration.unwrap_or(3600);
        if !(3600..=43200).contains(&max_session_duration) {
            return Err(IamError::Validation(format!(
                "1 validation error detected: Value '{max_session_duration}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value {}",
                if max_session_duration < 3600 {
                    "greater than or equal to 3600"
                } else {
                    "less than or equal to 43200"
                }
            )));
        }
        let tags = merge_tags(Vec::new(), req.tags)?;
        let role = Role {
            id: format!("AROA{}", random(ID, 17)),
            name: req.name,
            path,
            created: now(),
            assume_role_policy: req.assume_role_policy,
            description: req.description,
            max_session_duration,
            inline: BTreeMap::new(),
            attached: Vec::new(),
            tags,
        };
        let _w = self.write();
        self.db
            .insert_doc(ROLE_DOC, &key(&role.name), &to_json(&role))
            .map_err(|e| match e {
                localbuild_db::DbError::AlreadyExists { .. } => IamError::EntityAlreadyExists(
                    format!("Role with name {} already exists.", role.name),
                ),
                e => e.into(),
            })?;
        Ok(role)
    }

    /// GetRole.
    pub fn role(&self, name: &str) -> Result<Role> {
        check_name("roleName", name, 64)?;
        self.get(ROLE_DOC, name)?.ok_or_else(|| no_role(name))
    }

    /// ListRoles, by name, under `path_prefix`.
    pub fn roles(&self, path_prefix: Option<&str>) -> Result<Vec<Role>> {
        let mut roles: Vec<Role> = self.all(ROLE_DOC)?;
        roles.retain(|r| path_prefix.is_none_or(|p| r.path.starts_with(p)));
        Ok(roles)
    }

    fn change_role(&self, name: &str, f: impl FnOnce(&mut Role) -> Result<()>) -> Result<()> {
        let _w = self.write();
        let mut role = self.role(name)?;
        f(&mut role)?;
        self.put_role(&role)
    }

    /// DeleteRole: refused while it has policies or is in an instance profile.
    pub fn delete_role(&self, name: &str) -> Result<()> {
        let _w = self.write();
        let role = self.role(name)?;
        if !role.inline.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must delete policies first.".to_owned(),
            ));
        }
        if !role.attached.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must detach all policies first.".to_owned(),
            ));
        }
        let profiles: Vec<InstanceProfile> = self.all(PROFILE_DOC)?;
        if profiles
            .iter()
            .any(|p| p.roles.iter().any(|r| key(r) == key(name)))
        {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove roles from instance profile first.".to_owned(),
            ));
        }
        self.db.delete_doc(ROLE_DOC, &key(name))?;
        Ok(())
    }

    /// UpdateAssumeRolePolicy.
    pub fn update_assume_role_policy(&self, name: &str, document: &str) -> Result<()> {
        check_document("policyDocument", document)?;
        self.change_role(name, |r| {
            r.assume_role_policy = document.to_owned();
            Ok(())
        })
    }

    /// PutRolePolicy (adds or replaces an inline policy).
    pub fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> Result<()> {
        check_name("policyName", policy, 128)?;
        check_document("policyDocument", document)?;
        self.change_role(role, |r| {
            r.inline.insert(policy.to_owned(), document.to_owned());
            Ok(())
        })
    }

    /// GetRolePolicy: the inline policy's document.
    pub fn role_policy(&self, role: &str, policy: &str) -> Result<String> {
        check_name("policyName", policy, 128)?;
        let r = self.role(role)?;
        r.inline
            .get(policy)
            .cloned()
            .ok_or_else(|| no_role_policy(policy))
    }

    /// DeleteRolePolicy.
    pub fn delete_role_policy(&self, role: &str, policy: &str) -> Result<()> {
        check_name("policyName", policy, 128)?;
        self.change_role(role, |r| {
            r.inline
                .remove(policy)
                .map(drop)
                .ok_or_else(|| no_role_policy(policy))
        })
    }

    /// ListRolePolicies: the inline policies' names.
    pub fn role_policies(&self, role: &str) -> Result<Vec<String>> {
        Ok(self.role(role)?.inline.into_keys().collect())
    }

    /// AttachRolePolicy: a customer managed policy that exists, or any well-formed AWS managed
    /// policy ARN. Attaching twice is no change.
    pub fn attach_role_policy(&self, role: &str, arn: &str) -> Result<()> {
        self.policy(arn)?;
        self.change_role(role, |r| {
            if !r.attached.iter().any(|a| a == arn) {
                r.attached.push(arn.to_owned());
            }
            Ok(())
        })
    }

    /// DetachRolePolicy.
    pub fn detach_role_policy(&self, role: &str, arn: &str) -> Result<()> {
        parse_policy_arn(arn, &self.account)?;
        self.change_role(role, |r| {
            let before = r.attached.len();
            r.attached.retain(|a| a != arn);
            if r.attached.len() == before {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} was not found."
                )));
            }
            Ok(())
        })
    }

    /// ListAttachedRolePolicies: `(name, arn)` of each, under `path_prefix`.
    pub fn attached_role_policies(
        &self,
        role: &str,
        path_prefix: Option<&str>,
    ) -> Result<Vec<(String, String)>> {
        let r = self.role(role)?;
        Ok(r.attached
            .iter()
            .filter_map(|arn| {
                let (_, path, name) = parse_policy_arn(arn, &self.account).ok()?;
                path_prefix
                    .is_none_or(|p| path.starts_with(p))
                    .then(|| (name, arn.clone()))
            })
            .collect())
    }

    /// TagRole: adds or replaces tags (at most 50 on a role).
    pub fn tag_role(&self, role: &str, tags: Vec<Tag>) -> Result<()> {
        self.change_role(role, |r| {
            r.tags = merge_tags(std::mem::take(&mut r.tags), tags)?;
            Ok(())
        })
    }

    /// UntagRole: keys not present are ignored.
    pub fn untag_role(&self, role: &str, keys: &[String]) -> Result<()> {
        self.change_role(role, |r| {
            r.tags
                .retain(|t| !keys.iter().any(|k| k.eq_ignore_ascii_case(&t.key)));
            Ok(())
        })
    }

    // --- managed policies

    /// CreatePolicy.
    pub fn create_policy(&self, req: CreatePolicy) -> Result<Policy> {
        check_name("policyName", &req.name, 128)?;
        let path = req.path.unwrap_or_else(|| "/".to_owned());
        check_policy_path("path", &path)?;
        check_document("policyDocument", &req.document)?;
        if let Some(d) = &req.description {
            check_description("description", d)?;
        }
        let policy = Policy {
            id: format!("ANPA{}", random(ID, 17)),
            name: req.name,
            path,
            document: req.document,
            description: req.description,
            created: now(),
            tags: merge_tags(Vec::new(), req.tags)?,
            aws_managed: false,
            attachment_count: 0,
        };
        let _w = self.write();
        self.db
            .insert_doc(POLICY_DOC, &key(&policy.name), &to_json(&policy))
            .map_err(|e| match e {
                localbuild_db::DbError::AlreadyExists { .. } => {
                    IamError::EntityAlreadyExists(format!(
                        "A policy called {} already exists. Duplicate names are not allowed.",
                        policy.name
                    ))
                }
                e => e.into(),
            })?;
        Ok(policy)
    }

    fn attachments(&self, arn: &str) -> Result<u32> {
        let roles: Vec<Role> = self.all(ROLE_DOC)?;
        Ok(roles
            .iter()
            .filter(|r| r.attached.iter().any(|a| a == arn))
            .count() as u32)
    }

    /// GetPolicy: a customer managed policy, or an AWS managed one made up from its ARN.
    pub fn policy(&self, arn: &str) -> Result<Policy> {
        let (account, path, name) = parse_policy_arn(arn, &self.account)?;
        let mut policy = if account == "aws" {
            aws_managed(&path, &name)
        } else {
            self.get::<Policy>(POLICY_DOC, &name)?
                .filter(|p| p.path == path && p.name == name)
                .ok_or_else(|| {
                    IamError::NoSuchEntity(format!(
                        "Policy {arn} does not exist or is not attachable."
                    ))
                })?
        };
        policy.attachment_count = self.attachments(arn)?;
        Ok(policy)
    }

    /// DeletePolicy: refused while attached.
    pub fn delete_policy(&self, arn: &str) -> Result<()> {
        let _w = self.write();
        let policy = self.policy(arn)?;
        if policy.aws_managed {
            return Err(IamError::InvalidInput(format!(
                "{arn} is an AWS managed policy; it cannot be deleted."
            )));
        }
        if policy.attachment_count > 0 {
            return Err(IamError::DeleteConflict(
                "Cannot delete a policy attached to entities.".to_owned(),
            ));
        }
        self.db.delete_doc(POLICY_DOC, &key(&policy.name))?;
        Ok(())
    }

    /// ListPolicies: customer managed (`Local`), AWS managed (`Aws`: [`AWS_MANAGED`] and any
    /// attached) or both, ordered by name.
    pub fn policies(
        &self,
        scope: Scope,
        only_attached: bool,
        path_prefix: Option<&str>,
    ) -> Result<Vec<Policy>> {
        let roles: Vec<Role> = self.all(ROLE_DOC)?;
        let count = |arn: &str| {
            roles
                .iter()
                .filter(|r| r.attached.iter().any(|a| a == arn))
                .count() as u32
        };
        let mut out: BTreeMap<String, Policy> = BTreeMap::new();
        if scope != Scope::Aws {
            for p in self.all::<Policy>(POLICY_DOC)? {
                out.insert(p.arn(&self.account), p);
            }
        }
        if scope != Scope::Local {
            let attached = roles.iter().flat_map(|r| r.attached.iter());
            let listed = AWS_MANAGED
                .iter()
                .map(|p| format!("arn:aws:iam::aws:policy{p}"));
            for arn in listed.chain(attached.cloned()) {
                if let Ok(("aws", path, name)) = parse_policy_arn(&arn, &self.account)
                    .as_ref()
                    .map(|(a, p, n)| (a.as_str(), p.clone(), n.clone()))
                {
                    out.entry(arn).or_insert_with(|| aws_managed(&path, &name));
                }
            }
        }
        let mut list: Vec<Policy> = out
            .into_iter()
            .map(|(arn, mut p)| {
                p.attachment_count = count(&arn);
                p
            })
            .filter(|p| !only_attached || p.attachment_count > 0)
            .filter(|p| path_prefix.is_none_or(|pre| p.path.starts_with(pre)))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    // --- instance profiles

    /// CreateInstanceProfile.
    pub fn create_instance_profile(
        &self,
        name: &str,
        path: Option<&str>,
        tags: Vec<Tag>,
    ) -> Result<InstanceProfile> {
        check_name("instanceProfileName", name, 128)?;
        let path = path.unwrap_or("/").to_owned();
        check_path("path", &path)?;
        let profile = InstanceProfile {
            id: format!("AIPA{}", random(ID, 17)),
            name: name.to_owned(),
            path,
            created: now(),
            roles: Vec::new(),
            tags: merge_tags(Vec::new(), tags)?,
        };
        let _w = self.write();
        self.db
            .insert_doc(PROFILE_DOC, &key(name), &to_json(&profile))
            .map_err(|e| match e {
                localbuild_db::DbError::AlreadyExists { .. } => IamError::EntityAlreadyExists(
                    format!("Instance Profile {name} already exists."),
                ),
                e => e.into(),
            })?;
        Ok(profile)
    }

    /// GetInstanceProfile: the profile and its roles (a deleted role is left out).
    pub fn instance_profile(&self, name: &str) -> Result<(InstanceProfile, Vec<Role>)> {
        check_name("instanceProfileName", name, 128)?;
        let profile: InstanceProfile = self
            .get(PROFILE_DOC, name)?
            .ok_or_else(|| no_profile(name))?;
        let mut roles = Vec::new();
        for r in &profile.roles {
            if let Some(role) = self.get(ROLE_DOC, r)? {
                roles.push(role);
            }
        }
        Ok((profile, roles))
    }

    /// DeleteInstanceProfile: refused while it has a role.
    pub fn delete_instance_profile(&self, name: &str) -> Result<()> {
        let _w = self.write();
        let (profile, _) = self.instance_profile(name)?;
        if !profile.roles.is_empty() {
            return Err(IamError::DeleteConflict(
                "Cannot delete entity, must remove roles from instance profile first.".to_owned(),
            ));
        }
        self.db.delete_doc(PROFILE_DOC, &key(name))?;
        Ok(())
    }

    /// AddRoleToInstanceProfile: one role per profile.
    pub fn add_role_to_instance_profile(&self, profile: &str, role: &str) -> Result<()> {
        let _w = self.write();
        let (mut p, _) = self.instance_profile(profile)?;
        let role = self.role(role)?;
        if p.roles.iter().any(|r| key(r) == key(&role.name)) {
            return Err(IamError::EntityAlreadyExists(format!(
                "Role {} is already associated with instance profile {}.",
                role.name, p.name
            )));
        }
        if !p.roles.is_empty() {
            return Err(IamError::LimitExceeded(
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".to_owned(),
            ));
        }
        p.roles.push(role.name);
        Ok(self.db.put_doc(PROFILE_DOC, &key(profile), &to_json(&p))?)
    }

    /// RemoveRoleFromInstanceProfile.
    pub fn remove_role_from_instance_profile(&self, profile: &str, role: &str) -> Result<()> {
        check_name("roleName", role, 64)?;
        let _w = self.write();
        let (mut p, _) = self.instance_profile(profile)?;
        let before = p.roles.len();
        p.roles.retain(|r| key(r) != key(role));
        if p.roles.len() == before {
            return Err(IamError::NoSuchEntity(format!(
                "The role with name {role} cannot be found in instance profile {}.",
                p.name
            )));
        }
        Ok(self.db.put_doc(PROFILE_DOC, &key(profile), &to_json(&p))?)
    }
}

fn no_role(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role with name {name} cannot be found."))
}

fn no_role_policy(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("The role policy with name {name} cannot be found."))
}

fn no_profile(name: &str) -> IamError {
    IamError::NoSuchEntity(format!("Instance Profile {name} cannot be found."))
}

fn aws_managed(path: &str, name: &str) -> Policy {
    Policy {
        name: name.to_owned(),
        // Stable per ARN, so an AWS managed policy keeps its id.
        id: format!("ANPA{}", stable_id(&format!("{path}{name}"))),
        path: path.to_owned(),
        document: "{\"Version\":\"2012-10-17\",\"Statement\":[]}".to_owned(),
        description: None,
        created: 0,
        tags: Vec::new(),
        aws_managed: true,
        attachment_count: 0,
    }
}

/// 17 id characters that depend only on `text` (FNV-1a, five bits a character).
fn stable_id(text: &str) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in text.bytes() {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    (0..17)
        .map(|i| ID[((h >> (i * 5)) & 31) as usize] as char)
        .collect()
}

fn validation(field: &str, value: &str, constraint: &str) -> IamError {
    IamError::Validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member must {constraint}"
    ))
}

fn check_length(field: &str, value: &str, min: usize, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n < min {
        return Err(validation(
            field,
            value,
            &format!("have length greater than or equal to {min}"),
        ));
    }
    if n > max {
        return Err(validation(
            field,
            value,
            &format!("have length less than or equal to {max}"),
        ));
    }
    Ok(())
}

/// IAM's name rule (`[\w+=,.@-]+`) for roles, policies and instance profiles.
pub fn check_name(field: &str, name: &str, max: usize) -> Result<()> {
    check_length(field, name, 1, max)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(validation(
            field,
            name,
            r"satisfy regular expression pattern: [\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// A role's or instance profile's path: `/` or `/…/` of printable ASCII.
fn check_path(field: &str, path: &str) -> Result<()> {
    check_length(field, path, 1, 512)?;
    let ok = path == "/"
        || (path.len() > 2
            && path.starts_with('/')
            && path.ends_with('/')
            && path.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c)));
    if !ok {
        return Err(validation(
            field,
            path,
            r"satisfy regular expression pattern: (\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
        ));
    }
    Ok(())
}

/// A managed policy's path: `/` or `/a/b/` with IAM's path characters.
fn check_policy_path(field: &str, path: &str) -> Result<()> {
    check_length(field, path, 1, 512)?;
    let ok = path.starts_with('/')
        && path.ends_with('/')
        && (path == "/"
            || path[1..path.len() - 1].split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".,+@=_-".contains(c))
            }));
    if !ok {
        return Err(validation(
            field,
            path,
            r"satisfy regular expression pattern: ((/[A-Za-z0-9\.,\+@=_-]+)*)/",
        ));
    }
    Ok(())
}

fn check_description(field: &str, d: &str) -> Result<()> {
    check_length(field, d, 0, 1000)
}

/// A policy document: IAM's length and characters, then a JSON object.
fn check_document(field: &str, document: &str) -> Result<()> {
    if document.is_empty() {
        return Err(validation(
            field,
            document,
            "have length greater than or equal to 1",
        ));
    }
    if document.len() > 131_072 {
        return Err(IamError::Validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must have length less than or equal to 131072"
        )));
    }
    if !document
        .chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}'))
    {
        return Err(IamError::Validation(format!(
            r"1 validation error detected: Value at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+"
        )));
    }
    match serde_json::from_str::<serde_json::Value>(document) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(IamError::MalformedPolicyDocument(
            "This policy contains invalid Json".to_owned(),
        )),
    }
}

/// A managed policy ARN: `(account, path, name)`; the account is `aws` or `this` one.
pub fn parse_policy_arn(arn: &str, this: &str) -> Result<(String, String, String)> {
    let invalid = || IamError::InvalidInput(format!("ARN {arn} is not valid."));
    let rest = arn.strip_prefix("arn:aws:iam::").ok_or_else(invalid)?;
    let (account, resource) = rest.split_once(':').ok_or_else(invalid)?;
    let full = resource.strip_prefix("policy").ok_or_else(invalid)?;
    let (path, name) = full.rsplit_once('/').ok_or_else(invalid)?;
    let path = format!("{path}/");
    if !(account == "aws" || account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
        return Err(invalid());
    }
    if check_policy_path("policyArn", &path).is_err() || check_name("policyArn", name, 128).is_err()
    {
        return Err(invalid());
    }
    if account != "aws" && account != this {
        return Err(IamError::NoSuchEntity(format!(
            "Policy {arn} does not exist or is not attachable."
        )));
    }
    Ok((account.to_owned(), path, name.to_owned()))
}

/// Tags added to `old`: a key replaces the same key (keys compare without case), at most 50.
fn merge_tags(mut old: Vec<Tag>, new: Vec<Tag>) -> Result<Vec<Tag>> {
    for (i, t) in new.iter().enumerate() {
        check_length(&format!("tags.{}.member.key", i + 1), &t.key, 1, 128)?;
        check_length(&format!("tags.{}.member.value", i + 1), &t.value, 0, 256)?;
        let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
        if !t.key.chars().all(allowed) || !t.value.chars().all(allowed) {
            return Err(validation(
                &format!("tags.{}.member", i + 1),
                &t.key,
                r"satisfy regular expression pattern: [\p{L}\p{Z}\p{N}_.:/=+\-@]+",
            ));
        }
        if new[..i].iter().any(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            return Err(IamError::InvalidInput(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive."
                    .to_owned(),
            ));
        }
    }
    for t in new {
        match old.iter_mut().find(|o| o.key.eq_ignore_ascii_case(&t.key)) {
            Some(o) => *o = t,
            None => old.push(t),
        }
    }
    if old.len() > 50 {
        return Err(IamError::LimitExceeded(
            "The number of tags has reached the maximum limit.".to_owned(),
        ));
    }
    Ok(old)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"codebuild.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

    fn iam() -> ((), Iam) {
        ((), Iam::new(Db::open_in_memory().unwrap()))
    }

    fn role(name: &str) -> CreateRole {
        CreateRole {
            name: name.to_owned(),
            assume_role_policy: TRUST.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn a_role_is_created_once_and_found_without_case() {
        let (_d, iam) = iam();
        let r = iam.create_role(role("Builder")).unwrap();
        assert_eq!(
            r.arn(iam.account()),
            format!("arn:aws:iam::{ACCOUNT_ID}:role/Builder")
        );
        assert!(r.id.starts_with("AROA") && r.id.len() == 21, "{}", r.id);
        assert_eq!(iam.role("builder").unwrap().name, "Builder");
        assert!(matches!(
            iam.create_role(role("BUILDER")),
            Err(IamError::EntityAlreadyExists(m)) if m == "Role with name BUILDER already exists."
        ));
    }

    #[test]
    fn names_paths_and_documents_follow_iams_rules() {
        let (_d, iam) = iam();
        let e = iam.create_role(role("a b")).unwrap_err();
        assert!(
            matches!(&e, IamError::Validation(m) if m.contains("'roleName'")),
            "{e}"
        );
        let e = iam.create_role(role(&"x".repeat(65))).unwrap_err();
        assert!(matches!(&e, IamError::Validation(m) if m.contains("less than or equal to 64")));
        let mut bad_path = role("p");
        bad_path.path = Some("service-role".to_owned());
        assert!(
            matches!(iam.create_role(bad_path), Err(IamError::Validation(m)) if m.contains("'path'"))
        );
        let mut bad_doc = role("d");
        bad_doc.assume_role_policy = "{not json".to_owned();
        assert!(matches!(
            iam.create_role(bad_doc),
            Err(IamError::MalformedPolicyDocument(_))
        ));
        assert!(matches!(
            iam.policy("arn:aws:iam::aws:nope"),
            Err(IamError::InvalidInput(m)) if m == "ARN arn:aws:iam::aws:nope is not valid."
        ));
    }

    #[test]
    fn a_role_with_policies_cannot_be_deleted() {
        let (_d, iam) = iam();
        iam.create_role(role("r")).unwrap();
        iam.put_role_policy("r", "inline", TRUST).unwrap();
        assert!(matches!(
            iam.delete_role("r"),
            Err(IamError::DeleteConflict(_))
        ));
        iam.delete_role_policy("r", "inline").unwrap();
        let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
        iam.attach_role_policy("r", admin).unwrap();
        assert_eq!(iam.policy(admin).unwrap().attachment_count, 1);
        assert!(
            matches!(iam.delete_role("r"), Err(IamError::DeleteConflict(m)) if m.contains("detach"))
        );
        iam.detach_role_policy("r", admin).unwrap();
        assert!(matches!(
            iam.detach_role_policy("r", admin),
            Err(IamError::NoSuchEntity(_))
        ));
        iam.create_instance_profile("ip", None, vec![]).unwrap();
        iam.add_role_to_instance_profile("ip", "r").unwrap();
        assert!(matches!(
            iam.delete_role("r"),
            Err(IamError::DeleteConflict(_))
        ));
        iam.remove_role_from_instance_profile("ip", "r").unwrap();
        iam.delete_role("r").unwrap();
        assert!(
            matches!(iam.role("r"), Err(IamError::NoSuchEntity(m)) if m == "The role with name r cannot be found.")
        );
    }

    #[test]
    fn managed_policies_count_attachments_and_list_by_scope() {
        let (_d, iam) = iam();
        let p = iam
            .create_policy(CreatePolicy {
                name: "deploy".to_owned(),
                path: Some("/team/".to_owned()),
                document: TRUST.to_owned(),
                ..Default::default()
            })
            .unwrap();
        let arn = p.arn(iam.account());
        assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT_ID}:policy/team/deploy"));
        iam.create_role(role("r")).unwrap();
        iam.attach_role_policy("r", &arn).unwrap();
        assert!(matches!(
            iam.delete_policy(&arn),
            Err(IamError::DeleteConflict(_))
        ));
        let local = iam.policies(Scope::Local, false, None).unwrap();
        assert_eq!(
            local
                .iter()
                .map(|p| p.arn(iam.account()))
                .collect::<Vec<_>>(),
            vec![arn.clone()]
        );
        assert_eq!(local[0].attachment_count, 1);
        let aws = iam.policies(Scope::Aws, false, None).unwrap();
        assert!(aws.iter().all(|p| p.aws_managed));
        assert!(aws.iter().any(|p| p.name == "AdministratorAccess"));
        iam.detach_role_policy("r", &arn).unwrap();
        iam.delete_policy(&arn).unwrap();
        assert!(matches!(iam.policy(&arn), Err(IamError::NoSuchEntity(_))));
        let missing = format!("arn:aws:iam::{ACCOUNT_ID}:policy/none");
        assert!(matches!(
            iam.attach_role_policy("r", &missing),
            Err(IamError::NoSuchEntity(_))
        ));
    }

    #[test]
    fn arns_name_the_chosen_account_and_other_accounts_policies_are_not_found() {
        let iam = Iam::new(Db::open_in_memory().unwrap()).in_account("123456789012");
        let r = iam.create_role(role("ci")).unwrap();
        assert_eq!(r.arn(iam.account()), "arn:aws:iam::123456789012:role/ci");
        let p = iam
            .create_policy(CreatePolicy {
                name: "deploy".to_owned(),
                document: TRUST.to_owned(),
                ..Default::default()
            })
            .unwrap();
        let arn = p.arn(iam.account());
        assert_eq!(arn, "arn:aws:iam::123456789012:policy/deploy");
        iam.attach_role_policy("ci", &arn).unwrap();
        let other = format!("arn:aws:iam::{ACCOUNT_ID}:policy/deploy");
        assert!(matches!(
            iam.attach_role_policy("ci", &other),
            Err(IamError::NoSuchEntity(_))
        ));
    }

    #[test]
    fn tags_replace_by_key_and_refuse_duplicates() {
        let (_d, iam) = iam();
        iam.create_role(role("r")).unwrap();
        let tag = |k: &str, v: &str| Tag {
            key: k.to_owned(),
            value: v.to_owned(),
        };
        iam.tag_role("r", vec![tag("team", "a"), tag("env", "dev")])
            .unwrap();
        iam.tag_role("r", vec![tag("Team", "b")]).unwrap();
        assert_eq!(
            iam.role("r").unwrap().tags,
            vec![tag("Team", "b"), tag("env", "dev")]
        );
        assert!(matches!(
            iam.tag_role("r", vec![tag("x", "1"), tag("X", "2")]),
            Err(IamError::InvalidInput(_))
        ));
        iam.untag_role("r", &["ENV".to_owned(), "none".to_owned()])
            .unwrap();
        assert_eq!(iam.role("r").unwrap().tags, vec![tag("Team", "b")]);
    }
}
