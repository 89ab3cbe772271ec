//! STS: who a key is, and the session credentials localbuild hands out.
//!
//! Three kinds of key are accepted: the static `--credentials` keys (the account's root
//! identity), each build's session (CodeBuild's service-role session:
//! `assumed-role/codebuild-<project>-service-role/AWSCodeBuild-<uuid>`), and sessions made by
//! `AssumeRole`. Sessions live in memory, for the process's lifetime (a build's ends with it).
//! A session key is only valid with its session token.

use crate::{ACCOUNT_ID, AwsError, random};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Temporary credentials, as STS returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    /// Seconds since the epoch.
    pub expiration: u64,
}

/// Who a key belongs to (GetCallerIdentity's answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub account: String,
    pub arn: String,
}

#[derive(Debug, Clone)]
struct Session {
    credentials: SessionCredentials,
    identity: Identity,
    /// The build whose session this is (its session's access key): the build's own session,
    /// or one assumed with a key of that build's. `None`: assumed with a `--credentials` key.
    build: Option<String>,
}

/// The keys this process accepts and whose they are. Cloning shares the sessions.
#[derive(Debug, Clone, Default)]
pub struct Identities {
    static_keys: localbuild_sigv4::Credentials,
    /// The account every identity belongs to (empty: [`ACCOUNT_ID`]).
    account: String,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The check of a key and its session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// A known key; its identity.
    Known(Identity),
    /// A session key sent without its token, or with another one.
    BadToken,
    /// A session past its expiration (AssumeRole's `DurationSeconds`, a build's 12 hours).
    Expired,
}

impl Identities {
    /// Accept `static_keys` (the `--credentials` file's; may be empty) and sessions made later.
    pub fn new(static_keys: localbuild_sigv4::Credentials) -> Identities {
        Identities {
            static_keys,
            account: ACCOUNT_ID.to_owned(),
            sessions: Arc::default(),
        }
    }

    /// The same identities in `account` (12 digits, checked by the caller).
    pub fn in_account(mut self, account: &str) -> Identities {
        self.account = account.to_owned();
        self
    }

    /// The account every identity belongs to.
    pub fn account(&self) -> &str {
        if self.account.is_empty() {
            ACCOUNT_ID
        } else {
            &self.account
        }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every accepted key and its secret, for SigV4 verification.
    pub fn keys(&self) -> localbuild_sigv4::Credentials {
        let mut keys = self.static_keys.clone();
        for (id, s) in self.sessions().iter() {
            keys.insert(id.clone(), s.credentials.secret_access_key.clone());
        }
        keys
    }

    /// Whose `access_key_id` is, given the session token the request carried.
    pub fn check(&self, access_key_id: &str, token: Option<&str>) -> Option<KeyCheck> {
        if let Some(s) = self.sessions().get(access_key_id) {
            let now = crate::now() as u64;
            return Some(if s.credentials.expiration <= now {
                KeyCheck::Expired
            } else if token == Some(s.credentials.session_token.as_str()) {
                KeyCheck::Known(s.identity.clone())
            } else {
                KeyCheck::BadToken
            });
        }
        self.static_keys.secret(access_key_id)?;
        let account = self.account();
        Some(KeyCheck::Known(Identity {
            user_id: account.to_owned(),
            account: account.to_owned(),
            arn: format!("arn:aws:iam::{account}:root"),
        }))
    }

    /// A new session for `role_arn` named `session_name`, valid for `duration` seconds, assumed
    /// with the key `by` (a build's key ties the new session to that build).
    pub fn assume_role(
        &self,
        by: Option<&str>,
        role_arn: &str,
        session_name: &str,
        duration: u64,
    ) -> Result<(SessionCredentials, Identity), AwsError> {
        let role = role_arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split_once(":role/"))
            .map(|(_, path)| path.rsplit('/').next().unwrap_or(path).to_owned())
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                AwsError::Validation(format!(
                    "{role_arn} is invalid: RoleArn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)"
                ))
            })?;
        let ok_name = (2..=64).contains(&session_name.len())
            && session_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c));
        if !ok_name {
            return Err(AwsError::Validation(format!(
                "1 validation error detected: Value '{session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
            )));
        }
        if !(900..=43200).contains(&duration) {
            return Err(AwsError::Validation(format!(
                "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200"
            )));
        }
        let build = by.and_then(|k| self.build_of(k));
        let (credentials, identity) = self.open(&role, session_name, duration);
        if let Some(s) = self.sessions().get_mut(&credentials.access_key_id) {
            s.build = build;
        }
        Ok((credentials, identity))
    }

    /// The session a build's commands use: CodeBuild's service role for `project`.
    pub fn build_session(&self, project: &str, build_uuid: &str) -> SessionCredentials {
        let role = format!("codebuild-{project}-service-role");
        let (credentials, _) = self.open(&role, &format!("AWSCodeBuild-{build_uuid}"), 12 * 3600);
        if let Some(s) = self.sessions().get_mut(&credentials.access_key_id) {
            s.build = Some(credentials.access_key_id.clone());
        }
        credentials
    }

    /// The build `access_key_id` belongs to (its session's key), if it is a build's session or
    /// one assumed with a build's key (see [`Identities::build_session`]).
    pub fn build_of(&self, access_key_id: &str) -> Option<String> {
        self.sessions().get(access_key_id)?.build.clone()
    }

    /// Forget a session (its build ended).
    pub fn revoke(&self, access_key_id: &str) {
        self.sessions().remove(access_key_id);
    }

    fn open(
        &self,
        role: &str,
        session_name: &str,
        duration: u64,
    ) -> (SessionCredentials, Identity) {
        let expiration = crate::now() as u64 + duration;
        let credentials = SessionCredentials {
            access_key_id: format!("ASIA{}", random(UPPER, 16)),
            secret_access_key: random(SECRET, 40),
            session_token: format!("LB{}", random(SECRET, 120)),
            expiration,
        };
        let role_id = format!("AROA{}", random(UPPER, 17));
        let identity = Identity {
            user_id: format!("{role_id}:{session_name}"),
            account: self.account().to_owned(),
            arn: format!(
                "arn:aws:sts::{}:assumed-role/{role}/{session_name}",
                self.account()
            ),
        };
        self.sessions().insert(
            credentials.access_key_id.clone(),
            Session {
                credentials: credentials.clone(),
                identity: identity.clone(),
                build: None,
            },
        );
        (credentials, identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_session_is_codebuilds_role_and_needs_its_token() {
        let ids = Identities::new(localbuild_sigv4::Credentials::new());
        let c = ids.build_session("web", "1234");
        assert!(c.access_key_id.starts_with("ASIA") && c.access_key_id.len() == 20);
        assert_eq!(
            ids.keys().secret(&c.access_key_id),
            Some(c.secret_access_key.as_str())
        );
        let Some(KeyCheck::Known(who)) = ids.check(&c.access_key_id, Some(&c.session_token)) else {
            panic!("the build's key is not known");
        };
        assert_eq!(
            who.arn,
            format!(
                "arn:aws:sts::{ACCOUNT_ID}:assumed-role/codebuild-web-service-role/AWSCodeBuild-1234"
            )
        );
        assert_eq!(ids.check(&c.access_key_id, None), Some(KeyCheck::BadToken));
        ids.revoke(&c.access_key_id);
        assert_eq!(ids.check(&c.access_key_id, Some(&c.session_token)), None);
    }

    #[test]
    fn identities_belong_to_the_chosen_account() {
        let mut keys = localbuild_sigv4::Credentials::new();
        keys.insert("AKIDLOCAL", "s");
        let ids = Identities::new(keys).in_account("123456789012");
        let Some(KeyCheck::Known(me)) = ids.check("AKIDLOCAL", None) else {
            panic!("the static key is not known");
        };
        assert_eq!(me.account, "123456789012");
        assert_eq!(me.arn, "arn:aws:iam::123456789012:root");
        let (_, who) = ids
            .assume_role(None, "arn:aws:iam::123456789012:role/deploy", "ci", 3600)
            .unwrap();
        assert_eq!(who.arn, "arn:aws:sts::123456789012:assumed-role/deploy/ci");
    }

    #[test]
    fn assume_role_checks_its_input() {
        let ids = Identities::new(localbuild_sigv4::Credentials::new());
        let arn = format!("arn:aws:iam::{ACCOUNT_ID}:role/deploy");
        let (_, who) = ids.assume_role(None, &arn, "ci", 3600).unwrap();
        assert!(who.arn.ends_with(":assumed-role/deploy/ci"), "{}", who.arn);
        assert!(ids.assume_role(None, "deploy", "ci", 3600).is_err());
        assert!(ids.assume_role(None, &arn, "a b", 3600).is_err());
        assert!(ids.assume_role(None, &arn, "ci", 60).is_err());
    }

    #[test]
    fn a_session_past_its_expiration_is_refused_and_build_sessions_are_told_apart() {
        let ids = Identities::default();
        let build = ids.build_session("app", "0f1e2d3c");
        assert_eq!(
            ids.build_of(&build.access_key_id),
            Some(build.access_key_id.clone())
        );
        let (assumed, _) = ids
            .assume_role(
                None,
                "arn:aws:iam::000000000000:role/deploy",
                "deploy-session",
                900,
            )
            .unwrap();
        assert_eq!(ids.build_of(&assumed.access_key_id), None);
        // A session assumed with the build's key belongs to that build.
        let (by_build, _) = ids
            .assume_role(
                Some(&build.access_key_id),
                "arn:aws:iam::000000000000:role/deploy",
                "from-the-build",
                900,
            )
            .unwrap();
        assert_eq!(
            ids.build_of(&by_build.access_key_id),
            Some(build.access_key_id.clone())
        );
        assert!(matches!(
            ids.check(&assumed.access_key_id, Some(&assumed.session_token)),
            Some(KeyCheck::Known(_))
        ));
        let (expired, _) = ids.open("deploy", "old", 0);
        assert_eq!(
            ids.check(&expired.access_key_id, Some(&expired.session_token)),
            Some(KeyCheck::Expired)
        );
    }
}
